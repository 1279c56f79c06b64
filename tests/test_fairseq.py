"""fairseq RoBERTa checkpoints as sources: the real sapiens protein model, synthetic ones, bad files."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import tiny_config
from roberta2longformer import ConversionError, convert, verify
from roberta2longformer.cli import app
from roberta2longformer.core.fairseq import build_tokenizer, load_fairseq_roberta, read_dictionary
from roberta2longformer.targets.nystromformer import attention_regime
from tests.fairseq_reference import fairseq_roberta

ROOT = Path(__file__).resolve().parents[1]
SAPIENS = ROOT / ".cache" / "assets" / "sapiens" / "sapiens" / "models" / "v1"
# Variable regions of real antibody heavy chains (pembrolizumab, as in the sapiens README;
# trastuzumab; adalimumab).
HEAVY_CHAINS = [
    "QVQLVQSGVEVKKPGASVKVSCKASGYTFTNYYMYWVRQAPGQGLEWMGGINPSNGGTNFNEKFKNRVTLTTDSSTTTAYMELKSLQFDDTAVYYCARRDYRFDMGFDYWGQGTTVTVSS",
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS",
    "EVQLVESGGGLVQPGRSLRLSCAASGFTFDDYAMHWVRQAPGKGLEWVSAITWNSGHIDYADSVEGRFTISRDNAKNSLYLQMNSLRAEDTAVYYCAKVSYLSTASSLDYWGQGTLVTVSS",
]


@pytest.fixture(scope="module")
def sapiens_checkpoint() -> Path:
    if not (SAPIENS / "dict.txt").is_file():
        if os.environ.get("CI"):
            pytest.fail("scripts/setup.sh dev should have fetched the sapiens wheel into .cache/assets")
        pytest.skip("run scripts/setup.sh dev to fetch the real fairseq weights (sapiens)")
    return SAPIENS / "checkpoint_vh.pt"


@pytest.fixture(scope="module")
def sapiens(sapiens_checkpoint):
    return load_fairseq_roberta(sapiens_checkpoint, allow_pickle=True)


def _raw_state(path: Path) -> dict:
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def _masked_predictions(model, tokenizer, every: int = 7):
    """Mask every ``every``-th residue (one offset at a time); return predictions and the truth."""
    batch = tokenizer(HEAVY_CHAINS, padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    predicted, truth = [], []
    for offset in range(every):
        masked = ids.clone()
        where = torch.zeros_like(ids, dtype=torch.bool)
        where[:, 1 + offset :: every] = True
        where &= (ids > 3) & (ids != tokenizer.mask_token_id)  # residues only
        masked[where] = tokenizer.mask_token_id
        with torch.inference_mode():
            logits = model(input_ids=masked, attention_mask=mask).logits
        predicted.append(logits[where].argmax(-1))
        truth.append(ids[where])
    return torch.cat(predicted), torch.cat(truth)


def test_real_checkpoint_matches_fairseq_computation(sapiens_checkpoint, sapiens):
    model, tokenizer = sapiens
    raw = _raw_state(sapiens_checkpoint)
    assert model.config.max_position_embeddings == 146 and model.config.vocab_size == 25
    batch = tokenizer(HEAVY_CHAINS, padding=True, return_tensors="pt")
    assert (
        batch["input_ids"][0, 0] == 0
        and tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True) == HEAVY_CHAINS[0]
    )
    hidden, logits = fairseq_roberta(raw["model"], raw["args"].encoder_attention_heads, batch["input_ids"])
    with torch.inference_mode():
        ours = model(**batch, output_hidden_states=True)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(ours.hidden_states[-1][real], hidden[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.logits[real], logits[real], atol=1e-4, rtol=0)
    predicted, truth = _masked_predictions(model, tokenizer)
    assert (predicted == truth).float().mean() > 0.6  # it really predicts antibody residues


@pytest.mark.parametrize(
    "to, options, exact",
    [
        ("longformer", {"attention_window": 288}, 144),
        ("nystromformer", {"num_landmarks": 16, "max_length": 512}, 144),
        ("bigbird", {"block_size": 16, "num_random_blocks": 2}, 144),  # full attention up to 144
        ("led", {"attention_window": 288, "decoder_max_length": 256}, 144),
        ("extended", {}, 144),  # full attention: exact at the source's whole length
    ],
)
def test_every_target_from_the_real_fairseq_file(sapiens_checkpoint, to, options, exact):
    options = {"max_length": 576, **options}
    conversion = convert(sapiens_checkpoint, to=to, allow_pickle=True, **options)
    report = verify(conversion.source_model, conversion.model, conversion.source_tokenizer, texts=HEAVY_CHAINS)
    assert report.passed and report.max_abs_diff <= 1e-4 and report.exact_length == exact
    assert any("+ 3 texts (≤144)" in c.case for c in report.checks)
    if to == "led":
        return
    # Masked-residue predictions of the long model equal the source's (Nyströmformer: in its
    # exact-softmax regime, since transformers' landmark regime needs inputs of segment length).
    width = conversion.source_tokenizer(HEAVY_CHAINS, padding=True, return_tensors="pt")["input_ids"].shape[1]
    regime = attention_regime(conversion.model, width) if to == "nystromformer" else contextlib.nullcontext()
    with regime:
        long_predictions = _masked_predictions(conversion.model, conversion.tokenizer)[0]
    assert torch.equal(long_predictions, _masked_predictions(conversion.source_model, conversion.source_tokenizer)[0])


def test_import_fairseq_cli_and_verify_cli(tmp_path, sapiens_checkpoint, sapiens):
    runner = CliRunner()
    result = runner.invoke(app, ["import-fairseq", str(sapiens_checkpoint), str(tmp_path / "hf")])
    assert result.exit_code == 2 and "--allow-pickle" in result.output and not (tmp_path / "hf").exists()
    result = runner.invoke(app, ["import-fairseq", str(sapiens_checkpoint), str(tmp_path / "hf"), "--allow-pickle"])
    assert result.exit_code == 0, result.output
    card = huggingface_hub.ModelCard.load(tmp_path / "hf" / "README.md")
    assert (
        card.data.library_name == "transformers"
        and card.data.pipeline_tag == "fill-mask"
        and "fairseq" in card.data.tags
    )
    model = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "hf").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert torch.equal(_masked_predictions(model, tokenizer)[0], _masked_predictions(*sapiens)[0])
    (tmp_path / "chains.txt").write_text("\n".join(HEAVY_CHAINS) + "\n")
    out = tmp_path / "long"
    result = runner.invoke(
        app,
        [
            "convert",
            str(sapiens_checkpoint),
            str(out),
            "--allow-pickle",
            "--max-length",
            "1024",
            "--attention-window",
            "288",
            "--texts",
            str(tmp_path / "chains.txt"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 texts (≤144), batch" in result.output
    result = runner.invoke(app, ["verify", str(sapiens_checkpoint), str(out), "--allow-pickle", "--no-smoke"])
    assert result.exit_code == 0, result.output


def _synthetic_fairseq(tmp_path: Path, *, arch: str = "roberta_small", normalize_before: bool = False) -> Path:
    """A tiny seeded RoBERTa written in fairseq ≤ 0.9's layout, with a character dict.txt."""
    torch.manual_seed(0)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    config = tiny_config("roberta", len(letters) + 5, type_vocab_size=1, layer_norm_eps=1e-5, initializer_range=0.2)
    source = transformers.RobertaForMaskedLM(config).eval()
    with torch.no_grad():
        source.roberta.embeddings.token_type_embeddings.weight.zero_()
    renames = {
        "roberta.embeddings.word_embeddings": "decoder.sentence_encoder.embed_tokens",
        "roberta.embeddings.position_embeddings": "decoder.sentence_encoder.embed_positions",
        "roberta.embeddings.LayerNorm": "decoder.sentence_encoder.emb_layer_norm",
        "attention.self.query": "self_attn.q_proj",
        "attention.self.key": "self_attn.k_proj",
        "attention.self.value": "self_attn.v_proj",
        "attention.output.dense": "self_attn.out_proj",
        "attention.output.LayerNorm": "self_attn_layer_norm",
        "intermediate.dense": "fc1",
        "output.dense": "fc2",
        "output.LayerNorm": "final_layer_norm",
        "roberta.encoder.layer": "decoder.sentence_encoder.layers",
        "lm_head.decoder.weight": "decoder.lm_head.weight",
        "lm_head.dense": "decoder.lm_head.dense",
        "lm_head.layer_norm": "decoder.lm_head.layer_norm",
        "lm_head.bias": "decoder.lm_head.bias",
    }
    state = {}
    for key, tensor in source.state_dict().items():
        if "token_type" in key or key == "lm_head.decoder.bias":
            continue
        for old, new in renames.items():
            key = key.replace(old, new)
        state[key] = tensor.clone()
    args = argparse.Namespace(
        arch=arch,
        encoder_attention_heads=4,
        activation_fn="gelu",
        dropout=0.1,
        attention_dropout=0.1,
        encoder_normalize_before=normalize_before,
    )
    directory = tmp_path / "fairseq"
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"args": args, "model": state, "extra_state": {}}, directory / "model.pt")
    (directory / "dict.txt").write_text("".join(f"{c} {100 - i}\n" for i, c in enumerate(letters)))
    return directory / "model.pt"


def test_synthetic_checkpoint_imports_exactly(tmp_path):
    path = _synthetic_fairseq(tmp_path)
    model, tokenizer = load_fairseq_roberta(path.parent, allow_pickle=True)  # a directory works too
    tokens = tokenizer(["ACDKLMW", "QQRSTVWYAC"], padding=True, return_tensors="pt")
    assert tokens["input_ids"][0].tolist() == [0, 4, 5, 6, 12, 13, 14, 22, 2, 1, 1, 1]
    hidden, logits = fairseq_roberta(torch.load(path, weights_only=False)["model"], 4, tokens["input_ids"])
    with torch.inference_mode():
        ours = model(**tokens, output_hidden_states=True)
    real = tokens["attention_mask"].bool()
    torch.testing.assert_close(ours.hidden_states[-1][real], hidden[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.logits[real], logits[real], atol=1e-4, rtol=0)


def test_gpt2_bpe_dictionary_gets_fairseq_ids(tmp_path):
    """dict.txt of GPT-2 ids (as in English RoBERTa/GottBERT) + encoder.json/vocab.bpe → byte-level BPE."""
    encoder = {"l": 0, "o": 1, "w": 2, "Ġ": 3, "lo": 4, "low": 5, "Ġlow": 6, "e": 7, "r": 8, "er": 9}
    (tmp_path / "encoder.json").write_text(json.dumps(encoder))
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\nl o\nlo w\nĠ low\ne r\n")
    (tmp_path / "dict.txt").write_text("".join(f"{gpt2_id} 1\n" for gpt2_id in (6, 5, 9, 0, 1, 2, 3, 4, 7, 8)))
    symbols = read_dictionary(tmp_path / "dict.txt")
    tokenizer = build_tokenizer(symbols, tmp_path, 32)
    ids = tokenizer("lower low")["input_ids"]
    # fairseq ids: <s>=0, then dict.txt order from 4: Ġlow→4, low→5, er→6, …; </s>=2
    assert ids == [0, 5, 6, 4, 2]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "lower low" and tokenizer.mask_token_id == 14


def test_bad_fairseq_inputs_are_refused_and_leave_nothing(tmp_path):
    path = _synthetic_fairseq(tmp_path)
    with pytest.raises(ConversionError, match="is a fairseq checkpoint, a pickle; pass --allow-pickle"):
        convert(path, to="longformer", max_length=64, attention_window=16)
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    shutil.copy(path.parent / "dict.txt", truncated / "dict.txt")
    (truncated / "model.pt").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConversionError, match="may be truncated"):
        load_fairseq_roberta(truncated / "model.pt", allow_pickle=True)
    no_dict = tmp_path / "no-dict"
    no_dict.mkdir()
    shutil.copy(path, no_dict / "model.pt")
    with pytest.raises(ConversionError, match="dict.txt the model was trained with"):
        load_fairseq_roberta(no_dict / "model.pt", allow_pickle=True)
    other = _synthetic_fairseq(tmp_path / "other", arch="transformer_lm")
    with pytest.raises(ConversionError, match="fairseq 'transformer_lm' checkpoint, not a RoBERTa one"):
        load_fairseq_roberta(other, allow_pickle=True)
    pre_ln = _synthetic_fairseq(tmp_path / "preln", normalize_before=True)
    with pytest.raises(ConversionError, match="encoder_normalize_before=True"):
        load_fairseq_roberta(pre_ln, allow_pickle=True)
    runner = CliRunner()
    result = runner.invoke(app, ["convert", str(truncated / "model.pt"), str(tmp_path / "out"), "--allow-pickle"])
    assert result.exit_code == 2 and "may be truncated" in result.output and not (tmp_path / "out").exists()


def _spoiled(path: Path, *, args=None, state=None) -> Path:
    """The synthetic checkpoint with its settings or weights changed."""
    checkpoint = torch.load(path, weights_only=False)
    for name, value in (args or {}).items():
        if value is None:
            delattr(checkpoint["args"], name)
        else:
            setattr(checkpoint["args"], name, value)
    if state is not None:
        checkpoint["model"] = state(checkpoint["model"])
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(
    "spoil, phrase",
    [
        (lambda p: _spoiled(p, args={"encoder_attention_heads": None}), "encoder_attention_heads=None"),
        (lambda p: _spoiled(p, args={"encoder_attention_heads": 5}), "does not divide the hidden size"),
        (lambda p: _spoiled(p, args={"activation_fn": "swishy"}), "activation_fn='swishy'"),
        (
            lambda p: _spoiled(p, state=lambda s: {k: v for k, v in s.items() if "embed_tokens" not in k}),
            "have no sentence_encoder.embed_tokens.weight",
        ),
        (
            lambda p: _spoiled(p, state=lambda s: {k: v.long() if "fc1.weight" in k else v for k, v in s.items()}),
            "not floating point",
        ),
        (lambda p: (p.parent / "dict.txt").write_bytes(b"\xff\xfe\x00\x81" * 50) and p, "is not a text file"),
    ],
    ids=["no heads", "heads do not divide", "unknown activation", "no embeddings", "integer weights", "binary dict"],
)
def test_a_broken_fairseq_checkpoint_gets_one_sentence(tmp_path, spoil, phrase):
    """Issue #34: these ended in AttributeError, ValueError, KeyError, StopIteration, UnicodeDecodeError, or
    (integer weights) a silent cast."""
    path = spoil(_synthetic_fairseq(tmp_path)) or _synthetic_fairseq(tmp_path)
    result = CliRunner().invoke(app, ["import-fairseq", str(path), str(tmp_path / "out"), "--allow-pickle"])
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
