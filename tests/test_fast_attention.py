"""The fast Longformer attention computes what transformers' computes: outputs and gradients."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
import torch
import transformers

from helpers import make_source
from roberta2longformer import ConversionError, convert, fast
from roberta2longformer.fast.attention import folds_global_projections
from roberta2longformer.fast.masks import padding_row
from roberta2longformer.targets import get_target

ATOL = 1e-5
HEADS = get_target("longformer").model_classes  # every Longformer head class


def converted(head: str, window=8, max_length: int = 96) -> torch.nn.Module:
    source = make_source("roberta", head, attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    return convert(source, max_length=max_length, attention_window=window).model


def random_longformer(seed: int = 0, window=8) -> transformers.LongformerModel:
    """Global projections that differ from the local ones, so a mix-up between them cannot pass."""
    config = transformers.LongformerConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=130,
        attention_window=window,
        attention_probs_dropout_prob=0.0,
        hidden_dropout_prob=0.0,
        initializer_range=0.3,
    )
    torch.manual_seed(seed)
    return transformers.LongformerModel(config)


def inputs(
    batch: int,
    length: int,
    *,
    padding: list[int] | None = None,
    global_positions: list[list[int]] | None = None,
    seed: int = 0,
):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (batch, length), generator=generator)
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    for row, pad in enumerate(padding or []):
        if pad:
            ids[row, length - pad :] = 1
            attention_mask[row, length - pad :] = 0
    global_mask = torch.zeros(batch, length, dtype=torch.long)
    for row, positions in enumerate(global_positions or []):
        global_mask[row, positions] = 1
    return {"input_ids": ids, "attention_mask": attention_mask, "global_attention_mask": global_mask}


def outputs_of(model, batch_inputs, **kwargs):
    out = model(**batch_inputs, output_hidden_states=True, return_dict=True, **kwargs)
    return [
        t
        for t in (getattr(out, "logits", None), getattr(out, "start_logits", None), out.hidden_states[-1])
        if t is not None
    ]


def assert_same_forward(model, batch_inputs):
    model.eval()
    fast_model = fast.enable(copy.deepcopy(model))
    with torch.no_grad():
        expected, got = outputs_of(model, batch_inputs), outputs_of(fast_model, batch_inputs)
    for e, g in zip(expected, got):
        assert torch.isfinite(g).all()
        assert (e - g).abs().max().item() <= ATOL


PROJECTED_GLOBALS = "so many globals that the global rows project every token"
CASES = {
    "multiple of the window, no globals": dict(batch=1, length=32),
    "not a multiple of the window": dict(batch=1, length=29),
    "shorter than one window": dict(batch=1, length=3),
    "global CLS": dict(batch=1, length=40, global_positions=[[0]]),
    "many globals, one inside another's window": dict(batch=1, length=40, global_positions=[[0, 3, 17, 39]]),
    "batch with padding": dict(batch=3, length=40, padding=[0, 13, 37]),
    "batch with padding and different global counts": dict(
        batch=3, length=37, padding=[0, 9, 30], global_positions=[[0, 5, 6], [0], []]
    ),
    "padding longer than a window": dict(batch=2, length=64, padding=[0, 50], global_positions=[[0], [0, 2]]),
    # 4 heads × 9 globals ≥ 32 hidden: the global rows project every token instead of folding.
    PROJECTED_GLOBALS: dict(batch=2, length=48, padding=[0, 5], global_positions=[[0, 1, 2, 3, 4, 5, 6, 7, 30], [2]]),
}


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_transformers(case):
    spec = dict(CASES[case])
    batch, length = spec.pop("batch"), spec.pop("length")
    model = random_longformer()
    count = max(len(p) for p in spec.get("global_positions", [[]]))
    layer = next(fast.self_attention_modules(model))
    assert folds_global_projections(layer, count) == (case != PROJECTED_GLOBALS)
    assert_same_forward(model, inputs(batch, length, **spec))


@pytest.mark.parametrize("head", HEADS)
def test_every_head_class_matches(head):
    model = converted(head)
    assert isinstance(model, HEADS[head])
    batch = inputs(2, 45, padding=[0, 11], global_positions=[[0, 4], [0]])
    if head == "multiple_choice":
        batch = {k: v.unsqueeze(0) for k, v in batch.items()}
    assert_same_forward(model, batch)


def test_per_layer_windows_match():
    assert_same_forward(random_longformer(window=[8, 4]), inputs(2, 50, padding=[0, 7], global_positions=[[0], [1, 2]]))


def attention_lengths(model, batch) -> list[int]:
    """The sequence length each self-attention layer of ``model`` is called with."""
    seen = []
    hooks = [
        module.register_forward_pre_hook(lambda module, args, kwargs: seen.append(args[0].shape[1]), with_kwargs=True)
        for module in fast.self_attention_modules(model)
    ]
    with torch.no_grad():
        model(**batch)
    for hook in hooks:
        hook.remove()
    return seen


def test_enabled_models_read_the_real_length_and_disable_pads_again():
    """transformers pads to a multiple of the window (64 here) for its own attention; the backend reads
    any length, its last query block filled up with slots nobody reads."""
    model = random_longformer(window=64).eval()
    batch = inputs(2, 45, padding=[0, 6], global_positions=[[0], [0, 3]])
    assert set(attention_lengths(model, batch)) == {64}
    assert_same_forward(model, batch)
    fast.enable(fast.enable(model))  # enabling twice is enabling once
    assert set(attention_lengths(model, batch)) == {45}
    assert set(attention_lengths(pickle.loads(pickle.dumps(model)), batch)) == {45}  # an enabled model pickles
    fast.disable(model)
    assert set(attention_lengths(model, batch)) == {64}


def test_the_benchmark_floor_reads_the_real_length_as_the_backend_does():
    from roberta2longformer.bench.models import floor_attention

    model = random_longformer(window=64).eval()
    floor_attention(model)
    assert set(attention_lengths(model, inputs(2, 45, padding=[0, 6], global_positions=[[0], [0, 3]]))) == {45}


def test_gradients_match_when_the_last_block_is_part_full():
    model = random_longformer(seed=4, window=64).train()
    fast_model = fast.enable(copy.deepcopy(model))
    assert_same_gradients(model, fast_model, inputs(2, 45, padding=[0, 6], global_positions=[[0], [0, 3]]))


def assert_same_gradients(model, fast_model, batch) -> None:
    """Gradients of a random projection of the last hidden states, compared at float precision
    relative to the largest gradient (small gradients are sums of cancelling large terms)."""
    target = torch.randn(
        *batch["input_ids"].shape, model.config.hidden_size, generator=torch.Generator().manual_seed(3)
    )
    for m in (model, fast_model):
        (m(**batch).last_hidden_state * target).sum().backward()
    pairs = [(name, p.grad, q.grad) for (name, p), q in zip(model.named_parameters(), fast_model.parameters())]
    scale = max(1.0, max(a.abs().max().item() for _, a, _ in pairs if a is not None))
    for name, a, b in pairs:
        if a is None:
            assert b is None or not b.any(), name
            continue
        assert torch.isfinite(b).all(), name
        assert (a - b).abs().max().item() <= ATOL * scale, name


@pytest.mark.parametrize("global_positions", [None, [[0, 9], [0]], [list(range(9)), [0]]])
def test_gradients_match_in_train_mode(global_positions):
    model = random_longformer(seed=1).train()  # dropout is 0 in this config, so train mode is comparable
    fast_model = fast.enable(copy.deepcopy(model))
    assert_same_gradients(model, fast_model, inputs(2, 37, padding=[0, 10], global_positions=global_positions))


def test_one_head_with_padding_and_globals_in_train_mode():
    """With one head SDPA's output is already in the layout the layer returns; the padding and
    global rows written in place must not touch what SDPA keeps for its backward."""
    model = random_longformer(seed=2)
    config = model.config
    config.num_attention_heads = 1
    torch.manual_seed(2)
    model = transformers.LongformerModel(config).train()
    fast_model = fast.enable(copy.deepcopy(model))
    assert_same_gradients(model, fast_model, inputs(1, 37, padding=[10], global_positions=[[0, 5]]))


def test_gradient_checkpointing_works_with_the_backend():
    model = random_longformer().train()
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers 5's name
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    fast_model = fast.enable(copy.deepcopy(model))
    assert_same_gradients(model, fast_model, inputs(1, 40, global_positions=[[0]]))


def test_disable_restores_transformers_code_and_output_attentions_is_refused():
    model = random_longformer().eval()
    batch = inputs(1, 24, global_positions=[[0]])
    fast.enable(model)
    assert fast.is_enabled(model)
    with pytest.raises(ValueError, match="disable"):
        model(**batch, output_attentions=True)
    fast.disable(model)
    assert not fast.is_enabled(model)
    assert model(**batch, output_attentions=True).attentions is not None


def test_models_without_longformer_attention_are_refused():
    with pytest.raises(ConversionError, match="no Longformer self-attention"):
        fast.enable(make_source("roberta", "base"))


def test_enable_if_switches_only_longformer_models_and_only_when_wanted():
    source = make_source("roberta", "base")
    assert fast.enable_if(source, True) is source  # nothing to switch: left as it is, no error
    model = random_longformer()
    assert not fast.is_enabled(fast.enable_if(model, False))
    assert fast.is_enabled(fast.enable_if(model, True))


def test_the_saved_model_is_unchanged(tmp_path):
    model = random_longformer()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast.enable(model)
    model.save_pretrained(tmp_path)
    reloaded = transformers.LongformerModel.from_pretrained(tmp_path)
    assert not fast.is_enabled(reloaded)
    assert all(torch.equal(before[k], v) for k, v in reloaded.state_dict().items())


def test_led_encoder_matches():
    source = make_source(
        "roberta", "base", layer_norm_eps=1e-5, attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0
    )
    model = convert(source, to="led", max_length=96, attention_window=8, decoder_max_length=16).model.eval()
    fast_model = fast.enable(copy.deepcopy(model))
    batch = inputs(2, 45, padding=[0, 11], global_positions=[[0, 4], [0]])
    with torch.no_grad():
        a = model.get_encoder()(**batch).last_hidden_state
        b = fast_model.get_encoder()(**batch).last_hidden_state
    assert (a - b).abs().max() <= ATOL


def test_cli_verify_and_evaluate_with_fast_attention(tmp_path, bpe_tokenizer):
    from click.testing import CliRunner

    from roberta2longformer.cli import app

    source = tmp_path / "source"
    make_source("roberta", "masked_lm").save_pretrained(source)
    bpe_tokenizer.save_pretrained(source)
    runner = CliRunner()
    converted_dir = tmp_path / "long"
    assert (
        runner.invoke(
            app,
            [
                "convert",
                str(source),
                str(converted_dir),
                "--max-length",
                "64",
                "--attention-window",
                "8",
                "--no-verify",
            ],
        ).exit_code
        == 0
    )
    for flag, backend in (([], "roberta2longformer.fast"), (["--no-fast-attention"], "transformers")):
        report = tmp_path / f"verify{len(flag)}.json"
        verified = runner.invoke(app, ["verify", str(source), str(converted_dir), "--json", str(report), *flag])
        assert verified.exit_code == 0, verified.output
        assert f"attention computed by {backend}" in verified.output
        assert json.loads(report.read_text())["attention"] == backend
    (tmp_path / "doc.txt").write_text("It is a truth universally acknowledged. " * 12)
    results = tmp_path / "evaluate.json"
    evaluated = runner.invoke(
        app, ["evaluate", str(source), str(converted_dir), "--data", str(tmp_path / "doc.txt"), "--json", str(results)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    backends = [row["attention"] for row in json.loads(results.read_text())]
    assert backends == ["transformers", "roberta2longformer.fast"]  # the short source has no Longformer layers


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
#: (device, dtype) → (max, mean) tolerance on the last hidden state: verify's for the dtype.
DEVICE_CASES = {
    ("cpu", torch.bfloat16): (0.1, 2e-2),
    ("cuda", torch.float32): (ATOL, ATOL),
    ("cuda", torch.float16): (2e-2, 2e-3),
    ("cuda", torch.bfloat16): (0.1, 2e-2),
}


@pytest.mark.parametrize(
    "device, dtype",
    [pytest.param(*case, marks=CUDA if case[0] == "cuda" else (), id=f"{case[0]}-{case[1]}") for case in DEVICE_CASES],
)
def test_devices_and_half_precision_match_within_their_rounding(device, dtype):
    """Forward and gradients on every device and dtype the backend runs in (CUDA where there is one)."""
    model = random_longformer().to(device, dtype).eval()
    fast_model = fast.enable(copy.deepcopy(model))
    batch = {k: v.to(device) for k, v in inputs(2, 40, padding=[0, 9], global_positions=[[0], [0, 3]]).items()}
    with torch.no_grad():
        a = model(**batch).last_hidden_state.float()
        b = fast_model(**batch).last_hidden_state.float()
    assert torch.isfinite(b).all()
    largest, mean = DEVICE_CASES[device, dtype]
    relative = 1.6e-2 if dtype == torch.bfloat16 else 2e-3 if dtype == torch.float16 else 0.0
    assert (a - b).abs().max() <= largest + relative * a.abs().max()  # verify's tolerance for the dtype
    assert (a - b).abs().mean() <= mean
    model.train(), fast_model.train()  # dropout is 0: gradients are comparable
    for m in (model, fast_model):
        m(**batch).last_hidden_state.float().square().mean().backward()
    pairs = [(name, p.grad, q.grad) for (name, p), q in zip(model.named_parameters(), fast_model.parameters())]
    pairs = [(name, a.float(), b.float()) for name, a, b in pairs if a is not None]
    scale = max(a.abs().max().item() for _, a, _ in pairs)  # small gradients are sums of cancelling terms
    share = 1e-4 if dtype == torch.float32 else 5e-2
    for name, a, b in pairs:
        assert torch.isfinite(b).all() and (a - b).abs().max().item() <= share * scale, name


def test_each_model_holds_its_own_mask_cache():
    """Masks are reused across the layers of one forward; two models never share them (nor two threads
    that run a model each)."""
    from roberta2longformer.fast.attention import MASK_CACHE

    first, second = fast.enable(random_longformer(0)), fast.enable(random_longformer(1))
    caches = {id(getattr(m, MASK_CACHE)) for m in fast.self_attention_modules(first)}
    assert len(caches) == 1  # one per model, shared by its layers
    assert caches.isdisjoint(id(getattr(m, MASK_CACHE)) for m in fast.self_attention_modules(second))
    with torch.no_grad():
        first(**inputs(2, 40, padding=[0, 13]))
        second(**inputs(1, 40))
    assert getattr(next(fast.self_attention_modules(first)), MASK_CACHE).value  # filled by its own forward
    fast.disable(first)
    assert not any(hasattr(m, MASK_CACHE) for m in fast.self_attention_modules(first))


def test_padding_masks_are_broadcast_views_with_the_same_values(monkeypatch):
    """enable() has transformers build Longformer's and LED's padding masks as views of one row."""
    import transformers.models.led.modeling_led as led
    import transformers.models.longformer.modeling_longformer as longformer

    from roberta2longformer.fast import masks

    model = fast.enable(random_longformer()).eval()
    rows = []
    monkeypatch.setattr(masks, "padding_row", lambda *a: rows.append(a) or padding_row(*a))
    with torch.no_grad():
        model(**inputs(2, 20, padding=[0, 3], global_positions=[[0], []]))
    assert len(rows) == (1 if hasattr(longformer, "create_bidirectional_mask") else 0)  # a real forward takes it
    merged = torch.tensor([[1, 1, 2, 0, 0], [2, 1, 1, 1, 1]])  # 2 marks a global token, 0 padding
    embeds = torch.zeros(2, 5, 8)
    config = transformers.LongformerConfig()
    config._attn_implementation = "eager"
    if hasattr(longformer, "create_bidirectional_mask"):  # transformers 5; 4.57 builds a 2D mask
        build = longformer.create_bidirectional_mask
        args = dict(config=config, inputs_embeds=embeds, attention_mask=merged.clamp(0, 1))
        args["allow_is_bidirectional_skip"] = False  # as LongformerModel calls it
        expected, got = build.__wrapped__(**args), build(**args)
        assert got.stride(2) == 0 and torch.equal(expected, got)
    build = getattr(led, "_prepare_4d_attention_mask_inverted", None)
    for dtype, target_length in ((torch.float32, None), (torch.bfloat16, 3)) if build else ():
        expected, got = build.__wrapped__(merged, dtype, target_length), build(merged, dtype, target_length)
        assert got.stride(2) == 0 and got.dtype == dtype and torch.equal(expected, got)
