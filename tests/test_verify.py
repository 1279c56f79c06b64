"""verify itself: what it compares, where, what it reports, and when it fails."""

from __future__ import annotations

import json

import pytest
import torch

import helpers
from helpers import make_source
from roberta2longformer import ConversionError, ToleranceError, VerificationReport, convert, verify
from roberta2longformer.verification import Check


@pytest.fixture
def pair(bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    return source, convert(source, bpe_tokenizer, max_length=64, attention_window=16).model


def test_an_exact_conversion_passes_with_every_case_and_output(pair, bpe_tokenizer):
    source, converted = pair
    report = verify(source, converted, bpe_tokenizer)
    assert isinstance(report, VerificationReport) and report.passed
    assert report.exact_length == 9 and report.max_length == 64  # one window: 16 / 2 + 1
    cases = {check.case for check in report.checks} - {"weights"}
    # One batch with padding, global tokens and real text through the tokenizer; one row without globals.
    # The text fills all 9 tokens, so a half-length random row brings the padding.
    assert cases == {"random ids (9/4) + 1 text (≤9), batch 3, padded, global CLS", "random ids, batch 1, 9 tokens"}
    logits = [check for check in report.checks if check.output == "logits"]
    assert [check.shape[0] for check in logits] == [9 + 4 + 9, 9]  # every real token: 9 ≤ 32 logit positions
    outputs = {check.output for check in report.checks if check.case != "weights"}
    assert outputs == {"hidden_states[-1]", "logits"}
    assert all(check.passed and check.atol == 1e-4 for check in report.checks if check.case != "weights")
    assert all(check.passed and check.atol == 0 for check in report.checks if check.case == "weights")
    assert report.smoke["length"] == 64 and report.smoke["finite"]
    assert report.peak_rss_mb > 0 and report.seconds > 0
    assert list(report.stage_seconds) == ["exact cases", "weights", "smoke"]
    assert sum(report.stage_seconds.values()) <= report.seconds + 0.01  # each rounded to 1 ms


def _source_input_shapes(source) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    source.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    return shapes


def test_the_source_reads_each_row_once_without_its_padding(pair, bpe_tokenizer):
    source, converted = pair
    shapes = _source_input_shapes(source)
    report = verify(source, converted, bpe_tokenizer, smoke=False, texts=["Hi."])
    assert report.passed
    # The padded batch's rows one by one at their real lengths (random ids of the full 9, the text's few
    # tokens); the single-row case repeats the first row, whose output is reused.
    text_length = len(bpe_tokenizer("Hi.")["input_ids"])
    assert shapes == [(1, 9), (1, text_length)] and text_length < 9


def test_a_left_padding_tokenizer_is_compared_batch_against_batch(pair):
    source, converted = pair
    tokenizer = helpers.bpe_tokenizer()  # not the session's: this one pads on the left
    tokenizer.padding_side = "left"
    assert tokenizer(["Hi."], padding="max_length", max_length=9)["attention_mask"][0][0] == 0
    shapes = _source_input_shapes(source)
    report = verify(source, converted, tokenizer, smoke=False, texts=["Hi."])
    assert report.passed and shapes[0] == (2, 9)


def test_logits_are_compared_on_the_first_positions_and_hidden_states_on_all(bpe_tokenizer):
    source = make_source("roberta", "masked_lm", max_position_embeddings=66)  # reads 64 tokens
    converted = convert(source, bpe_tokenizer, max_length=128, attention_window=80).model  # exact up to 41
    report = verify(source, converted, bpe_tokenizer)
    single = [check for check in report.checks if check.case == "random ids, batch 1, 41 tokens"]
    assert {check.output: check.shape[0] for check in single} == {"hidden_states[-1]": 41, "logits": 32}
    with torch.no_grad():  # a changed vocabulary row is still caught (the head's weights are compared)
        converted.lm_head.decoder.weight[7] += 1.0
    with pytest.raises(ToleranceError):
        verify(source, converted, bpe_tokenizer, smoke=False)


def test_without_a_tokenizer_there_is_no_text_case(pair):
    report = verify(*pair)
    assert report.passed and not any("text" in check.case for check in report.checks)


def test_a_changed_weight_fails_every_affected_output_together(pair, bpe_tokenizer):
    source, converted = pair
    with torch.no_grad():
        converted.lm_head.dense.weight.mul_(1.5)
    with pytest.raises(ToleranceError) as raised:
        verify(source, converted, bpe_tokenizer, smoke=False)
    outputs = [failure for failure in raised.value.failures if "weights:" not in failure]
    assert outputs and all("logits" in failure for failure in outputs)
    weights = [failure for failure in raised.value.failures if "weights:" in failure]
    assert len(weights) == 1 and "differing: lm_head.dense.weight" in weights[0]
    report = verify(source, converted, bpe_tokenizer, smoke=False, raise_on_failure=False)
    assert not report.passed and report.failures() == raised.value.failures
    assert all(check.passed for check in report.checks if check.output == "hidden_states[-1]")


def test_a_non_finite_smoke_run_fails(pair):
    source, converted = pair
    with torch.no_grad():  # a row only the full-length smoke input reads
        converted.longformer.embeddings.position_embeddings.weight[60].fill_(float("nan"))
    report = verify(source, converted, raise_on_failure=False)
    assert all(check.passed for check in report.checks if check.case != "weights")
    assert report.failures()[-1] == "smoke forward at 64 tokens produced non-finite values"
    assert any("not: longformer.embeddings.position_embeddings.weight" in f for f in report.failures())
    without_smoke = verify(source, converted, smoke=False, raise_on_failure=False)  # the weights say it anyway
    assert not without_smoke.passed and any("every tensor finite" in f for f in without_smoke.failures())


def test_the_weight_finiteness_check_is_exact_even_where_its_float32_sum_overflows():
    from roberta2longformer.verification.weights import finiteness_check

    huge = torch.full((8,), 3e38)  # finite, but its float32 sum is not
    state = {"huge": huge, "half": torch.full((4,), 6e4, dtype=torch.float16), "ids": torch.arange(3)}
    assert finiteness_check(state).passed
    for bad in (float("inf"), float("nan")):
        spoiled = huge.clone()
        spoiled[5] = bad
        check = finiteness_check({**state, "spoiled": spoiled})
        assert not check.passed and check.output.endswith("not: spoiled")


@pytest.mark.parametrize(
    "spoil, phrase",
    [
        (lambda m: m.longformer.embeddings.position_embeddings.weight[40].add_(0.5), "position rows 34–65"),
        (lambda m: m.longformer.embeddings.position_embeddings.weight[20].add_(0.5), "position rows 0–33"),
        (lambda m: m.longformer.embeddings.word_embeddings.weight[3:13].add_(5.0), "differing: longformer.embeddings"),
        (lambda m: m.longformer.encoder.layer[0].attention.self.query_global.weight.mul_(2), "query_global"),
    ],
    ids=["a tiled row", "a learned row beyond the probes", "embedding rows of unprobed tokens", "a global projection"],
)
def test_the_weight_proof_sees_what_no_probe_input_touches(pair, bpe_tokenizer, spoil, phrase):
    source, converted = pair
    with torch.no_grad():
        spoil(converted)
    report = verify(source, converted, bpe_tokenizer, smoke=False, raise_on_failure=False)
    assert not report.passed and any(phrase in failure for failure in report.failures()), report.failures()


def test_the_weight_proof_uses_the_options_a_model_was_made_with(bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    conversion = convert(source, bpe_tokenizer, max_length=64, attention_window=16, position_init="random", seed=7)
    assert verify(source, conversion.model, smoke=False, options=conversion.options).passed
    guessed = verify(source, conversion.model, smoke=False, raise_on_failure=False)  # tile assumed
    assert [f for f in guessed.failures() if "unknown" in f and "position rows 34–65" in f]


def test_models_with_different_heads_are_refused(bpe_tokenizer):
    source = make_source("roberta", "base")
    converted = convert(make_source("roberta", "masked_lm"), bpe_tokenizer, max_length=64, attention_window=16).model
    with pytest.raises(ConversionError, match="compare models with the same head"):
        verify(source, converted)


def test_the_exact_length_is_bounded_by_the_source_positions(bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    converted = convert(source, bpe_tokenizer, max_length=128, attention_window=128).model  # window > source
    assert verify(source, converted, smoke=False).exact_length == 32


def test_an_approximating_target_reports_its_cost_without_failing(bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    converted = convert(source, bpe_tokenizer, to="nystromformer", max_length=64, num_landmarks=8).model
    report = verify(source, converted, bpe_tokenizer, smoke=False)
    assert report.passed and report.approximation
    assert all(0 < a["length"] <= 32 and a["regime"] == "8 landmarks" for a in report.approximation)
    assert any("not an exactness check" in line for line in report.summary_lines())


def test_the_report_serialises_with_each_checks_verdict(pair, bpe_tokenizer):
    report = verify(*pair, bpe_tokenizer, smoke=False)
    data = json.loads(report.to_json())
    assert data["passed"] is True and data["max_abs_diff"] == report.max_abs_diff
    assert all(check["passed"] for check in data["checks"]) and len(data["checks"]) == len(report.checks)
    failing = Check("case", "logits", [1], 1.0, 1e-4)
    assert not failing.passed and failing.line().startswith("✗ case: logits")
