"""fairseq's RoBERTa forward, written from its layer definitions, on a raw fairseq state dict.

Independent of transformers and of our key mapping: ``TransformerSentenceEncoder`` (learned
positions from ``padding_idx + 1``, no token types, embedding layer norm, padded rows zeroed),
post-LN ``TransformerSentenceEncoderLayer`` (scaled q, softmax over keys without padding,
``out_proj``, residual + layer norm, gelu feed-forward, residual + layer norm) and
``RobertaLMHead`` (dense, gelu, layer norm, output projection + bias). Layer norms use eps 1e-5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD = 1
EPS = 1e-5


def _norm(x, state, name):
    return F.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], EPS)


def _linear(x, state, name):
    return F.linear(x, state[f"{name}.weight"], state[f"{name}.bias"])


def fairseq_roberta(state: dict, heads: int, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(last hidden state, masked-LM logits) of a fairseq RoBERTa for ``tokens`` (batch, length)."""
    prefix = "decoder." if any(k.startswith("decoder.sentence_encoder.") for k in state) else "encoder."
    se = prefix + "sentence_encoder."
    not_pad = tokens.ne(PAD)
    positions = torch.cumsum(not_pad, dim=1) * not_pad + PAD  # fairseq.utils.make_positions
    x = F.embedding(tokens, state[se + "embed_tokens.weight"]) + F.embedding(
        positions, state[se + "embed_positions.weight"]
    )
    x = _norm(x, state, se + ("emb_layer_norm" if se + "emb_layer_norm.weight" in state else "layernorm_embedding"))
    x = x * not_pad.unsqueeze(-1).to(x.dtype)
    batch, length, dim = x.shape
    head_dim = dim // heads
    layers = len({k.split(".")[3] for k in state if k.startswith(se + "layers.")})
    for i in range(layers):
        layer = f"{se}layers.{i}."

        def split(t):
            return t.view(batch, length, heads, head_dim).transpose(1, 2)

        q = split(_linear(x, state, layer + "self_attn.q_proj") * head_dim**-0.5)
        k = split(_linear(x, state, layer + "self_attn.k_proj"))
        v = split(_linear(x, state, layer + "self_attn.v_proj"))
        scores = q @ k.transpose(-1, -2)
        scores = scores.masked_fill(~not_pad[:, None, None, :], float("-inf"))
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, length, dim)
        x = _norm(x + _linear(attended, state, layer + "self_attn.out_proj"), state, layer + "self_attn_layer_norm")
        hidden = F.gelu(_linear(x, state, layer + "fc1"))
        x = _norm(x + _linear(hidden, state, layer + "fc2"), state, layer + "final_layer_norm")
    head = prefix + "lm_head."
    h = _norm(F.gelu(_linear(x, state, head + "dense")), state, head + "layer_norm")
    logits = F.linear(h, state[head + "weight"]) + state[head + "bias"]
    return x, logits
