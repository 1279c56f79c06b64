"""The words every layer shares: canonical key names, head kinds and their classes, canonical config fields.

Every source family is mapped onto one *canonical* layout, the RoBERTa/Longformer one: backbone keys
under ``base.`` (``base.embeddings.…``, ``base.encoder.layer.N.…``, ``base.pooler.…``) and heads under
their Longformer names (``lm_head.…``, ``classifier.…``, ``qa_outputs.…``). The families map into it
(:mod:`.families`), the targets map out of it (:mod:`..targets`). This module imports nothing of ours
and nothing heavy, so that anything may import it.
"""

from __future__ import annotations

from typing import Any

#: The learned position table, its token types and word embeddings, in the canonical layout.
POSITION_KEY = "base.embeddings.position_embeddings.weight"
TOKEN_TYPE_KEY = "base.embeddings.token_type_embeddings.weight"
WORD_EMBEDDINGS_KEY = "base.embeddings.word_embeddings.weight"
#: An encoder-decoder source's decoder positions, and the prefix of its modules that an encoder-decoder
#: target takes as they are (``s2s.decoder.layers.0.encoder_attn.…``).
DECODER_POSITION_KEY = "decoder.embed_positions.weight"
SEQ2SEQ_PREFIX = "s2s."

#: The head kind of a model class, by the end of its name (``RobertaForMaskedLM`` → ``masked_lm``).
HEAD_BY_CLASS_SUFFIX: dict[str, str] = {
    "Model": "base",
    "ForMaskedLM": "masked_lm",
    "ForSequenceClassification": "sequence_classification",
    "ForTokenClassification": "token_classification",
    "ForQuestionAnswering": "question_answering",
    "ForMultipleChoice": "multiple_choice",
    "ForConditionalGeneration": "conditional_generation",
}


def class_suffix(head: str) -> str:
    """``sequence_classification`` → ``ForSequenceClassification`` (``Model`` for a base model, either kind)."""
    return next((suffix for suffix, kind in HEAD_BY_CLASS_SUFFIX.items() if kind == head), "Model")


#: The transformers Auto class that loads a model with each head (an encoder-decoder: AutoModelForSeq2SeqLM).
AUTO_CLASS: dict[str, str] = {
    "base": "AutoModel",
    "masked_lm": "AutoModelForMaskedLM",
    "sequence_classification": "AutoModelForSequenceClassification",
    "token_classification": "AutoModelForTokenClassification",
    "question_answering": "AutoModelForQuestionAnswering",
    "multiple_choice": "AutoModelForMultipleChoice",
    "conditional_generation": "AutoModelForSeq2SeqLM",
    "seq2seq_base": "AutoModel",
}
#: The Hugging Face pipeline tag of a model with each head (multiple choice has none).
PIPELINE_TAG: dict[str, str] = {
    "base": "feature-extraction",
    "masked_lm": "fill-mask",
    "sequence_classification": "text-classification",
    "token_classification": "token-classification",
    "question_answering": "question-answering",
    "conditional_generation": "text2text-generation",
    "seq2seq_base": "feature-extraction",
}
#: What a model card says the converted model holds of each head.
HEAD_WORDS: dict[str, str] = {
    "masked_lm": "the masked-LM head",
    "sequence_classification": "the classification head",
    "token_classification": "the token-classification head",
    "question_answering": "the question-answering head",
    "multiple_choice": "the multiple-choice head",
    "conditional_generation": "the decoder and its LM head",
    "seq2seq_base": "the decoder",
}

#: Canonical (RoBERTa/Longformer) masked-LM head modules → their BERT-style names, which BERT,
#: Nyströmformer and BigBird share.
BERT_STYLE_LM_HEAD: dict[str, str] = {
    "lm_head.dense": "cls.predictions.transform.dense",
    "lm_head.layer_norm": "cls.predictions.transform.LayerNorm",
    "lm_head.decoder": "cls.predictions.decoder",
    "lm_head.bias": "cls.predictions.bias",
}

#: Canonical (BERT) config fields → their names in BART-style configs (BART's, LED's).
BART_STYLE_FIELDS: dict[str, str] = {
    "hidden_size": "d_model",
    "num_hidden_layers": "encoder_layers",
    "num_attention_heads": "encoder_attention_heads",
    "intermediate_size": "encoder_ffn_dim",
    "hidden_act": "activation_function",
    "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "initializer_range": "init_std",
}

#: The dtypes a conversion can cast to (``torch`` names).
DTYPE_NAMES: tuple[str, ...] = ("float32", "float16", "bfloat16")


def lm_head_activation(config: Any) -> str:
    """The activation of a BERT-style prediction head: the model's ``hidden_act``."""
    return config.hidden_act if isinstance(config.hidden_act, str) else type(config.hidden_act).__name__
