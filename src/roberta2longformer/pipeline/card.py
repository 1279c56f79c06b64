"""The model card written next to a converted (or resized, or imported) model: what it is, how to load
it, what verification proved, and what it needs before it is useful."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.heads import head_for_class_name
from ..core.locations import card_source, model_name
from ..core.vocabulary import AUTO_CLASS, PIPELINE_TAG
from ..io.card import loading_snippet, model_card, settings_text
from ..targets import readable_length

if TYPE_CHECKING:
    from ..core.plan import Conversion
    from ..verification import VerificationReport


def conversion_card(conversion: Conversion, report: VerificationReport | None, directory: Path) -> str:
    """The card of a conversion (or resize) written to ``directory``."""
    lines = [*_made(conversion), "", "## Verification", "", *_verification(conversion, report)]
    lines += [
        "",
        "## What this model is and is not",
        "",
        _what_it_is(conversion, (directory / "modules.json").is_file()),
    ]
    lines += [f"- Note: {note}" for note in conversion.notes]
    body = "\n".join(lines) + "\n"
    target = conversion.target
    head = None if target.is_encoder_decoder else head_for_class_name(conversion.model_class)
    tags = [target.name, "long-context", "roberta2longformer"]
    if (directory / "modules.json").is_file():  # a sentence-transformers model: tagged and loaded as one
        body += _sentence_transformers_section(directory, conversion.max_length)
        return model_card(
            body,
            tags=[*tags, "sentence-transformers", "feature-extraction", "sentence-similarity"],
            pipeline_tag="sentence-similarity",
            library_name="sentence-transformers",
            **card_source(conversion.source_name),
        )
    return model_card(
        body,
        tags=tags,
        pipeline_tag="text2text-generation" if target.is_encoder_decoder else PIPELINE_TAG.get(head),
        **card_source(conversion.source_name),
    )


def _made(conversion: Conversion) -> list[str]:
    return [
        f"# {conversion.model_class} converted from `{model_name(conversion.source_name) or conversion.source_class}`",
        "",
        f"Made with roberta2longformer from a `{conversion.source_class}` "
        f"(reads up to {readable_length(conversion.source_config)} tokens) to "
        f"`{conversion.model_class}` for inputs of up to **{conversion.max_length} tokens**, "
        f"in {conversion.seconds:.1f} s. Options: {settings_text(conversion.options)}.",
        "",
        "Load it with the plain `transformers` classes (no `trust_remote_code`):",
        "",
        *_usage(conversion),
    ]


def _usage(conversion: Conversion) -> list[str]:
    """How to load it: the Auto class of its head (an encoder-decoder's: AutoModelForSeq2SeqLM)."""
    if conversion.target.is_encoder_decoder:
        auto = "AutoModelForSeq2SeqLM"
    else:
        auto = AUTO_CLASS[head_for_class_name(conversion.model_class)]
    return loading_snippet(auto, conversion.model_class)


def _verification(conversion: Conversion, report: VerificationReport | None) -> list[str]:
    if report is None:
        return ["Verification was skipped (`--no-verify`): nothing below proves this model exact."]
    verdict = "passed" if report.passed else "FAILED"
    lines = [
        f"Verification **{verdict}**: on inputs of up to {report.exact_length} tokens ({conversion.target.exact_where}, "
        f"within the source's positions) the converted model reproduces "
        f"the source; largest difference {report.max_abs_diff:.2e}. Took {report.seconds:.1f} s, "
        f"peak resident memory {report.peak_rss_mb:.0f} MB.",
        "",
        "| case | output | max abs diff | atol | |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {c.case} | `{c.output}` | {c.max_abs_diff:.2e} | {c.atol:g} | {'✓' if c.passed else '✗'} |"
        for c in report.checks
    ]
    if report.approximation:
        lines += [
            "",
            "What the approximate attention costs against the source, before any training "
            "(hidden states; reported, not an exactness check):",
            "",
            "| length | regime | max abs diff | mean cosine |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {a['length']} | {a['regime']} | {a['max_abs_diff']:.2e} | {a['mean_cosine']:.4f} |"
            for a in report.approximation
        ]
    if report.smoke is not None:
        lines += [
            "",
            f"Smoke forward at the full length ({report.smoke['length']} tokens): "
            f"{report.smoke['seconds']:.2f} s, outputs finite: {report.smoke['finite']}.",
        ]
    return lines


def _advice(conversion: Conversion, sentence_transformer: bool) -> str:
    """What the model needs before it is useful, for its head: no masked-LM advice for a model without that head."""
    target = conversion.target
    if sentence_transformer:
        return (
            "fine-tuning as an embedder on long documents (`roberta2longformer finetune --task embedding`; "
            "`--only-positions-beyond N` keeps inputs of up to N tokens exact)"
        )
    if target.is_encoder_decoder or head_for_class_name(conversion.model_class) == "masked_lm":
        return target.training_advice
    return (
        "fine-tuning for your task at the new length (`roberta2longformer finetune`); continued masked-LM "
        "pretraining needs a masked-LM head, so convert the source's masked-LM model for that"
    )


def _what_it_is(conversion: Conversion, sentence_transformer: bool = False) -> str:
    init = conversion.options.get("position_init", "tile")
    if "resized_from" in conversion.options:
        return (
            f"Resized from {conversion.options['resized_from']} to {conversion.max_length} tokens: every weight "
            f"is kept and only the position table changed (new rows: `{init}`), so it computes what the "
            "original computed on every input both can read."
        )
    carried = ", ".join(conversion.carried) or "the embeddings and every layer"
    lost = (
        f" {conversion.target.title} has no place for the source's {', '.join(conversion.dropped)} weights (see the notes)."
        if conversion.dropped
        else ""
    )
    return (
        f"Carried over from the source: {carried}.{lost} New position rows were initialised with `{init}`. "
        "The model has never been trained on inputs longer than its source's: expect it to be useful only after "
        f"{_advice(conversion, sentence_transformer)}."
    )


def _sentence_transformers_section(directory: Path, max_length: int) -> str:
    """How to load a converted sentence-transformers model, and what of the source it keeps."""
    listed = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
    kept = [m["type"].rsplit(".", 1)[-1] for m in listed if m.get("path")]
    return "\n".join([
        "",
        "## As a sentence-transformers model",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        "from roberta2longformer import fast  # optional: the same embeddings, faster on long inputs",
        "",
        'model = SentenceTransformer("path/to/this/directory")',
        "fast.enable(model)",
        'embeddings = model.encode(["a long document …"], normalize_embeddings=True)',
        "```",
        "",
        f"The source's {', '.join(kept) or 'modules'} carried over; `max_seq_length` is {max_length}. "
        "`AutoModel.from_pretrained` loads the transformer alone.",
        "",
    ])  # fmt: skip


def import_card(model, checkpoint: str) -> str:
    """The card of a fairseq checkpoint written as a transformers model by ``import-fairseq``."""
    config = model.config
    body = "\n".join([
        f"# {type(model).__name__} imported from the fairseq checkpoint `{model_name(checkpoint)}`",
        "",
        f"Written by `roberta2longformer import-fairseq`: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
        f"{config.vocab_size} tokens, {config.max_position_embeddings - 2} positions; fairseq's weights under "
        "transformers' names and its dictionary as a fast tokenizer (no fairseq needed). Nothing of the pickle ran: "
        "only tensors and settings were read.",
        "",
        *loading_snippet("AutoModelForMaskedLM", type(model).__name__),
        "",
        "Convert it to a long model with `roberta2longformer convert`.",
    ])  # fmt: skip
    return model_card(body + "\n", tags=["fairseq", "roberta", "roberta2longformer"], pipeline_tag="fill-mask")
