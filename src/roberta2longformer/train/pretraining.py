"""Continued masked-LM pretraining of a (converted) long model with the ``transformers`` Trainer.

Everything the field expects comes from the Trainer: gradient accumulation, gradient
checkpointing, schedules, bf16/fp16, checkpoints and ``resume``, and multi-GPU/multi-node through
``accelerate launch``/``torchrun`` (DDP/FSDP) with no code change. What is ours:

- the data (:mod:`.data`: packed max-length blocks, held-out documents);
- Longformer's global projections: masked-LM training without global tokens never updates them,
  so afterwards they are copied again from the trained local ones (unless ``global_cls`` put
  global attention on each block's first token during training);
- ``only_positions_beyond``: train only the position rows past the source's length (the paper's
  "extra position embeddings only" ablation);
- ``from_config``: a fresh RoBERTa from a config (how the built-in model is made).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import (
    MODEL_FOR_MASKED_LM_MAPPING,
    AutoConfig,
    AutoModelForMaskedLM,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from ..core.loading import load_config, load_pretrained, load_tokenizer, refuse_code
from ..core.locations import resolve_source
from ..errors import ConversionError
from ..fast import backend_name
from ..targets import input_length, position_table, target_or_none
from . import data
from .cards import pretraining_card
from .documents import read_documents
from .masking import MaskedBlocks, with_fixed_masks
from .options import PretrainOptions
from .positions import freeze_all_but_positions
from .setup import check_output, checkpoint_step, guarded, resume_point, save_final, trainer_arguments

__all__ = ["PretrainOptions", "load_for_pretraining", "pretrain"]


def load_for_pretraining(
    model: str | Path | None,
    from_config: str | Path | None,
    tokenizer: str | Path | None,
    *,
    sinusoidal_positions: bool = False,
    seed: int = 0,
    allow_pickle: bool = False,
):
    """(model, tokenizer): a saved masked-LM model, or a fresh one from a config and a tokenizer.

    A saved one goes through the checks of :func:`~..core.loading.load_config` (complete, no code of
    its own, pickle weights only with ``allow_pickle``)."""
    if from_config is not None:
        return _fresh_model(Path(from_config), tokenizer, sinusoidal_positions, seed)
    location = resolve_source(model)
    config = load_config(location, allow_pickle=allow_pickle)  # complete, no code of its own, no pickle
    if type(config) not in MODEL_FOR_MASKED_LM_MAPPING:
        raise ConversionError(
            f"{model} is a {config.model_type} model, which has no masked-LM class; masked-LM training and "
            "evaluation need a …ForMaskedLM checkpoint (convert a masked-LM source)."
        )
    model_obj, loading = load_pretrained(
        AutoModelForMaskedLM, location, allow_pickle=allow_pickle, output_loading_info=True
    )
    fresh = sorted({*loading.get("missing_keys", ()), *(k for k, *_ in loading.get("mismatched_keys", ()))})
    if fresh:
        raise ConversionError(
            f"{model} has no masked-LM head: loading it as a masked-LM model would start {len(fresh)} weight(s) at "
            f"random ({', '.join(fresh[:3])}{' …' if len(fresh) > 3 else ''}), so its loss would mean nothing; "
            "masked-LM training and evaluation need a …ForMaskedLM checkpoint (convert a masked-LM source)."
        )
    tokenizer_obj = load_tokenizer(tokenizer or location)
    if tokenizer_obj is None:
        raise ConversionError(f"{location} has no tokenizer; pass --tokenizer.")
    return model_obj, tokenizer_obj


def _fresh_model(from_config: Path, tokenizer: str | Path | None, sinusoidal_positions: bool, seed: int):
    """A fresh masked-LM model from a config (a config.json or its directory) and a tokenizer; a config that names
    code of its own (``auto_map``) is refused: it would never run here, and would travel on into the output."""
    config_file = from_config / "config.json" if from_config.is_dir() else from_config
    try:
        fields = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ConversionError(
            f"--from-config {from_config} is not a readable config.json ({type(error).__name__}); give a config "
            "written by save_pretrained()."
        ) from None
    if not isinstance(fields, dict) or "model_type" not in fields:
        raise ConversionError(
            f"--from-config {from_config} has no model_type; give a config written by save_pretrained()."
        )
    refuse_code(config_file)
    config = load_pretrained(AutoConfig, str(config_file))
    torch.manual_seed(seed)
    model = AutoModelForMaskedLM.from_config(config)
    if sinusoidal_positions:
        _sinusoidal_start(model)
    tokenizer_obj = load_tokenizer(tokenizer or (from_config if from_config.is_dir() else from_config.parent))
    if tokenizer_obj is None:
        raise ConversionError(f"{from_config} has no tokenizer beside it; pass --tokenizer.")
    return model, tokenizer_obj


def _sinusoidal_start(model: PreTrainedModel) -> None:
    """Start the learned position rows as sinusoids (Vaswani et al.) scaled to ``initializer_range``.

    Measured on a 2-layer RoBERTa on the Austen novels (../shared/NOTES-pretraining.md): with this
    start and a larger init the model left the unigram plateau; it is still trained as usual.
    """
    table = model.get_parameter(position_table(model)[0])
    rows, dim = table.shape
    position = torch.arange(rows, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    sinusoids = torch.zeros(rows, dim)
    sinusoids[:, 0::2] = torch.sin(position * frequency)
    sinusoids[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    with torch.no_grad():
        table.copy_(sinusoids / sinusoids.std() * model.config.initializer_range)


class CsvMetrics(TrainerCallback):
    """Every logged metric, one row per log, appended to ``metrics.csv`` (survives resumes)."""

    FIELDS = ("step", "epoch", "loss", "eval_loss", "eval_bpc", "learning_rate", "grad_norm")
    #: A log with none of these (the end-of-training summary: runtime, train_loss) is not a row.
    MEASURED = ("loss", "eval_loss", "learning_rate", "grad_norm")

    def __init__(self, path: Path, chars_per_token: float | None) -> None:
        self.path = path
        self.chars_per_token = chars_per_token  # of the held-out documents: turns eval loss into BPC

    def keep_until(self, step: int) -> None:
        """Drop the rows logged after ``step`` (a resumed run logs those steps again), so the file
        stays one history in which the steps only go up."""
        if not self.path.exists():
            return
        with self.path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("step", "").isdigit() and int(row["step"]) <= step]
        staging = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with staging.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        staging.replace(self.path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not any(logs.get(k) is not None for k in self.MEASURED):
            return
        new = not self.path.exists()
        row = {"step": state.global_step, **{k: logs.get(k) for k in self.FIELDS if k != "step"}}
        if row.get("eval_loss") is not None and self.chars_per_token:
            row["eval_bpc"] = row["eval_loss"] / math.log(2) / self.chars_per_token
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)


def pretrain(
    model: PreTrainedModel,
    tokenizer,
    sources: list[str],
    output_dir: str | Path,
    options: PretrainOptions,
    *,
    source_name: str = "",
) -> dict[str, Any]:
    """Continue masked-LM pretraining of ``model`` on ``sources``; save the result, with a model card, in
    ``output_dir/final`` (``source_name``: what the model was loaded from, for the card)."""
    output_dir = check_output(output_dir, resume=options.resume, keep=sources)
    if tokenizer.mask_token_id is None:
        raise ConversionError(
            "The tokenizer has no mask token, so masked-LM training has nothing to mask with; give the tokenizer the "
            "model was trained with (--tokenizer)."
        )
    target = target_or_none(model.config)
    if options.global_cls and not (target is not None and target.uses_global_tokens):
        raise ConversionError("--global-cls applies to models with global attention (Longformer) only.")
    length = _block_length(model, options)
    documents = read_documents(sources, text_field=options.text_field)
    train_docs, held_out_docs = data.split_documents(documents, options.held_out, options.seed)
    train_blocks = data.pack(train_docs, tokenizer, length)
    eval_blocks = None
    if held_out_docs is not None:
        eval_blocks = with_fixed_masks(data.pack(held_out_docs, tokenizer, length), tokenizer, options.seed)
    if options.only_positions_beyond is not None:
        freeze_all_but_positions(model, options.only_positions_beyond)
    metrics = CsvMetrics(
        output_dir / "metrics.csv", _chars_per_token(held_out_docs, tokenizer) if held_out_docs is not None else None
    )
    extra_inputs = (lambda ids: target.extra_inputs(ids, True)) if options.global_cls else None
    trainer = guarded(
        Trainer(
            model=model,
            args=_arguments(output_dir, options, evaluated=eval_blocks is not None, target=target),
            train_dataset=train_blocks,
            eval_dataset=eval_blocks,
            data_collator=MaskedBlocks(tokenizer, options.mlm_probability, extra_inputs=extra_inputs),
            processing_class=tokenizer,
            callbacks=[metrics],
        )
    )
    resume_from = resume_point(output_dir, options.max_steps) if options.resume else None
    if trainer.is_world_process_zero() and options.resume:
        metrics.keep_until(checkpoint_step(resume_from) if resume_from else 0)
    result = trainer.train(resume_from_checkpoint=resume_from)
    mended = target.after_masked_lm_training(trainer.model, global_tokens=options.global_cls) if target else 0
    summary = {
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "train_blocks": len(train_blocks),
        "eval_blocks": len(eval_blocks) if eval_blocks is not None else 0,
        "block_length": length,
        "resumed_from": resume_from,
        "global_projections_recopied": mended,
        "attention": backend_name(trainer.model),
        "final": str(output_dir / "final"),
        **_held_out_scores(trainer, eval_blocks, metrics.chars_per_token),
    }
    _save(trainer, tokenizer, summary, source_name, sources, options)
    return summary


def _block_length(model: PreTrainedModel, options: PretrainOptions) -> int:
    """The block length: ``--max-length``, else what the model reads (a Nyströmformer: exactly that)."""
    longest = input_length(model.config)
    length = options.max_length or longest
    if length > longest:
        raise ConversionError(
            f"--max-length {length} is beyond the model's {longest} positions; resize the model first "
            "(roberta2longformer resize) or give a shorter length."
        )
    target = target_or_none(model.config)
    if target is not None and target.has_fixed_input_length and length != longest:
        raise ConversionError(
            f"A {target.title} reads exactly {longest} tokens (its input length); train at that length."
        )
    return length


def _arguments(output_dir: Path, options: PretrainOptions, *, evaluated: bool, target):
    uses_global = target is not None and target.uses_global_tokens
    return trainer_arguments(
        TrainingArguments,
        output_dir,
        options,
        steps=options.max_steps,
        max_steps=options.max_steps,
        lr_scheduler_type=options.schedule,
        adam_beta2=options.adam_beta2,
        logging_steps=options.logging_steps,
        save_steps=options.save_steps,
        save_total_limit=options.save_total_limit,
        eval_strategy="steps" if evaluated else "no",
        eval_steps=options.eval_steps,
        # Longformer's global projections get no gradient without global tokens.
        ddp_find_unused_parameters=uses_global and not options.global_cls,
    )


def _held_out_scores(trainer, eval_blocks, chars_per_token: float | None) -> dict[str, float]:
    if eval_blocks is None:
        return {}
    loss = _last_eval_loss(trainer) or trainer.evaluate()["eval_loss"]
    return {"eval_loss": loss, **({"eval_bpc": loss / math.log(2) / chars_per_token} if chars_per_token else {})}


def _save(trainer, tokenizer, summary: dict, source_name: str, sources: list[str], options: PretrainOptions) -> None:
    """The model, its tokenizer and its card in ``final/``, moved into place whole."""

    def also(staging: Path) -> None:
        tokenizer.save_pretrained(str(staging))
        log = Path(summary["final"]).parent / "metrics.csv"
        if log.is_file():
            shutil.copy2(log, staging / "metrics.csv")
        card = pretraining_card(
            trainer.model, summary, source_name=source_name, data=list(sources), options=asdict(options)
        )
        (staging / "README.md").write_text(card, encoding="utf-8")

    save_final(trainer, Path(summary["final"]), also)


def _last_eval_loss(trainer) -> float | None:
    """The held-out loss already measured at the last step (eval_steps divides max_steps), so that the
    final step is evaluated, and logged, once."""
    history = trainer.state.log_history
    at_end = [
        log["eval_loss"] for log in history if "eval_loss" in log and log.get("step") == trainer.state.global_step
    ]
    return at_end[-1] if at_end else None


def _chars_per_token(documents, tokenizer) -> float:
    texts = list(documents["text"])
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return sum(len(text) for text in texts) / max(tokens, 1)
