"""Streaming conversion (file → file, one tensor at a time) writes what the in-memory path writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from helpers import make_source, save_source
from roberta2longformer import ConversionError, ToleranceError, convert, save_conversion
from roberta2longformer.cli import app
from roberta2longformer.core import streaming
from roberta2longformer.core.loading import load_model
from roberta2longformer.core.streaming import NotStreamable
from roberta2longformer.io import checkpoint
from roberta2longformer.io.checkpoint import SAFE_INDEX_NAME, Planned, read_lazily, start_checkpoint
from roberta2longformer.pipeline import convert_checkpoint

OPTIONS = {
    "longformer": {"attention_window": 8},
    "bigbird": {"block_size": 8, "num_random_blocks": 1},
    "nystromformer": {"num_landmarks": 4},
    "led": {"attention_window": 8, "decoder_max_length": 16},
}


def all_tensors(directory: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(directory.glob("*.safetensors")):
        tensors.update(load_file(path))
    return tensors


def assert_identical(expected: Path, got: Path) -> None:
    a, b = all_tensors(expected), all_tensors(got)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
    for name in ("config.json", "generation_config.json"):
        if (expected / name).exists() or (got / name).exists():
            assert json.loads((expected / name).read_text()) == json.loads((got / name).read_text()), name


def saved_source(tmp_path: Path, family: str, head: str, tokenizer=None, **overrides) -> Path:
    """helpers.save_source with RoBERTa's layer-norm eps (which LED needs) in tmp_path/source-FAMILY-HEAD."""
    return save_source(tmp_path / f"source-{family}-{head}", family, head, tokenizer, layer_norm_eps=1e-5, **overrides)


CASES = [
    ("roberta", "masked_lm", "longformer"),
    ("roberta", "base", "longformer"),
    ("roberta", "sequence_classification", "longformer"),
    ("roberta", "question_answering", "longformer"),
    ("roberta", "multiple_choice", "longformer"),
    ("xlm-roberta", "token_classification", "longformer"),
    ("bert", "masked_lm", "longformer"),
    ("bert", "sequence_classification", "longformer"),
    ("roberta", "masked_lm", "bigbird"),
    ("bert", "base", "bigbird"),
    ("roberta", "masked_lm", "nystromformer"),
    ("camembert", "token_classification", "nystromformer"),
    ("roberta", "masked_lm", "led"),
    ("roberta", "base", "led"),
]


@pytest.mark.parametrize("family,head,to", CASES)
def test_streaming_writes_the_same_tensors_and_config_as_the_in_memory_path(tmp_path, family, head, to, tokenizer_for):
    source = saved_source(tmp_path, family, head, tokenizer_for(family))
    in_memory = save_conversion(convert(source, to=to, max_length=64, **OPTIONS[to]), None, tmp_path / "in-memory")
    written = convert_checkpoint(source, tmp_path / "streamed", to=to, max_length=64, progress=False, **OPTIONS[to])
    assert_identical(in_memory, written.path)
    assert written.report is not None and written.report.passed
    assert (written.path / "verification.json").is_file() and (written.path / "tokenizer.json").is_file()
    reloaded = load_model(written.path)
    assert type(reloaded).__name__ == written.conversion.model_class


@pytest.mark.parametrize(
    "source_dtype,dtype", [(torch.float32, "bfloat16"), (torch.float16, None), (torch.float32, "float16")]
)
def test_dtypes_match_the_in_memory_path(tmp_path, source_dtype, dtype):
    path = tmp_path / "source"
    make_source("roberta", "masked_lm").to(source_dtype).save_pretrained(path)
    in_memory = save_conversion(convert(path, max_length=64, dtype=dtype, attention_window=8), None, tmp_path / "a")
    written = convert_checkpoint(
        path, tmp_path / "b", max_length=64, dtype=dtype, attention_window=8, verify=False, progress=False
    )
    assert_identical(in_memory, written.path)
    expected = getattr(torch, dtype) if dtype else source_dtype
    assert {t.dtype for t in all_tensors(written.path).values()} == {expected}


def test_sharded_source_and_sharded_output(tmp_path, bpe_tokenizer):
    source = tmp_path / "source"
    make_source("roberta", "masked_lm").save_pretrained(source, max_shard_size="20KB")
    bpe_tokenizer.save_pretrained(source)
    assert (source / SAFE_INDEX_NAME).is_file()
    single = convert_checkpoint(source, tmp_path / "single", max_length=64, attention_window=8, progress=False)
    sharded = convert_checkpoint(
        source, tmp_path / "sharded", max_length=64, attention_window=8, max_shard_size="30KB", progress=False
    )
    assert [f.name for f in single.files] == ["model.safetensors"]
    assert len(sharded.files) > 2
    for shard in map(load_file, sharded.files):  # a tensor bigger than the limit gets a shard of its own
        assert len(shard) == 1 or sum(t.numel() * t.element_size() for t in shard.values()) <= 30_000
    index = json.loads((sharded.path / SAFE_INDEX_NAME).read_text())
    assert set(index["weight_map"].values()) == {f.name for f in sharded.files}
    assert index["metadata"]["total_size"] == sum(
        t.numel() * t.element_size() for t in all_tensors(sharded.path).values()
    )
    assert_identical(single.path, sharded.path)
    assert sharded.report.passed  # verify loads the sharded output with from_pretrained


def test_a_base_model_saved_without_pooler_is_left_to_the_in_memory_path(tmp_path, bpe_tokenizer):
    """from_pretrained gives such a model a random pooler; only the in-memory path can carry that one over."""
    source = tmp_path / "source"
    config = make_source("roberta", "base").config
    torch.manual_seed(0)
    transformers.RobertaModel(config, add_pooling_layer=False).save_pretrained(source)
    bpe_tokenizer.save_pretrained(source)
    with pytest.raises(NotStreamable, match="without its pooler.*--in-memory"):
        convert_checkpoint(source, tmp_path / "long", max_length=64, attention_window=8, progress=False)
    assert not (tmp_path / "long").exists()
    result = CliRunner().invoke(
        app,
        ["convert", str(source), str(tmp_path / "long"), "--max-length", "64", "--attention-window", "8", "--no-smoke"],
    )
    assert result.exit_code == 0, result.output
    assert "by streaming" not in result.output and (tmp_path / "long" / "verification.json").is_file()


def test_a_missing_tensor_is_refused_and_nothing_is_written(tmp_path):
    source = saved_source(tmp_path, "roberta", "masked_lm")
    tensors = load_file(source / "model.safetensors")
    del tensors["roberta.encoder.layer.1.output.dense.weight"]
    save_file(tensors, source / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ConversionError, match="lacks 1 weight.*incomplete"):
        convert_checkpoint(source, tmp_path / "long", max_length=64, attention_window=8, progress=False)
    assert not (tmp_path / "long").exists() and not list(tmp_path.glob(".long*"))


def test_extra_tensors_that_from_pretrained_ignores_are_ignored_with_a_note(tmp_path):
    source = saved_source(tmp_path, "roberta", "masked_lm")
    tensors = load_file(source / "model.safetensors")
    tensors["roberta.embeddings.position_ids"] = torch.arange(34).unsqueeze(0)  # older checkpoints persisted it
    save_file(tensors, source / "model.safetensors", metadata={"format": "pt"})
    written = convert_checkpoint(
        source, tmp_path / "long", max_length=64, attention_window=8, smoke=False, progress=False
    )
    assert any("position_ids" in note and "ignored" in note for note in written.notes)


@pytest.mark.parametrize("defect", ["extra key", "wrong dtype", "wrong shape"])
def test_a_plan_that_differs_from_the_target_cancels_the_copy(tmp_path, monkeypatch, defect):
    """Writing starts before the target model is built; the check that runs meanwhile (with verification,
    which builds the model classes anyway) must stop it."""
    source = saved_source(tmp_path, "roberta", "masked_lm")
    planned_from_plan = streaming.planned_tensors

    def defective(plan):
        planned = planned_from_plan(plan)
        first = planned[0]
        if defect == "extra key":
            return [*planned, Planned("longformer.surplus", (2,), first.dtype, torch.zeros(2))]
        if defect == "wrong dtype":
            return [Planned(first.key, first.shape, torch.float16, first.value), *planned[1:]]
        shape = (first.shape[0] - 1, *first.shape[1:])
        return [Planned(first.key, shape, first.dtype, torch.zeros(shape)), *planned[1:]]

    monkeypatch.setattr(streaming, "planned_tensors", defective)
    with pytest.raises(ConversionError):
        convert_checkpoint(source, tmp_path / "long", max_length=64, attention_window=8, smoke=False, progress=False)
    assert not (tmp_path / "long").exists() and not list(tmp_path.glob(".long*"))


def test_failed_verification_leaves_nothing(tmp_path):
    source = saved_source(tmp_path, "roberta", "masked_lm")
    with pytest.raises(ToleranceError):
        convert_checkpoint(
            source,
            tmp_path / "long",
            max_length=64,
            attention_window=8,
            position_init="random-all",
            smoke=False,
            progress=False,
        )
    assert not (tmp_path / "long").exists() and not list(tmp_path.glob(".long*"))


def test_the_writer_round_trips_every_dtype_through_safetensors(tmp_path):
    generator = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 5, generator=generator),
        "bf16": torch.randn(7, generator=generator).to(torch.bfloat16),
        "f16": torch.randn(2, 2, 2, generator=generator).half(),
        "i64": torch.arange(9).reshape(3, 3),
        "flag": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    planned = [Planned(k, tuple(v.shape), v.dtype, v) for k, v in tensors.items()]
    start_checkpoint(tmp_path, planned, progress=False).wait()
    loaded = load_file(tmp_path / "model.safetensors")
    assert loaded.keys() == tensors.keys()
    assert all(loaded[k].dtype == v.dtype and torch.equal(loaded[k], v) for k, v in tensors.items())
    lazy = read_lazily(tmp_path)  # and our own lazy reader reads it back through safe_open
    assert all(torch.equal(lazy[k], v) for k, v in tensors.items())


def test_the_writer_casts_and_checks_shapes(tmp_path):
    value = torch.randn(4, 4)
    start_checkpoint(tmp_path, [Planned("w", (4, 4), torch.bfloat16, value)], progress=False).wait()
    assert torch.equal(load_file(tmp_path / "model.safetensors")["w"], value.to(torch.bfloat16))
    with pytest.raises(ConversionError, match="expected"):
        start_checkpoint(tmp_path, [Planned("w", (2, 8), torch.float32, value)], progress=False).wait()


def test_cli_streams_by_default_and_in_memory_on_request_with_identical_files(tmp_path, bpe_tokenizer):
    source = saved_source(tmp_path, "roberta", "masked_lm", bpe_tokenizer)
    common = ["--max-length", "64", "--attention-window", "8", "--no-smoke"]
    streamed = CliRunner().invoke(
        app, ["convert", str(source), str(tmp_path / "a"), *common, "--max-shard-size", "40KB"]
    )
    in_memory = CliRunner().invoke(app, ["convert", str(source), str(tmp_path / "b"), *common, "--in-memory"])
    assert streamed.exit_code == 0 and in_memory.exit_code == 0, streamed.output + in_memory.output
    assert "by streaming" in streamed.output and "by streaming" not in in_memory.output
    assert (tmp_path / "a" / SAFE_INDEX_NAME).is_file() and not (tmp_path / "b" / SAFE_INDEX_NAME).exists()
    assert_identical(tmp_path / "b", tmp_path / "a")


def test_without_kernel_copies_or_fallocate_the_writer_falls_back_to_reading(tmp_path, monkeypatch):
    source = saved_source(tmp_path, "roberta", "masked_lm")
    fast = convert_checkpoint(source, tmp_path / "a", max_length=64, attention_window=8, verify=False, progress=False)

    def refuse(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("os.copy_file_range", refuse)
    monkeypatch.setattr(checkpoint, "libc_fallocate", lambda: None)
    slow = convert_checkpoint(source, tmp_path / "b", max_length=64, attention_window=8, verify=False, progress=False)
    assert_identical(fast.path, slow.path)
