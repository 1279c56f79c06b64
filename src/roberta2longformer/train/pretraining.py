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
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from ..core.loading import load_config, load_tokenizer, resolve_source
from ..core.sources import family_for, readable_length
from ..errors import ConversionError
from ..fast import backend_name
from ..io.card import training_card
from ..io.output import give_normal_permissions
from ..targets import Target, target_or_none
from . import data

logger = logging.getLogger(__name__)


@dataclass
class PretrainOptions:
    """What ``roberta2longformer pretrain`` takes; see ``--help`` for each."""

    max_steps: int = 1000
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 3e-5
    schedule: str = "constant_with_warmup"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    adam_beta2: float = 0.98
    mlm_probability: float = 0.15
    held_out: float = 0.05
    eval_steps: int = 100
    save_steps: int = 100
    logging_steps: int = 10
    save_total_limit: int | None = 2
    gradient_checkpointing: bool = False
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    seed: int = 0
    max_length: int | None = None
    text_field: str = "text"
    global_cls: bool = False
    only_positions_beyond: int | None = None
    resume: bool = False
    report_to: list[str] = field(default_factory=list)


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
        config = AutoConfig.from_pretrained(str(from_config), trust_remote_code=False)
        torch.manual_seed(seed)
        model_obj = AutoModelForMaskedLM.from_config(config)
        if sinusoidal_positions:
            _sinusoidal_start(model_obj)
        tokenizer_obj = AutoTokenizer.from_pretrained(str(tokenizer or from_config), trust_remote_code=False)
        return model_obj, tokenizer_obj
    location = resolve_source(model)
    load_config(location, allow_pickle=allow_pickle)  # the checks every command makes: complete, no code, no pickle
    try:
        model_obj, loading = AutoModelForMaskedLM.from_pretrained(
            location, output_loading_info=True, trust_remote_code=False, use_safetensors=None if allow_pickle else True
        )
    except (OSError, ValueError) as error:
        raise ConversionError(
            f"Could not load a masked-LM model from {location} ({str(error).splitlines()[0][:200]}); "
            "masked-LM training and evaluation need a …ForMaskedLM checkpoint (convert a masked-LM source)."
        ) from None
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


def _sinusoidal_start(model: PreTrainedModel) -> None:
    """Start the learned position rows as sinusoids (Vaswani et al.) scaled to ``initializer_range``.

    Measured on a 2-layer RoBERTa on the Austen novels (../shared/NOTES-pretraining.md): with this
    start and a larger init the model left the unigram plateau; it is still trained as usual.
    """
    table = next(p for n, p in model.named_parameters() if n.endswith("position_embeddings.weight"))
    rows, dim = table.shape
    position = torch.arange(rows, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    sinusoids = torch.zeros(rows, dim)
    sinusoids[:, 0::2] = torch.sin(position * frequency)
    sinusoids[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    with torch.no_grad():
        table.copy_(sinusoids / sinusoids.std() * model.config.initializer_range)


def model_length(model: PreTrainedModel) -> int:
    """The block length a model trains on: what it reads (a Nyströmformer: its segment length)."""
    target = target_or_none(model.config)
    return target.input_length(model.config) if target is not None else readable_length(model.config)


def _precision(choice: str) -> dict[str, bool]:
    if choice == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return {"bf16": True}
        return {"fp16": True} if torch.cuda.is_available() else {}
    if choice in ("bf16", "fp16"):
        return {choice: True}
    if choice != "fp32":
        raise ConversionError(f"Unknown precision {choice!r}; choose auto, fp32, bf16 or fp16.")
    return {}


class MaskedBlocks:
    """Masked-LM batches of equal-length blocks: masks drawn afresh for training blocks, the fixed ones of
    :func:`with_fixed_masks` for held-out blocks (so every evaluation scores the same masked tokens), and
    global attention on each block's first token when asked (Longformer)."""

    def __init__(self, tokenizer, mlm_probability: float, *, global_first: bool = False) -> None:
        self.draw = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability)
        self.global_first = global_first

    def __call__(self, examples):
        if "labels" in examples[0]:
            batch = {key: torch.tensor([example[key] for example in examples]) for key in ("input_ids", "labels")}
        else:
            batch = self.draw(examples)
        return data.with_first_token_global(batch) if self.global_first else batch


def with_fixed_masks(blocks, tokenizer, seed: int):
    """Held-out blocks with their masks drawn once, as :func:`~.evaluation.mask_document` draws a
    document's (seeded by the seed and the block's index), never the block's first and last token, and
    at least one token per block."""
    from .evaluation import IGNORE, mask_document

    def mask(row, index):
        inner, labels = mask_document(row["input_ids"][1:-1], tokenizer, seed=seed, document=index)
        if (labels == IGNORE).all():  # a short block may draw no mask: its loss would be 0/0
            labels[0], inner[0] = inner[0], tokenizer.mask_token_id
        ids = [row["input_ids"][0], *inner.tolist(), row["input_ids"][-1]]
        return {"input_ids": ids, "labels": [IGNORE, *labels.tolist(), IGNORE]}

    return blocks.map(mask, with_indices=True, desc="Drawing the held-out masks")


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


class FiniteLosses(TrainerCallback):
    """Stop a run whose loss is NaN or infinite: no later step can make its numbers right."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "eval_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise ConversionError(
                    f"The {'held-out' if key == 'eval_loss' else 'training'} loss became {value} at step "
                    f"{state.global_step}, so training stopped and no final model was written; lower the learning "
                    "rate, or use fp32 (--precision fp32) if half precision overflowed."
                )


def freeze_all_but_positions(model: PreTrainedModel, beyond: int, target: Target | None) -> int:
    """Train only the position rows read by tokens at index ≥ ``beyond``; returns the frozen rows' count
    (offset rows included)."""
    offset = target.position_offset(model.config) if target else family_for(model.config).position_offset(model.config)
    table = next(
        p
        for name, p in model.named_parameters()
        if re.search(r"position_embeddings\.weight$|embed_positions\.weight$", name)
    )
    if not offset + beyond < table.shape[0]:
        raise ConversionError(
            f"--only-positions-beyond {beyond} leaves no rows to train (the model has {table.shape[0] - offset} positions)."
        )
    for parameter in model.parameters():
        parameter.requires_grad_(parameter is table)
    keep = torch.zeros(table.shape[0], 1, dtype=table.dtype)
    keep[offset + beyond :] = 1
    table.register_hook(lambda grad: grad * keep.to(grad.device, grad.dtype))
    return offset + beyond


def recopy_global_projections(model: PreTrainedModel) -> int:
    """Copy each Longformer layer's trained local q/k/v into its global ones; returns layers done."""
    done = 0
    with torch.no_grad():
        for module in model.modules():
            if all(hasattr(module, name) for name in ("query", "query_global", "key_global", "value_global")):
                for name in ("query", "key", "value"):
                    getattr(module, f"{name}_global").load_state_dict(getattr(module, name).state_dict())
                done += 1
    return done


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
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not options.resume:
        raise ConversionError(
            f"{output_dir} is in use (not empty); pass --resume to continue the run in it, or choose a new directory."
        )
    length = options.max_length or model_length(model)
    if length > model_length(model):
        raise ConversionError(
            f"--max-length {length} is beyond the model's {model_length(model)} positions; resize the model first "
            "(roberta2longformer resize) or give a shorter length."
        )
    target = target_or_none(model.config)
    if target is not None and target.has_fixed_input_length and length != model_length(model):
        raise ConversionError(
            f"A {target.title} reads exactly {model_length(model)} tokens (its input length); train at that length."
        )
    documents = data.load_documents(sources, text_field=options.text_field)
    train_docs, held_out_docs = data.split_documents(documents, options.held_out, options.seed)
    train_blocks = data.pack(train_docs, tokenizer, length)
    eval_blocks = data.pack(held_out_docs, tokenizer, length) if held_out_docs is not None else None

    if eval_blocks is not None:
        eval_blocks = with_fixed_masks(eval_blocks, tokenizer, options.seed)
    uses_global = target is not None and target.uses_global_tokens
    if options.global_cls and not uses_global:
        raise ConversionError("--global-cls applies to models with global attention (Longformer) only.")
    if options.only_positions_beyond is not None:
        freeze_all_but_positions(model, options.only_positions_beyond, target)
    arguments = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=options.max_steps,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        learning_rate=options.learning_rate,
        lr_scheduler_type=options.schedule,
        warmup_steps=math.ceil(options.warmup_ratio * options.max_steps),
        # Decoupled weight decay would also shrink the frozen rows of the position table.
        weight_decay=0.0 if options.only_positions_beyond is not None else options.weight_decay,
        adam_beta2=options.adam_beta2,
        logging_steps=options.logging_steps,
        save_steps=options.save_steps,
        save_total_limit=options.save_total_limit,
        eval_strategy="steps" if eval_blocks is not None else "no",
        eval_steps=options.eval_steps,
        **_checkpointing(options.gradient_checkpointing),
        seed=options.seed,
        data_seed=options.seed,
        report_to=options.report_to,
        # Longformer's global projections get no gradient without global tokens.
        ddp_find_unused_parameters=uses_global and not options.global_cls,
        ddp_backend="gloo" if _distributed() and not torch.cuda.is_available() else None,
        dataloader_drop_last=True,
        dataloader_pin_memory=torch.cuda.is_available(),  # pinned memory only helps copies to a GPU
        disable_tqdm=False,  # the progress bar and its ETA, whatever the command line's log level
        logging_nan_inf_filter=False,  # a NaN loss is logged as NaN (and stops the run), not averaged away
        **_precision(options.precision),
    )
    metrics = CsvMetrics(
        output_dir / "metrics.csv", _chars_per_token(held_out_docs, tokenizer) if held_out_docs is not None else None
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=train_blocks,
        eval_dataset=eval_blocks,
        data_collator=MaskedBlocks(tokenizer, options.mlm_probability, global_first=options.global_cls),
        processing_class=tokenizer,
        callbacks=[metrics, FiniteLosses()],
    )
    resume_from = _resume_point(output_dir, options.max_steps) if options.resume else None
    if trainer.is_world_process_zero() and options.resume:
        metrics.keep_until(_checkpoint_step(resume_from) if resume_from else 0)
    result = trainer.train(resume_from_checkpoint=resume_from)
    recopied = 0
    if uses_global and not options.global_cls:
        recopied = recopy_global_projections(trainer.model)
    final = output_dir / "final"
    trainer.save_model(str(final))  # the main process writes; the others wait
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
    summary = {
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "train_blocks": len(train_blocks),
        "eval_blocks": len(eval_blocks) if eval_blocks is not None else 0,
        "block_length": length,
        "resumed_from": resume_from,
        "global_projections_recopied": recopied,
        "attention": backend_name(trainer.model),
        "final": str(final),
    }
    if eval_blocks is not None:
        loss = _last_eval_loss(trainer) or trainer.evaluate()["eval_loss"]
        summary["eval_loss"] = loss
        if metrics.chars_per_token:
            summary["eval_bpc"] = loss / math.log(2) / metrics.chars_per_token
    if trainer.is_world_process_zero():
        card = training_card(
            trainer.model, summary, source_name=source_name, data=list(sources), options=asdict(options)
        )
        (final / "README.md").write_text(card, encoding="utf-8")
        give_normal_permissions(final)
    return summary


def _last_eval_loss(trainer) -> float | None:
    """The held-out loss already measured at the last step (eval_steps divides max_steps), so that the
    final step is evaluated, and logged, once."""
    history = trainer.state.log_history
    at_end = [
        log["eval_loss"] for log in history if "eval_loss" in log and log.get("step") == trainer.state.global_step
    ]
    return at_end[-1] if at_end else None


def _resume_point(output_dir: Path, max_steps: float) -> str | None:
    """The checkpoint ``--resume`` continues from, after saying what it found."""
    checkpoint = last_complete_checkpoint(output_dir)
    if checkpoint is None:
        logger.warning("%s holds no complete checkpoint to resume from; training starts at step 0.", output_dir)
        return None
    step = _checkpoint_step(checkpoint)
    if step >= max_steps:
        raise ConversionError(
            f"The run in {output_dir} already reached step {step} of --max-steps {max_steps}; "
            "raise --max-steps to train further."
        )
    return checkpoint


def _checkpoint_step(checkpoint: str | Path) -> int:
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])


def last_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` that was saved completely: a run killed while saving (or out of disk)
    leaves a partial directory behind, and resuming from it would fail or, worse, load half a state."""
    complete = [
        (int(path.name.split("-")[1]), path)
        for path in output_dir.glob("checkpoint-*")
        if path.name.split("-")[1].isdigit() and _is_complete(path)
    ]
    return str(max(complete)[1]) if complete else None


def _is_complete(checkpoint: Path) -> bool:
    """Trainer writes the model, the optimizer and scheduler, then the trainer state: all must be there and readable."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        int(state["global_step"])
        files = [checkpoint / "optimizer.pt", checkpoint / "scheduler.pt"]
        if not all(path.is_file() and path.stat().st_size > 0 for path in files):
            return False
        from ..io.checkpoint import read_lazily

        return bool(read_lazily(checkpoint))  # every safetensors header (and its file size) checks out
    except (OSError, ValueError, KeyError, TypeError, ConversionError):
        return False


def _checkpointing(enabled: bool) -> dict[str, bool]:
    """Gradient (activation) checkpointing under the name this transformers takes (5.x renamed it)."""
    from transformers import TrainingArguments

    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
        else "gradient_checkpointing"
    )
    return {name: enabled}


def _distributed() -> bool:
    """Started by torchrun / accelerate launch with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _chars_per_token(documents, tokenizer) -> float:
    texts = list(documents["text"])
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return sum(len(text) for text in texts) / max(tokens, 1)
