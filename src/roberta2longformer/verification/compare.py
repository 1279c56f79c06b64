"""Proof that a converted model computes what its source computed, as a report.

Deterministic inputs (seeded random ids, and real text when a tokenizer is there) go to both
models in eval mode; every output they share is compared — the last hidden state and each head
output — at lengths up to the target's exactness limit, with and without padding, batch > 1.
A smoke forward at the full new length checks that long inputs run and stay finite. Like an
exporter's validation, every check is logged with its max |diff|, and all failures are raised
together as one :class:`ToleranceError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .. import fast
from ..core.heads import head_for
from ..core.tokenizer import first_defined
from ..errors import ConversionError
from ..runtime import environment, peak_rss_mb
from ..targets import Target, readable_length, target_for_config, target_or_none
from ..targets.base import lm_head_on
from .report import Check, VerificationReport
from .weights import finiteness_check, weight_checks

logger = logging.getLogger(__name__)

#: Outputs compared per head kind, besides the last hidden state.
HEAD_OUTPUTS = {
    "base": ("last_hidden_state", "pooler_output"),
    "masked_lm": ("logits",),
    "sequence_classification": ("logits",),
    "token_classification": ("logits",),
    "question_answering": ("start_logits", "end_logits"),
    "multiple_choice": ("logits",),
}
#: The positions whose vocabulary logits are compared. The masked-LM head is the same per-token
#: product at every position and its input, the last hidden state, is compared at all of them; over
#: every position a 50k-token vocabulary projection is a large share of the exact checks' cost.
LOGIT_POSITIONS = slice(0, 32)
ATOL = {torch.float32: 1e-4, torch.float64: 1e-6, torch.float16: 2e-2, torch.bfloat16: 1e-1}
#: Half-precision outputs are rounded relative to their size (bf16 keeps 8 bits): large logits get
#: ``RTOL × max|expected|`` on top of the absolute tolerance. Float32 stays purely absolute.
RTOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
#: One text, an English and a German sentence: each text row is padded to the exact length for the
#: converted model, and one row covers what two did.
SAMPLE_TEXTS = (
    "The committee met on a wet Thursday in November to decide whether the old mill by the river "
    "should become a library, a school or a market hall, and after four hours agreed on nothing. "
    "Die Bibliothek im alten Bahnhof öffnet morgens um acht; wer früh kommt, findet einen Platz am "
    "Fenster, und wer spät kommt, liest im Wartesaal zwischen Koffern und Fahrplänen.",
)


def _allowed_ids(vocab_size: int, pad_token_id: int | None) -> torch.Tensor:
    ids = torch.arange(vocab_size)
    return ids[ids != pad_token_id] if pad_token_id is not None else ids


def _random_batch(
    generator: torch.Generator, lengths: list[int], config, special: dict[str, int | None]
) -> dict[str, torch.Tensor]:
    """Random ids framed by the start/end tokens, right-padded to the longest row."""
    allowed = _allowed_ids(config.vocab_size, config.pad_token_id)
    width = max(lengths)
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    input_ids = torch.full((len(lengths), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, length in enumerate(lengths):
        sample = allowed[torch.randint(len(allowed), (length,), generator=generator)]
        if special["start"] is not None:
            sample[0] = special["start"]
        if special["end"] is not None and length > 1:
            sample[-1] = special["end"]
        input_ids[row, :length] = sample
        attention_mask[row, :length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def _frame_ids(config, tokenizer: PreTrainedTokenizerBase | None) -> dict[str, int | None]:
    tok = tokenizer
    return {
        "start": first_defined(
            tok and tok.cls_token_id, tok and tok.bos_token_id, getattr(config, "bos_token_id", None)
        ),
        "end": first_defined(tok and tok.sep_token_id, tok and tok.eos_token_id, getattr(config, "eos_token_id", None)),
    }


def _cases(config, tokenizer, exact_length: int, seed: int, texts: Sequence[str]) -> list[tuple[str, dict, bool]]:
    """(name, inputs, global_first) for each comparison; every length ≤ exact_length.

    The fewest forwards that still cover every promise (each row costs the converted model the
    whole exact length): one batch with a random row of the full exact length, real text through the tokenizer
    (padded) and global tokens; and that random row alone, without global tokens. Without a tokenizer, or
    when no text row is padded, a half-length random row brings the padding."""
    generator = torch.Generator().manual_seed(seed)
    special = _frame_ids(config, tokenizer)
    text = None
    if tokenizer is not None:
        encoded = tokenizer(
            list(texts), truncation=True, max_length=exact_length, padding="max_length", return_tensors="pt"
        )
        text = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    lengths = [exact_length]
    if text is None or bool(text["attention_mask"].all()):
        lengths.append(max(2, exact_length // 2))
    rows = [_random_batch(generator, lengths, config, special), *([text] if text is not None else [])]
    batch = {key: torch.cat([part[key] for part in rows]) for key in ("input_ids", "attention_mask")}
    parts = [
        f"random ids ({'/'.join(map(str, lengths))})",
        *([f"{len(texts)} text{'s' * (len(texts) != 1)} (≤{exact_length})"] if text else []),
    ]
    mixed = f"{' + '.join(parts)}, batch {len(batch['input_ids'])}, padded, global CLS"
    single = f"random ids, batch 1, {exact_length} tokens"
    # The batch's full-length random row again, alone: the source's output for it is computed once.
    alone = {key: value[:1] for key, value in rows[0].items()}
    return [(mixed, batch, True), (single, alone, False)]


def _as_multiple_choice(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Batch N → N//2 questions with 2 choices each (a single row becomes one choice)."""
    batch = inputs["input_ids"].shape[0]
    choices = 2 if batch % 2 == 0 else 1
    return {k: v.view(batch // choices, choices, -1) for k, v in inputs.items()}


#: Outputs with one value per token: compared at the real tokens only (the rest are per row).
PER_TOKEN_OUTPUTS = ("hidden_states[-1]", "last_hidden_state", "start_logits", "end_logits")
PER_TOKEN_LOGITS = ("masked_lm", "token_classification")


def _is_per_token(name: str, head: str) -> bool:
    return name in PER_TOKEN_OUTPUTS or (name == "logits" and head in PER_TOKEN_LOGITS)


def _real_tokens(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(batch, length, …) → (real tokens, …); a multiple-choice mask (batch, choices, length) is flattened."""
    flat_mask = mask.reshape(-1, mask.shape[-1]).bool()
    return values[flat_mask] if values.dim() >= 2 and values.shape[:2] == flat_mask.shape else values


def _compare(name: str, a: torch.Tensor, b: torch.Tensor, atol: float, case: str) -> Check:
    """``a`` expected (source), ``b`` actual, both at real tokens only where per token; the tolerance
    grows with |a| only for half precision."""
    atol = atol + max(RTOL.get(b.dtype, 0.0), RTOL.get(a.dtype, 0.0)) * (
        a.float().abs().max().item() if a.numel() else 0.0
    )
    if a.shape != b.shape:
        return Check(case, f"{name} (shape {tuple(a.shape)} vs {tuple(b.shape)})", list(b.shape), float("inf"), atol)
    diff = (a.float() - b.float()).abs().max().item() if a.numel() else 0.0
    return Check(case, name, list(b.shape), diff, atol)


def _compare_masked(name: str, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, atol: float, case: str) -> Check:
    return _compare(name, _real_tokens(a, mask), _real_tokens(b, mask), atol, case)


def _understood(model: PreTrainedModel, extra: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The extra inputs ``model`` also takes (a Longformer source gets the same global tokens)."""
    accepted = inspect.signature(model.forward).parameters
    return {name: value for name, value in extra.items() if name in accepted}


def _run(model, target: Target, inputs, extra, length: int):
    """``model`` (or the part of it that reproduces the source) in the target's exact mode."""
    module = target.compared_module(model)
    with target.exact_mode(model, length):
        return _forward(module, inputs, **_understood(module, extra))


def _final_hidden(output) -> torch.Tensor:
    last = getattr(output, "last_hidden_state", None)
    return last if last is not None else output.hidden_states[-1]


def _forward(model, inputs, **extra):
    return model(**inputs, **extra, output_hidden_states=True, return_dict=True)


@torch.inference_mode()
def verify(
    source: PreTrainedModel,
    converted: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None = None,
    *,
    smoke: bool = True,
    seed: int = 0,
    atol: float | None = None,
    raise_on_failure: bool = True,
    source_name: str = "",
    texts: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
    fast_attention: bool = True,
) -> VerificationReport:
    """Compare ``converted`` against ``source`` and return a report (raise on failure by default).

    ``texts``: real inputs for the text rows, in the source's domain (default: one English and one
    German sentence, as one text; e.g. protein sequences for a protein model). ``options``: those the
    conversion was made with (``Conversion.options``: ``position_init``, ``seed``…), for the weight-level proof; without
    them the defaults are assumed, and the report says so. ``fast_attention``: run a Longformer or LED
    through :mod:`roberta2longformer.fast` (same results, less time) for the duration; ``False`` runs
    transformers' own attention. The report records which ran.
    """
    started = time.perf_counter()
    target = target_for_config(converted.config)
    # A resized model against the one it was resized from: the same computation at every length both read.
    same_architecture = source.config.model_type == converted.config.model_type
    head = "base" if same_architecture and target.is_encoder_decoder else head_for(source)
    converted_head = head if target.is_encoder_decoder else head_for(converted)
    if head != converted_head:
        raise ConversionError(
            f"The source is a {head} model but the converted one a {converted_head} model; "
            "compare models with the same head."
        )
    _check_tokenizer_fits(tokenizer, source.config)
    _check_source_finite(source)
    # Compared at the less precise of the two: a float16 source converted to float32 still computes in float16.
    dtypes = {next(source.parameters()).dtype, next(converted.parameters()).dtype}
    atol = atol if atol is not None else max(ATOL.get(dtype, 1e-4) for dtype in dtypes)
    report = VerificationReport(
        source=source_name or str(getattr(source, "name_or_path", "")),
        target=target.name,
        target_class=type(converted).__name__,
        exact_length=_exact_length(source, converted, target, options, same_architecture),
        max_length=target.max_length(converted.config),
        options=dict(options or {}),
    )
    modes = source.training, converted.training
    source.eval(), converted.eval()
    switched = fast_attention and fast.applies_to(converted) and not fast.is_enabled(converted)
    if switched:
        fast.enable(converted)
    report.attention = fast.backend_name(converted)
    try:
        _run_checks(report, source, converted, target, head, tokenizer, seed, texts, atol, smoke, same_architecture)
    finally:
        source.train(modes[0]), converted.train(modes[1])
        if switched:
            fast.disable(converted)
    report.seconds = time.perf_counter() - started
    report.peak_rss_mb = peak_rss_mb()
    report.environment = {**environment(), "device": str(next(converted.parameters()).device)}
    for line in report.summary_lines():
        logger.info(line)
    if raise_on_failure:
        report.require_passed()
    return report


def _exact_length(source, converted, target: Target, options: Mapping[str, Any] | None, same_architecture: bool) -> int:
    """The longest input on which the converted model must reproduce the source: within both position tables,
    the target's exact regime (and a Longformer source's own window), and the rows conversion or training kept."""
    if same_architecture:
        limits = [target.max_length(source.config), target.max_length(converted.config)]
    else:
        limits = [
            readable_length(source.config),
            target.max_length(converted.config),
            target.exact_length(converted.config),
        ]
        source_target = target_or_none(source.config)
        if source_target is not None:  # a Longformer source is itself exact only in one window
            limits.append(source_target.exact_length(source.config))
    if options and options.get("position_init") == "tile-trained":  # rows past the trained ones were replaced
        limits.append(options.get("trained_positions"))
    if options and options.get("positions_trained_beyond") is not None:  # trained since, from this index on
        limits.append(options["positions_trained_beyond"])
    return min(limit for limit in limits if limit is not None)


def _run_checks(
    report, source, converted, target, head, tokenizer, seed, texts, atol, smoke, same_architecture
) -> None:
    """The exact cases, the weight-level proof, the approximation measurements and the smoke run, each timed."""
    stages = report.stage_seconds
    with _timed(stages, "exact cases"):
        cases = _cases(source.config, tokenizer, report.exact_length, seed, texts or SAMPLE_TEXTS)
        report.checks.extend(_exact_checks(source, converted, target, head, cases, atol, same_architecture))
    with _timed(stages, "weights"):
        report.checks.extend(weight_checks(source, converted, target, head, report.options or None, same_architecture))
    if target.approximates_attention and not same_architecture:
        frame = _frame_ids(source.config, tokenizer)
        with _timed(stages, "approximation"):
            report.approximation = [
                _approximation_error(
                    source,
                    converted,
                    _random_batch(torch.Generator().manual_seed(seed), [a.length] * 2, source.config, frame),
                    a,
                )
                for a in target.approximation(converted, readable_length(source.config))
            ]
    if smoke:
        with _timed(stages, "smoke"):
            report.smoke = _smoke(converted, target, head, target.input_length(converted.config), seed)


def _exact_checks(source, converted, target: Target, head: str, cases, atol: float, same_architecture: bool):
    memo: dict = {}  # the source's outputs per row, shared by the cases
    checks = []
    for case, inputs, global_first in cases:
        if not target.extra_inputs(inputs["input_ids"], global_first):
            case = case.replace(", global CLS", "")  # the target has no global tokens
        checks += _check_case(
            source, converted, target, head, case, inputs, global_first, atol, same_architecture, memo
        )
    return checks


@contextlib.contextmanager
def _timed(stages: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[stage] = round(time.perf_counter() - started, 3)


def _check_source_finite(source: PreTrainedModel) -> None:
    """A source with NaN or infinite weights computes nothing a conversion could reproduce: say so, rather than
    blaming the conversion."""
    check = finiteness_check(source.state_dict())
    if not check.passed:
        bad = check.output.split("; not: ", 1)[-1]
        raise ConversionError(
            f"The source's weights are not finite ({bad}), so it computes NaN or infinity and no conversion can be "
            "checked against it; give the checkpoint as it was trained."
        )


def _check_tokenizer_fits(tokenizer: PreTrainedTokenizerBase | None, config) -> None:
    if tokenizer is not None and len(tokenizer) > config.vocab_size:
        raise ConversionError(
            f"The tokenizer has {len(tokenizer)} tokens but the source's embedding only {config.vocab_size} rows, so "
            "some of its ids have no vector; pass the tokenizer that was saved with the model."
        )


def _check_case(
    source, converted, target: Target, head, case, inputs, global_first, atol, same_architecture=False, memo=None
) -> list[Check]:
    """The converted model on the case's (padded) batch against the source: the source reads each row
    alone, without its padding (see :func:`_source_rows`), except where rows cannot be cut apart."""
    if head == "multiple_choice":
        inputs = _as_multiple_choice(inputs)
    extra = target.extra_inputs(inputs["input_ids"], global_first)
    length = inputs["input_ids"].shape[-1]
    if getattr(source.config, "is_encoder_decoder", False) and not same_architecture:
        return _seq2seq_checks(source, converted, target, case, inputs, extra, length, atol)
    mask = inputs["attention_mask"]
    by_row = not same_architecture and head != "multiple_choice" and _right_padded(mask)
    with lm_head_on(source, LOGIT_POSITIONS) as sliced, lm_head_on(converted, LOGIT_POSITIONS):
        if by_row:
            rows = _source_rows(source, inputs, _understood(source, extra), {} if memo is None else memo)
        else:
            batched = (
                _run(source, target, inputs, extra, length)
                if same_architecture
                else _forward(source, inputs, **_understood(source, extra))
            )
        actual = _run(converted, target, inputs, extra, length)

    def as_compared(name: str, value: torch.Tensor | None) -> torch.Tensor | None:
        """A batch's ``name`` output as it is compared: at real tokens only where per token."""
        if value is None or not _is_per_token(name, head):
            return value
        return _real_tokens(value, mask[..., LOGIT_POSITIONS] if sliced and name == "logits" else mask)

    def expected(name: str) -> torch.Tensor | None:
        if not by_row:
            return as_compared(name, _output(batched, name))
        values = [_output(row, name) for row in rows]  # each row alone: all its tokens are real
        if any(value is None for value in values):
            return None
        return torch.cat([value[0] for value in values] if _is_per_token(name, head) else values)

    def check(name: str) -> Check | None:
        a, b = expected(name), as_compared(name, _output(actual, name))
        if a is None and b is None:
            return None
        if a is None or b is None:
            return Check(case, f"{name} (missing on one side)", [], float("inf"), atol)
        return _compare(name, a, b, atol, case)

    if target.is_encoder_decoder:  # its encoder reproduces the source
        return [dataclasses.replace(check("hidden_states[-1]"), output="encoder last_hidden_state")]
    names = [*(["hidden_states[-1]"] if head != "base" else []), *HEAD_OUTPUTS[head]]  # base: its last_hidden_state
    # An output the target architecture does not have is not compared.
    names = [name for name in names if name == "hidden_states[-1]" or name in actual.__dataclass_fields__]
    return [result for result in map(check, names) if result is not None]


def _output(output, name: str) -> torch.Tensor | None:
    return _final_hidden(output) if name == "hidden_states[-1]" else getattr(output, name, None)


def _right_padded(mask: torch.Tensor) -> bool:
    """Whether every row's real tokens come first: then a row without its padding is a prefix of it."""
    return bool((mask[:, 1:] <= mask[:, :-1]).all())


def _source_rows(source, inputs, extra, memo: dict) -> list:
    """The source's outputs for each row of a right-padded batch, each row read alone at its real length.

    What the converted model computes on a padded batch is then held against the source on the
    unpadded text, and the source pays for no padding (a text row is padded to the whole exact length
    for the converted model). ``memo`` keeps outputs across cases, so that a row that comes again
    (the single-row case repeats the batch's random row) is not computed twice."""
    rows = []
    for row, length in enumerate(inputs["attention_mask"].sum(dim=1).tolist()):
        row_inputs = {key: value[row : row + 1, :length] for key, value in inputs.items()}
        row_extra = {key: value[row : row + 1, :length] for key, value in extra.items()}
        key = tuple((name, tensor.numpy().tobytes()) for name, tensor in {**row_inputs, **row_extra}.items())
        if key not in memo:
            memo[key] = _forward(source, row_inputs, **row_extra)
        rows.append(memo[key])
    return rows


def _decoder_inputs(source_config, converted_config, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Teacher forcing: the input shifted right behind the decoder's start token, cut to the decoder's length."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    start = torch.full_like(ids[:, :1], source_config.decoder_start_token_id)
    width = min(ids.shape[1], converted_config.max_decoder_position_embeddings)
    decoder_ids = torch.cat([start, ids[:, :-1]], dim=1)[:, :width]
    decoder_mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, :-1]], dim=1)[:, :width]
    return {"decoder_input_ids": decoder_ids, "decoder_attention_mask": decoder_mask}


def _seq2seq_checks(source, converted, target: Target, case, inputs, extra, length: int, atol: float) -> list[Check]:
    """An encoder-decoder source (BART): the encoder's hidden states, and the decoder's under teacher forcing
    (its last hidden state, and the logits where both have an LM head)."""
    decoder = _decoder_inputs(source.config, converted.config, inputs)
    expected = _forward(source, inputs, **decoder)
    with target.exact_mode(converted, length):
        actual = _forward(converted, inputs, **extra, **decoder)
    mask, decoder_mask = inputs["attention_mask"], decoder["decoder_attention_mask"]
    checks = [
        _compare_masked(
            "encoder last_hidden_state", expected.encoder_last_hidden_state, actual.encoder_last_hidden_state, mask,
            atol, case,
        ),
        _compare_masked(
            "decoder last hidden state (teacher forcing)", expected.decoder_hidden_states[-1],
            actual.decoder_hidden_states[-1], decoder_mask, atol, case,
        ),
    ]  # fmt: skip
    if getattr(expected, "logits", None) is not None:
        checks.append(
            _compare_masked("logits (teacher forcing)", expected.logits, actual.logits, decoder_mask, atol, case)
        )
    return checks


def _approximation_error(source, converted, inputs, approximation) -> dict[str, Any]:
    """How far the backbone's last hidden state moves from the source's in an approximating regime."""
    expected = source.base_model(**inputs).last_hidden_state.float()
    with approximation.mode:
        actual = converted.base_model(**inputs).last_hidden_state.float()
    cosine = torch.nn.functional.cosine_similarity(actual, expected, dim=-1)
    return {
        "length": approximation.length,
        "regime": approximation.regime,
        "max_abs_diff": (actual - expected).abs().max().item(),
        "mean_cosine": cosine.mean().item(),
    }


def _smoke(model, target: Target, head: str, length: int, seed: int) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(seed)
    config = model.config
    allowed = _allowed_ids(config.vocab_size, config.pad_token_id)
    ids = allowed[torch.randint(len(allowed), (1, length), generator=generator)]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if head == "multiple_choice":
        inputs = {k: v.unsqueeze(1) for k, v in inputs.items()}
    started = time.perf_counter()
    result = target.smoke_run(model, inputs)
    return {"length": length, "seconds": round(time.perf_counter() - started, 3), **result}
