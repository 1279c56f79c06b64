"""Checkpoints as they are saved: sharded safetensors with an index, fp16/bf16, missing shards."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import make_source
from roberta2longformer import ConversionError, convert, verify
from roberta2longformer.cli import app


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_sharded_half_precision_source_keeps_its_dtype(tmp_path, dtype, bpe_tokenizer):
    source = make_source("roberta", "masked_lm").to(dtype)
    source.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    bpe_tokenizer.save_pretrained(tmp_path / "sharded")
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1  # really sharded
    conversion = convert(tmp_path / "sharded", to="longformer", max_length=64, attention_window=64)
    assert next(conversion.model.parameters()).dtype == dtype
    report = verify(conversion.source_model, conversion.model, conversion.source_tokenizer, smoke=False)
    assert report.passed  # at the dtype's tolerance
    cast = convert(
        tmp_path / "sharded", to="bigbird", max_length=64, block_size=4, num_random_blocks=1, dtype="float32"
    )
    assert next(cast.model.parameters()).dtype == torch.float32


def test_an_index_naming_a_missing_shard_is_refused(tmp_path):
    make_source("roberta", "base").save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    shard = sorted((tmp_path / "sharded").glob("model-*.safetensors"))[1]
    shard.unlink()
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "sharded"), str(tmp_path / "out")])
    assert result.exit_code == 2 and f"missing from {tmp_path / 'sharded'} ({shard.name})" in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConversionError, match="copy the whole checkpoint"):
        convert(tmp_path / "sharded")
    assert transformers.AutoConfig.from_pretrained(tmp_path / "sharded").model_type == "roberta"


@pytest.mark.parametrize("name", ["../outside/model.safetensors", "/etc/passwd", "sub/model.safetensors", ".."])
def test_an_index_naming_a_shard_outside_the_directory_is_refused(tmp_path, name):
    make_source("roberta", "base").save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    index_path = tmp_path / "sharded" / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = name
    index_path.write_text(json.dumps(index))
    for args in (
        ["convert", str(tmp_path / "sharded"), str(tmp_path / "out")],
        ["convert", str(tmp_path / "sharded"), str(tmp_path / "out"), "--in-memory"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "outside its directory" in result.output and name in result.output
        assert not (tmp_path / "out").exists()
