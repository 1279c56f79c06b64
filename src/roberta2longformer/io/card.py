"""The model card (``README.md``, with Hugging Face's YAML front matter) written next to a converted model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.loading import hub_id, model_name, source_license
from ..core.sources import AUTO_CLASS, PIPELINE_TAG, head_for_class_name, readable_length

if TYPE_CHECKING:
    from ..core.convert import Conversion
    from ..verification import VerificationReport


def _what_it_is(conversion: Conversion) -> str:
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
        f"{conversion.target.training_advice}."
    )


def card_metadata(conversion: Conversion) -> dict:
    """The front matter: library, base model and license where known, tags, pipeline tag."""
    target = conversion.target
    head = None if target.is_encoder_decoder else head_for_class_name(conversion.model_class)
    data = {
        "library_name": "transformers",
        "base_model": hub_id(conversion.source_name),
        "license": source_license(conversion.source_name),
        "tags": [target.name, "long-context", "roberta2longformer"],
        "pipeline_tag": "text2text-generation" if target.is_encoder_decoder else PIPELINE_TAG.get(head),
    }
    return data


def usage(conversion: Conversion) -> list[str]:
    """How to load it: the Auto class of its head (an encoder-decoder's: AutoModelForSeq2SeqLM)."""
    if conversion.target.is_encoder_decoder:
        auto = "AutoModelForSeq2SeqLM"
    else:
        auto = AUTO_CLASS[head_for_class_name(conversion.model_class)]
    return loading_snippet(auto, conversion.model_class)


def loading_snippet(auto: str, class_name: str) -> list[str]:
    """The card's Python block: load the model with the ``auto`` class and its tokenizer."""
    return [
        "```python",
        f"from transformers import {auto}, AutoTokenizer",
        f'model = {auto}.from_pretrained("path/to/this/directory")  # a {class_name}',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/directory")',
        "```",
    ]


def with_front_matter(metadata: dict, body: str) -> str:
    """A model card as huggingface_hub writes one: YAML front matter (fields that are ``None`` left out),
    then the Markdown body."""
    from huggingface_hub import ModelCard, ModelCardData

    known = {key: value for key, value in metadata.items() if value is not None}
    return str(ModelCard(f"---\n{ModelCardData(**known).to_yaml()}\n---\n\n{body}"))


def render_card(conversion: Conversion, report: VerificationReport | None) -> str:
    options = ", ".join(f"`{k}={v}`" for k, v in conversion.options.items())
    lines = [
        f"# {conversion.model_class} converted from `{model_name(conversion.source_name) or conversion.source_class}`",
        "",
        f"Made with roberta2longformer from a `{conversion.source_class}` "
        f"(reads up to {readable_length(conversion.source_config)} tokens) to "
        f"`{conversion.model_class}` for inputs of up to **{conversion.max_length} tokens**, "
        f"in {conversion.seconds:.1f} s. Options: {options}.",
        "",
        "Load it with the plain `transformers` classes (no `trust_remote_code`):",
        "",
        *usage(conversion),
        "",
        "## Verification",
        "",
    ]
    if report is None:
        lines.append("Verification was skipped (`--no-verify`): nothing below proves this model exact.")
    else:
        verdict = "passed" if report.passed else "FAILED"
        lines += [
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
    lines += ["", "## What this model is and is not", "", _what_it_is(conversion)]
    lines += [f"- Note: {note}" for note in conversion.notes]
    return with_front_matter(card_metadata(conversion), "\n".join(lines) + "\n")


def training_card(model, summary: dict, *, source_name: str, data: list[str], options: dict) -> str:
    """The card of a model that ``pretrain`` wrote: what it was trained from, on what, and how it scored."""
    from ..targets import target_or_none

    target = target_or_none(model.config)
    metadata = {
        "library_name": "transformers",
        "base_model": hub_id(source_name),
        "license": source_license(source_name),
        "tags": [*([target.name] if target else []), "long-context", "roberta2longformer", "continued-pretraining"],
        "pipeline_tag": "fill-mask",
    }
    held_out = (
        f"Held-out masked-LM loss {summary['eval_loss']:.4f} nats per masked token"
        + (f", {summary['eval_bpc']:.4f} bits per character" if "eval_bpc" in summary else "")
        + f", on {summary['eval_blocks']} blocks of documents held out from training (the same seeded masks at "
        "every evaluation)."
        if "eval_loss" in summary
        else "No documents were held out, so there is no held-out score."
    )
    settings = ", ".join(f"`{key}={value}`" for key, value in options.items())
    lines = [
        f"# {type(model).__name__} after continued masked-LM pretraining",
        "",
        f"Made with `roberta2longformer pretrain` from `{model_name(source_name) or type(model).__name__}`: "
        f"{summary['steps']} optimizer steps on {summary['train_blocks']} blocks of {summary['block_length']} tokens "
        f"from {', '.join(f'`{model_name(d)}`' for d in data)}. Training loss {summary['train_loss']:.4f}.",
        "",
        held_out,
        "",
        *loading_snippet("AutoModelForMaskedLM", type(model).__name__),
        "",
        f"Settings: {settings}. Its training log is `metrics.csv` beside this directory.",
    ]
    return with_front_matter(metadata, "\n".join(lines) + "\n")


def finetuning_card(model, summary: dict, *, source_name: str, data: dict, options: dict) -> str:
    """The card of a model that ``finetune`` wrote: the task, the data, how it read the documents, its scores."""
    from ..targets import target_or_none
    from ..train.finetuning import REPORTED_METRICS

    target = target_or_none(model.config)
    summarizing = summary["task"] == "summarization"
    metadata = {
        "library_name": "transformers",
        "base_model": hub_id(source_name),
        "license": source_license(source_name),
        "tags": [*([target.name] if target else []), "long-context", "roberta2longformer", summary["task"]],
        "pipeline_tag": "summarization" if summarizing else "text-classification",
    }
    if not summarizing:
        names = [model.config.id2label[i] for i in sorted(model.config.id2label)]
        labels = f" Labels ({len(names)}): {', '.join(f'`{n}`' for n in names[:20])}{' …' if len(names) > 20 else ''}."
    else:
        labels = ""

    def scores(split: str) -> str:
        values = summary.get(split) or {}
        return ", ".join(f"{key} {values[key]:.4f}" for key in REPORTED_METRICS if key in values) or "none"

    used = ", ".join(f"{split} `{model_name(path)}`" for split, path in data.items() if path)
    settings = ", ".join(f"`{key}={value}`" for key, value in options.items() if value not in (None, [], ""))
    lines = [
        f"# {type(model).__name__} fine-tuned for {summary['task']}",
        "",
        f"Made with `roberta2longformer finetune` from `{model_name(source_name) or type(model).__name__}` on {used}: "
        f"{summary['steps']} optimizer steps, reading {summary['reading']} of each document.{labels}",
        "",
        f"Scores on the evaluation data ({summary['eval_documents']} documents): {scores('eval')}"
        + (f" (before fine-tuning: {scores('eval_before_training')})" if summary.get("eval_before_training") else "")
        + "."
        + (f" On the test data: {scores('test')}." if summary.get("test") else ""),
        "",
        *loading_snippet("AutoModelForSeq2SeqLM" if summarizing else "AutoModelForSequenceClassification",
                         type(model).__name__),
        "",
        f"Settings: {settings}.",
    ]  # fmt: skip
    return with_front_matter(metadata, "\n".join(lines) + "\n")


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
    metadata = {
        "library_name": "transformers",
        "tags": ["fairseq", "roberta", "roberta2longformer"],
        "pipeline_tag": "fill-mask",
    }
    return with_front_matter(metadata, body + "\n")


def sentence_transformers_section(directory, max_length: int) -> str:
    """How to load a converted sentence-transformers model, and what of the source it keeps."""
    import json

    listed = json.loads((directory / "modules.json").read_text(encoding="utf-8"))
    kept = [m["type"].rsplit(".", 1)[-1] for m in listed if m.get("path")]
    return "\n".join([
        "",
        "## As a sentence-transformers model",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer("path/to/this/directory")',
        'embeddings = model.encode(["a long document …"])',
        "```",
        "",
        f"The source's {', '.join(kept) or 'modules'} carried over; `max_seq_length` is {max_length}. "
        "`AutoModel.from_pretrained` loads the transformer alone.",
        "",
    ])  # fmt: skip
