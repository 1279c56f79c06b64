"""The model cards of trained models: what they were trained from, on what, how, and how they scored."""

from __future__ import annotations

from typing import Any

from ..core.locations import card_source, model_name
from ..io.card import loading_snippet, model_card, settings_text
from ..targets import target_or_none


def _tags(model, *more: str) -> list[str]:
    target = target_or_none(model.config)
    return [*([target.name] if target else []), "long-context", "roberta2longformer", *more]


def pretraining_card(model, summary: dict, *, source_name: str, data: list[str], options: dict) -> str:
    """The card of a model that ``pretrain`` wrote (in ``final/``)."""
    held_out = (
        f"Held-out masked-LM loss {summary['eval_loss']:.4f} nats per masked token"
        + (f", {summary['eval_bpc']:.4f} bits per character" if "eval_bpc" in summary else "")
        + f", on {summary['eval_blocks']} blocks of documents held out from training (the same seeded masks at "
        "every evaluation)."
        if "eval_loss" in summary
        else "No documents were held out, so there is no held-out score."
    )
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
        f"Settings: {settings_text(options)}. Its training log, `metrics.csv`, is in this directory.",
    ]
    return model_card(
        "\n".join(lines) + "\n",
        tags=_tags(model, "continued-pretraining"),
        pipeline_tag="fill-mask",
        **card_source(source_name),
    )


def finetuning_card(
    model,
    summary: dict,
    *,
    task: Any,
    source_name: str,
    data: dict,
    options: dict,
    described: str = "",
) -> str:
    """The card of a model that ``finetune`` wrote: the ``task`` (one of :mod:`.tasks`), the data, how it
    read the documents, its scores; ``described``: what the task says of the model (its labels)."""

    def scores(split: str) -> str:
        values = summary.get(split) or {}
        return ", ".join(f"{key} {values[key]:.4f}" for key in task.reported_metrics if key in values) or "none"

    used = ", ".join(f"{split} `{model_name(path)}`" for split, path in data.items() if path)
    lines = [
        f"# {type(model).__name__} fine-tuned for {task.name}",
        "",
        f"Made with `roberta2longformer finetune` from `{model_name(source_name) or type(model).__name__}` on {used}: "
        f"{summary['steps']} optimizer steps, reading {summary['reading']} of each document.{described}",
        "",
        f"Scores on the evaluation data ({summary['eval_documents']} documents): {scores('eval')}"
        + (f" (before fine-tuning: {scores('eval_before_training')})" if summary.get("eval_before_training") else "")
        + "."
        + (f" On the test data: {scores('test')}." if summary.get("test") else ""),
        "",
        *task.usage(type(model).__name__),
        "",
        f"Settings: {settings_text(options)}.",
    ]
    return model_card(
        "\n".join(lines) + "\n",
        tags=_tags(model, task.name),
        pipeline_tag=task.pipeline_tag,
        library_name=task.library_name,
        **card_source(source_name),
    )
