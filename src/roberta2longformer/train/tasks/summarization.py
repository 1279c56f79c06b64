"""Summarization with an encoder-decoder (an LED converted from a long encoder or from a BART): the long
document in, the reference summary as the target, ROUGE as the score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ConversionError
from ..documents import require_fields
from ..options import FinetuneOptions
from .base import Data, Job, Task, register, summarizes


@register
class Summarization(Task):
    name = "summarization"
    options = ("summary_field", "max_summary_length", "num_beams", "truncate", "early_stopping_patience")
    reported_metrics = ("rouge1", "rouge2", "rougeL", "loss")
    best_metric = "rougeL"
    pipeline_tag = "summarization"
    auto_class = "AutoModelForSeq2SeqLM"

    def matches(self, config: Any, train: Any, options: FinetuneOptions) -> bool:
        return summarizes(config, train, options)

    def refusal(self, config: Any) -> str | None:
        if not getattr(config, "is_encoder_decoder", False):
            return (
                f"Summarization needs an encoder-decoder model (e.g. LED: convert --to led), and {config.model_type} "
                "is an encoder; fine-tune it for classification, or convert to LED."
            )
        return None

    def prepare(self, location: str, config: Any, data: Data, options: FinetuneOptions) -> Job:
        from . import supervised  # transformers and datasets: loaded when a run starts, not with --help

        if options.chunks is not None:
            raise ConversionError("--chunks applies to classification; summarization reads each document once.")
        fields = {options.summary_field: "--summary-field"}
        require_fields(data.train, fields, "--train", data.train_source)
        require_fields(data.eval, fields, "--eval", data.eval_source)
        model = supervised.load_seq2seq(location, options.max_summary_length, data.allow_pickle)
        tokenizer = supervised.trained_tokenizer(location)
        length = supervised.reading_length(model, options)
        encoded, cut = {}, {}
        for name, split in (("train", data.train), ("eval", data.eval), ("test", data.test)):
            if split is not None:
                encoded[name], cut[name] = supervised.encode_summaries(tokenizer, split, length, options)
        answered = data.test is not None and options.summary_field in data.test.column_names
        state = {"answered": answered, "ids": list(data.test["id"]) if data.test is not None else []}
        notes = supervised.CutNotes(cut, length, options).lines()
        return Job(
            model, model, tokenizer, encoded["train"], encoded["eval"], encoded.get("test"), length, notes, state
        )

    def trainer(self, job: Job, output_dir: Path, options: FinetuneOptions) -> Any:
        from .. import scoring  # numpy and rouge-score: loaded when a run starts, not with --help
        from . import supervised

        # Not padded to whole windows here: that would pad the labels too, past the decoder's positions;
        # LED's encoder pads its own input to whole windows (or, on the fast backend, reads any length).
        collator = supervised.GlobalFirstToken(supervised.seq2seq_collator(job.tokenizer, job.model), job.model)
        return supervised.supervised_trainer(
            self, job, output_dir, options, collator, scoring.rouge_scorer_for(job.tokenizer)
        )

    def predict(self, trainer: Any, job: Job, output_dir: Path) -> dict[str, float] | None:
        """``predictions.jsonl``: per test document its id, the generated summary, and the reference when known."""
        from .. import scoring  # loaded when a run starts, not with --help

        trainer.compute_metrics = None
        output = trainer.predict(job.test)
        texts = scoring.decoded(job.tokenizer, output.predictions)
        references = scoring.decoded(job.tokenizer, output.label_ids) if job.state["answered"] else None
        rows = [
            {"id": doc, "summary": text, **({"reference": references[i]} if references else {})}
            for i, (doc, text) in enumerate(zip(job.state["ids"], texts))
        ]
        scores = scoring.rouge_scores(texts, references) if references else None
        if trainer.is_world_process_zero():
            scoring.write_predictions(output_dir, rows, scores)
        return scores
