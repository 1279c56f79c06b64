"""Training a long embedder where conversion alone is not enough, with sentence-transformers' own trainer.

A converted sentence-transformers model is trained on (passage, document) pairs drawn from the training
documents — a passage of ``passage_words`` words from the part of a document the model reads, paired with
that whole document — with ``MultipleNegativesRankingLoss`` (the other documents of a batch are the
negatives; the ``no_duplicates`` batch sampler keeps a document from being its own negative). That is the
task :mod:`..retrieval` measures, on documents held out from it.

``only_positions_beyond=N`` trains only the position rows read by tokens at index ≥ N (LongEmbed's recipe):
every other weight, and the rows short inputs read, stay bit for bit what they were, so inputs of up to N
tokens embed exactly as before — recorded in ``training.json``, which ``verify`` reads to prove it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...core.locations import card_source
from ...errors import ConversionError
from ...io.output import atomic_output_dir, recorded_options
from ..options import FinetuneOptions
from ..queries import generated_queries
from .base import Data, Job, Task, register

#: Written beside the trained model: what it was trained from, and what training left untouched.
TRAINING_RECORD = "training.json"


@register
class Embedding(Task):
    name = "embedding"
    options = (
        "only_positions_beyond",
        "shift_positions",
        "passage_words",
        "passages_per_document",
        "mini_batch_size",
        "attention_dropout",
        "evaluate_before",
    )
    defaults = {"epochs": 1.0, "learning_rate": 2e-5}
    reported_metrics = ("recall@1", "recall@10", "mrr@10")
    pipeline_tag = "sentence-similarity"
    auto_class = "SentenceTransformer"
    library_name = "sentence-transformers"
    picked_automatically = False

    def refusal(self, config: Any) -> str | None:
        return None  # whether it is a sentence-transformers model is checked when it is loaded

    def prepare(self, location: str, config: Any, data: Data, options: FinetuneOptions) -> Job:
        if options.resume:
            raise ConversionError("--resume does not apply to --task embedding; start the run again.")
        if data.test is not None or options.truncate or options.chunks:
            raise ConversionError(
                "--test, --truncate and --chunks do not apply to --task embedding; compare with the source with "
                "evaluate-embeddings."
            )
        import datasets  # with torch (below): loaded when a run starts, not with --help

        from ..positions import freeze_all_but_positions, shift_positions_while_training

        shared = set(data.train["text"]) & set(data.eval["text"])
        if shared:
            raise ConversionError(
                f"{len(shared)} document(s) are in both --train and --eval; hold the evaluation documents out of training."
            )
        model = load_embedder(location, data.allow_pickle)
        backbone = model[0].auto_model
        state: dict[str, Any] = {"own_length": model.max_seq_length, "location": location}
        length = _training_length(model, options.max_length)
        if options.attention_dropout is not None:
            set_attention_dropout(backbone, options.attention_dropout)
        if options.only_positions_beyond is not None:
            state["frozen_rows"] = freeze_all_but_positions(backbone, options.only_positions_beyond)
            state["frozen"] = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
        if options.shift_positions:
            if options.only_positions_beyond is None:
                raise ConversionError(
                    "--shift-positions trains the new position rows on short documents: give --only-positions-beyond N "
                    "(the source's length) with it."
                )
            # documents fill the training length; the query passages (a few dozen words) stay unshifted
            shortest = max(length // 2, 2)
            state["shifting"] = shift_positions_while_training(backbone, shortest, options.seed)
        texts = list(data.train["text"])
        pairs = datasets.Dataset.from_dict(
            training_pairs(
                texts, model.tokenizer, length, options.passage_words, options.passages_per_document, options.seed
            )
        )
        state["evaluator"] = _evaluator(
            list(data.eval["id"]), list(data.eval["text"]), options.passage_words, options.seed, options.batch_size
        )
        return Job(model, backbone, model.tokenizer, pairs, None, None, length, [], state)

    def trainer(self, job: Job, output_dir: Path, options: FinetuneOptions) -> Any:
        from sentence_transformers import (  # at run time
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )

        from ..setup import guarded, total_steps, trainer_arguments  # loaded when a run starts, not with --help

        arguments = trainer_arguments(
            SentenceTransformerTrainingArguments,
            output_dir,
            options,
            steps=total_steps(len(job.train), options),
            num_train_epochs=options.epochs,
            max_steps=options.max_steps or -1,
            batch_sampler="no_duplicates",  # a document is never its own in-batch negative
            eval_strategy="no",
            save_strategy="no",
            logging_steps=5,
        )
        trainer = guarded(
            SentenceTransformerTrainer(
                model=job.model,
                args=arguments,
                train_dataset=job.train,
                loss=_loss(job.model, options.mini_batch_size),
                evaluator=job.state["evaluator"],
            )
        )
        job.model.max_seq_length = job.length  # training reads this much; evaluation, the model's own length
        return trainer

    def evaluate(self, trainer: Any, job: Job) -> dict[str, float]:
        """Recall@1/10 and MRR@10 at the model's own length (the one it is saved with and used at)."""
        model, training_length = job.model, job.model.max_seq_length
        model.eval()
        model.max_seq_length = job.state["own_length"]
        try:
            return _scores(job.state["evaluator"](model))
        finally:
            model.max_seq_length = training_length

    def after_training(self, trainer: Any, job: Job) -> None:
        from ..positions import check_untouched  # torch: at run time, not with --help

        if "shifting" in job.state:
            job.state.pop("shifting").remove()
        if "frozen" in job.state:
            check_untouched(job.backbone, job.state["frozen"], job.state["frozen_rows"])

    def save(
        self, trainer: Any, job: Job, final: Path, summary: dict[str, Any], options: FinetuneOptions, card: Any
    ) -> None:
        """The model (sentence-transformers' layout), ``training.json`` and our card, renamed into place."""
        location = job.state["location"]
        record = {
            "trained_from": str(location),
            "task": "embedding",
            "options": asdict(options),
            "conversion_options": recorded_options(location),
            "positions_trained_beyond": options.only_positions_beyond,
            "scores": {"before": summary["eval_before_training"], "after": summary["eval"]},
        }
        job.model.max_seq_length = job.state["own_length"]
        if not trainer.is_world_process_zero():
            return
        with atomic_output_dir(final, force=True) as staging:
            job.model.save(str(staging))
            (staging / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            card(staging)

    def summary(self, job: Job, options: FinetuneOptions) -> dict[str, Any]:
        trained = (
            "all weights" if "frozen" not in job.state else f"position rows beyond {options.only_positions_beyond}"
        )
        if options.shift_positions:
            trained += " (position ids shifted: PoSE)"
        return {
            "reading": f"up to {job.length} tokens, {len(job.train)} (passage, document) pairs, training {trained}",
            "max_length": job.state["own_length"],
            "training_length": job.length,
            "pairs": len(job.train),
            "trained": trained,
        }

    def described(self, job: Job) -> str:
        """The conversion the trained model came from (its card said it), and what training changed."""
        converted = recorded_options(job.state["location"])
        base = card_source(job.state["location"]).get("base_model")
        origin = f" from `{base}`" if base else ""
        how = f" (position_init `{converted.get('position_init')}`)" if converted else ""
        trained = "all weights" if "frozen" not in job.state else "only the position rows past the source's length"
        return (
            f" The model it was trained from was converted{origin} to {job.state['own_length']} tokens by "
            f"roberta2longformer{how}; this training changed {trained}, with in-batch negatives on "
            f"{len(job.train)} (passage, document) pairs. No training text is kept in this card."
        )

    def usage(self, class_name: str) -> list[str]:
        return [
            "```python",
            "from sentence_transformers import SentenceTransformer",
            'model = SentenceTransformer("path/to/this/directory")',
            'embeddings = model.encode(["a long document …"], normalize_embeddings=True)',
            "```",
        ]


def readable_prefix(text: str, tokenizer, length: int) -> str:
    """The part of ``text`` that a model reading ``length`` tokens (special tokens included) sees."""
    encoded = tokenizer(text, truncation=True, max_length=length, return_offsets_mapping=True)
    offsets = [end for _, end in encoded["offset_mapping"] if end]
    return text[: offsets[-1]] if offsets else ""


def training_pairs(
    texts: Sequence[str], tokenizer, length: int, passage_words: int, per_document: int, seed: int
) -> dict[str, list[str]]:
    """``anchor`` passages and their ``positive`` documents: passages from anywhere in the read part."""
    generator = random.Random(seed)
    anchors, positives = [], []
    for text in texts:
        words = readable_prefix(text, tokenizer, length).split()
        if len(words) < passage_words:
            continue
        for _ in range(per_document):
            start = generator.randrange(0, len(words) - passage_words + 1)
            anchors.append(" ".join(words[start : start + passage_words]))
            positives.append(text)
    if len(set(positives)) < 2:
        raise ConversionError(
            f"The training documents give {len(set(positives))} document(s) with a passage of {passage_words} words; "
            "contrastive training needs at least two (give more or longer documents, or a smaller --passage-words)."
        )
    return {"anchor": anchors, "positive": positives}


def _evaluator(ids: Sequence[str], texts: Sequence[str], passage_words: int, seed: int, batch_size: int):
    """sentence-transformers' retrieval evaluator on the eval documents, with queries as :mod:`..retrieval`
    generates them (start, middle, end of each document)."""
    try:  # sentence-transformers, at run time (and where version 6 keeps it)
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.evaluation import InformationRetrievalEvaluator

    queries = generated_queries(texts, passage_words, seed)
    return InformationRetrievalEvaluator(
        queries={str(i): q.text for i, q in enumerate(queries)},
        corpus=dict(zip(ids, texts)),
        relevant_docs={str(i): {ids[q.document]} for i, q in enumerate(queries)},
        accuracy_at_k=[1, 10],
        precision_recall_at_k=[1, 10],
        mrr_at_k=[10],
        ndcg_at_k=[10],
        map_at_k=[10],
        batch_size=batch_size,
        name="eval",
        write_csv=False,
    )


def _scores(metrics: dict[str, float]) -> dict[str, float]:
    """recall@1, recall@10 and MRR@10 from the evaluator's metrics (under the trainer's ``eval_`` prefix)."""
    wanted = {"cosine_accuracy@1": "recall@1", "cosine_accuracy@10": "recall@10", "cosine_mrr@10": "mrr@10"}
    found = {}
    for key, value in metrics.items():
        for suffix, name in wanted.items():
            if key.endswith(suffix):
                found[name] = float(value)
    return found


def load_embedder(location: str, allow_pickle: bool):
    from ...core.loading import load_sentence_transformer  # transformers: when a run starts, not with --help

    model = load_sentence_transformer(location, allow_pickle=allow_pickle)
    # Our card replaces sentence-transformers' and keeps no training text: the widget examples its trainer embeds
    # from the training data when training starts would be work thrown away.
    model.model_card_data.generate_widget_examples = False
    return model


def _training_length(model, asked: int | None) -> int:
    """Tokens read per training document: ``asked`` (e.g. less than the model's length, to train faster),
    else the model's ``max_seq_length``; the saved model keeps its own."""
    if asked is None:
        return model.max_seq_length
    if asked > model.max_seq_length:
        raise ConversionError(
            f"--max-length {asked} is beyond the model's max_seq_length {model.max_seq_length}; give at most that."
        )
    return asked


def set_attention_dropout(backbone, probability: float) -> None:
    """The attention-probability dropout of every layer (config and modules: both are read at run time).

    On CPU, SDPA has no fused kernel with dropout: a training step of the converted all-MiniLM-L6-v2 (batch 8,
    2048 tokens, 2 cores) took 70 s with its 0.1 against 16 s with 0 (measured side by side).
    """
    backbone.config.attention_probs_dropout_prob = probability
    for module in backbone.modules():
        if type(module).__name__.endswith("SelfAttention") and hasattr(module, "dropout"):
            if isinstance(module.dropout, float):
                module.dropout = probability
            else:
                module.dropout.p = probability


def _loss(model, mini_batch_size: int | None):
    """In-batch negatives (``MultipleNegativesRankingLoss``); with mini-batches, its cached (GradCache) form."""
    from sentence_transformers import losses  # at run time

    if mini_batch_size is None:
        return losses.MultipleNegativesRankingLoss(model)
    return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch_size)
