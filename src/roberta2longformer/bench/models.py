"""The models and inputs the benchmarks measure: random checkpoints and converted models in real shapes."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..targets import all_targets, get_target

SHAPES: dict[str, dict[str, int]] = {
    "small": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
}
VOCAB_SIZE = 50265  # roberta-base's, so the embedding matrix weighs what it weighs there
#: The full-attention baseline: the extended target (RoBERTa with its positions extended, SDPA attention;
#: results measured before it existed call it ``full-sdpa``, the same model).
FULL_ATTENTION = "extended"
#: What inference and training measure: the baseline first, then every other encoder-only target.
ARCHITECTURES = (
    FULL_ATTENTION,
    *(t.name for t in all_targets() if not t.is_encoder_decoder and t.name != FULL_ATTENTION),
)


def has_fast_attention(arch: str) -> bool:
    return arch != FULL_ATTENTION and get_target(arch).has_fast_attention


def make_source_checkpoint(directory: Path, shape: str) -> Path:
    """A random RobertaForMaskedLM of ``shape`` with a byte-level BPE tokenizer (vocab.json + merges.txt)."""
    import torch  # torch and transformers: in the worker that measures, not when the command line starts
    import transformers
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    # torch and transformers: in the worker that measures, not when the command line starts
    # torch and transformers: in the worker that measures, not when the command line starts
    from ..compat import saved_state
    from ..core.locations import resolve_source
    from ..core.plan import instantiate_without_init

    directory.mkdir(parents=True, exist_ok=True)
    config = transformers.RobertaConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=514, **SHAPES[shape])
    meta = instantiate_without_init(transformers.RobertaForMaskedLM, config, meta=True)
    generator = torch.Generator().manual_seed(0)
    tensors = {
        key: torch.empty(tuple(t.shape)).normal_(0.0, 0.02, generator=generator) for key, t in saved_state(meta).items()
    }
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    config.architectures = ["RobertaForMaskedLM"]
    config.save_pretrained(directory)
    # The built-in RoBERTa's tokenizer as vocab.json + merges.txt, which old tokenizers (LSG's) read too.
    Tokenizer.from_file(str(Path(resolve_source("builtin:austen-roberta")) / "tokenizer.json")).model.save(
        str(directory)
    )
    return directory


def build_model(arch: str, shape: str, length: int, *, masked_lm: bool = False, backend: str = "transformers"):
    """A random model of ``arch`` that reads ``length`` tokens, converted from a random RoBERTa (``extended``,
    the full-attention baseline: RoBERTa itself with its positions extended, SDPA attention)."""
    import torch  # torch and transformers: in the worker that measures, not when the command line starts
    import transformers

    # torch and transformers: in the worker that measures, not when the command line starts
    from ..pipeline import convert

    torch.manual_seed(0)
    config = transformers.RobertaConfig(
        vocab_size=VOCAB_SIZE,
        max_position_embeddings=514,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **SHAPES[shape],
    )
    cls = transformers.RobertaForMaskedLM if masked_lm else transformers.RobertaModel
    model = convert(cls(config), to=arch, max_length=length).model  # each target's default options
    if backend == "fast":
        from .. import fast  # torch and transformers: in the worker that measures, not when the command line starts

        fast.enable(model)
    elif backend == "floor":
        floor_attention(model)
    return model


def floor_attention(model) -> None:
    """The speed floor of the fast backend: every Longformer layer computes the projections the fast
    backend computes (local ones; the global query, and the global key and value of every token
    only where the backend projects them rather than folding them, see
    :func:`~roberta2longformer.fast.attention.folds_global_projections`) but no attention product;
    the output is the values."""
    import types  # torch and transformers: in the worker that measures, not when the command line starts

    # torch and transformers: in the worker that measures, not when the command line starts
    from ..fast import global_slots, masks, self_attention_modules, stop_window_padding
    from ..fast.attention import folds_global_projections

    masks.install()  # as fast.enable does: the floor pays for no L × L padding mask either
    stop_window_padding(model)  # nor for padding to whole windows

    def forward(
        self,
        hidden_states,
        attention_mask=None,
        is_index_masked=None,
        is_index_global_attn=None,
        is_global_attn=None,
        output_attentions=False,
        **kwargs,
    ):
        self.query(hidden_states), self.key(hidden_states)
        output = self.value(hidden_states)
        if is_global_attn:
            slots = global_slots(is_index_global_attn)
            if slots is not None:
                rows = slots.index[:, :, None].expand(-1, -1, hidden_states.shape[2])
                self.query_global(hidden_states.gather(1, rows))
                if not folds_global_projections(self, slots.count):
                    self.key_global(hidden_states), self.value_global(hidden_states)
        return (output,)

    for module in self_attention_modules(model):
        module.forward = types.MethodType(forward, module)


def model_inputs(arch: str, batch: int, length: int, device: str):
    """Random ids starting with ``<s>``, no padding (and a global first token where the model has them)."""
    import torch  # torch and transformers: in the worker that measures, not when the command line starts

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, VOCAB_SIZE, (batch, length), generator=generator)
    ids[:, 0] = 0
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if arch != FULL_ATTENTION:
        inputs.update(get_target(arch).extra_inputs(ids, True))  # a global first token where there are any
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def long_mode(model, arch: str, length: int) -> contextlib.AbstractContextManager:
    """The model's own long-input attention at ``length`` tokens (e.g. Nyströmformer's landmarks)."""
    return contextlib.nullcontext() if arch == FULL_ATTENTION else get_target(arch).long_mode(model, length)
