"""Training a long embedder where conversion alone is not enough: sentence-transformers' own trainer.

A converted sentence-transformers model is trained on (passage, document) pairs drawn from the
training documents — a passage of ``passage_words`` words from the part of a document the model
reads, paired with that whole document — with ``MultipleNegativesRankingLoss`` (the other documents
of a batch are the negatives; the ``no_duplicates`` batch sampler keeps a document from being its own
negative). That is the task :mod:`.retrieval` measures, on documents held out from it.

``only_positions_beyond=N`` trains only the position rows read by tokens at index ≥ N (LongEmbed's
recipe): every other weight, and the rows short inputs read, stay bit for bit what they were, so
inputs of up to N tokens embed exactly as before — recorded in ``training.json``, which ``verify``
reads to prove it.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConversionError
from . import retrieval

logger = logging.getLogger(__name__)

#: Written beside the trained model: what it was trained from, and what training left untouched.
TRAINING_RECORD = "training.json"


@dataclass
class EmbeddingOptions:
    #: Tokens read per training document (default: the model's ``max_seq_length``, which evaluation and
    #: the saved model keep).
    max_length: int | None = None
    passage_words: int = 48
    #: Training pairs drawn from each document per epoch (each at its own seeded place).
    passages_per_document: int = 1
    #: Train only the position rows of tokens at index ≥ N; everything else stays exact.
    only_positions_beyond: int | None = None
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 8
    #: Compute the loss over a batch in mini-batches of this many texts (GradCache: the same gradients,
    #: memory for only these; about a third more compute). ``None``: the whole batch at once.
    mini_batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    precision: str = "auto"
    gradient_checkpointing: bool = False
    #: Attention dropout while training (``None``: the model's). On CPU, SDPA has no fused kernel with
    #: dropout: a training step of the converted all-MiniLM-L6-v2 (batch 8, 2048 tokens, 2 cores) took 70 s
    #: with its 0.1 against 16 s with 0 (measured side by side), so the experiment turns it off.
    attention_dropout: float | None = None
    text_field: str = "text"
    #: Score the eval documents before training too (what training is measured against).
    evaluate_before: bool = True
    seed: int = 0
    report_to: list[str] = field(default_factory=list)


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
    """sentence-transformers' retrieval evaluator on the eval documents, with queries as :mod:`.retrieval`
    generates them (start, middle, end of each document)."""
    try:
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.evaluation import InformationRetrievalEvaluator

    queries = retrieval.generated_queries(texts, passage_words, seed)
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


def load_embedder(location: str):
    from sentence_transformers import SentenceTransformer

    from ..io.sentence_transformers import is_sentence_transformer

    if not is_sentence_transformer(location):
        raise ConversionError(
            f"{location} is not a sentence-transformers model (no modules.json); --task embedding trains one, e.g. "
            "the output of convert on a sentence-transformers source."
        )
    return SentenceTransformer(location, device="cpu", trust_remote_code=False)


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


def finetune_embeddings(
    model_location: str,
    train_sources: Sequence[str],
    eval_sources: Sequence[str],
    output_dir: str | Path,
    options: EmbeddingOptions,
    *,
    fast_attention: bool = True,
) -> dict[str, Any]:
    """Train the sentence-transformers model in ``model_location``; write ``output_dir/final`` (the model,
    with sentence-transformers' own model card, and ``training.json``) and ``eval_results.json``."""
    import datasets
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from .. import fast
    from ..core.loading import load_config, resolve_source
    from ..io.output import check_output_dir, recorded_options
    from ..targets import target_or_none
    from .finetuning import schedule_arguments
    from .pretraining import FiniteLosses, _checkpointing, _precision, freeze_all_but_positions

    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ConversionError(f"{output_dir} is in use (not empty); choose a new directory.")
    check_output_dir(output_dir, force=True, keep=[model_location, *train_sources, *eval_sources])
    location = resolve_source(model_location)
    load_config(location)  # complete, no code of its own, no pickle
    train_ids, train_texts = retrieval.read_documents(train_sources, options.text_field)
    eval_ids, eval_texts = retrieval.read_documents(eval_sources, options.text_field)
    shared = set(train_texts) & set(eval_texts)
    if shared:
        raise ConversionError(
            f"{len(shared)} document(s) are in both --train and --eval; hold the evaluation documents out of training."
        )
    model = load_embedder(location)
    backbone = model[0].auto_model
    own_length = model.max_seq_length
    length = _training_length(model, options.max_length)
    fast.enable_if(backbone, fast_attention)
    if options.attention_dropout is not None:
        _set_attention_dropout(backbone, options.attention_dropout)
    frozen = None
    if options.only_positions_beyond is not None:
        frozen_rows = freeze_all_but_positions(backbone, options.only_positions_beyond, target_or_none(backbone.config))
        frozen = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    pairs = datasets.Dataset.from_dict(
        training_pairs(
            train_texts, model.tokenizer, length, options.passage_words, options.passages_per_document, options.seed
        )
    )
    evaluator = _evaluator(eval_ids, eval_texts, options.passage_words, options.seed, options.batch_size)
    arguments = SentenceTransformerTrainingArguments(
        **schedule_arguments(output_dir, options, len(pairs)),
        weight_decay=0.0 if frozen is not None else 0.01,
        batch_sampler="no_duplicates",  # a document is never its own in-batch negative
        eval_strategy="no",
        save_strategy="no",
        logging_steps=5,
        seed=options.seed,
        data_seed=options.seed,
        report_to=options.report_to,
        dataloader_pin_memory=torch.cuda.is_available(),
        logging_nan_inf_filter=False,
        **_checkpointing(options.gradient_checkpointing),
        **_precision(options.precision),
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=arguments,
        train_dataset=pairs,
        loss=_loss(model, options.mini_batch_size),
        evaluator=evaluator,
        callbacks=[FiniteLosses()],
    )
    model.eval()
    before = _scores(evaluator(model)) if options.evaluate_before else None  # at the model's own length
    model.max_seq_length = length
    result = trainer.train()
    model.eval()
    model.max_seq_length = own_length
    after = _scores(evaluator(model))
    if frozen is not None:
        _check_untouched(backbone, frozen, frozen_rows)
    summary = {
        "task": "embedding",
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "max_length": own_length,
        "training_length": length,
        "pairs": len(pairs),
        "train_documents": len(train_texts),
        "eval_documents": len(eval_texts),
        "eval_before_training": before,
        "eval": after,
        "trained": f"position rows beyond {options.only_positions_beyond}" if frozen is not None else "all weights",
        "attention": fast.backend_name(backbone),
        "notes": [],
    }
    final = output_dir / "final"
    _save(model, final, location, summary, options, recorded_options(location))
    (output_dir / "eval_results.json").write_text(
        json.dumps({**after, **({"before_training": before} if before else {})}, indent=2) + "\n", encoding="utf-8"
    )
    summary["final"] = str(final)
    return summary


def _set_attention_dropout(backbone, probability: float) -> None:
    """The attention-probability dropout of every layer (config and modules: both are read at run time)."""
    backbone.config.attention_probs_dropout_prob = probability
    for module in backbone.modules():
        if type(module).__name__.endswith("SelfAttention") and hasattr(module, "dropout"):
            if isinstance(module.dropout, float):
                module.dropout = probability
            else:
                module.dropout.p = probability


def _loss(model, mini_batch_size: int | None):
    """In-batch negatives (``MultipleNegativesRankingLoss``); with mini-batches, its cached (GradCache) form."""
    from sentence_transformers import losses

    if mini_batch_size is None:
        return losses.MultipleNegativesRankingLoss(model)
    return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch_size)


def _check_untouched(backbone, frozen: dict, rows: int) -> None:
    """Everything but the trained position rows (those from ``rows`` on) is what it was, bit for bit
    (AdamW without weight decay leaves a parameter whose gradient is always zero exactly where it was)."""
    import torch

    def same(key: str, tensor) -> bool:
        if key.endswith("position_embeddings.weight"):
            return torch.equal(tensor[:rows], frozen[key][:rows])
        return torch.equal(tensor, frozen[key])

    changed = [key for key, tensor in backbone.state_dict().items() if not same(key, tensor)]
    if changed:
        raise ConversionError(
            f"Training positions only changed {len(changed)} other tensor(s) ({', '.join(changed[:3])}); "
            "this is a bug, please report it."
        )


def _save(model, final: Path, location: str, summary: dict, options: EmbeddingOptions, conversion: dict | None) -> None:
    """The model (sentence-transformers' layout and model card) and ``training.json``, renamed into place."""
    from ..io.output import atomic_output_dir

    record = {
        "trained_from": str(location),
        "task": "embedding",
        "options": asdict(options),
        "conversion_options": conversion,
        "positions_trained_beyond": options.only_positions_beyond,
        "scores": {"before": summary["eval_before_training"], "after": summary["eval"]},
    }
    with atomic_output_dir(final, force=True) as staging:
        model.save(str(staging))
        (staging / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
