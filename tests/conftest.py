"""Fixtures over the shared helpers in ``helpers.py``: tokenizers, and saved tiny sources."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Under pytest-xdist (scripts/test.sh runs one worker per core) each worker, and each command a test starts,
# gets its share of the cores: torch would otherwise start a thread per core in every worker.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))

import pytest  # noqa: E402
import transformers  # noqa: E402

import helpers  # noqa: E402

transformers.logging.set_verbosity_error()


@pytest.fixture(scope="session")
def bpe_tokenizer():
    return helpers.bpe_tokenizer()


@pytest.fixture(scope="session")
def wordpiece_tokenizer():
    return helpers.wordpiece_tokenizer()


@pytest.fixture
def make_source_model():
    return helpers.make_source


@pytest.fixture
def tokenizer_for(bpe_tokenizer, wordpiece_tokenizer):
    def pick(family: str):
        return wordpiece_tokenizer if family in ("bert", "distilbert", "electra") else bpe_tokenizer

    return pick


@pytest.fixture
def saved_source(tmp_path, tokenizer_for):
    """A factory: ``saved_source(family, head, **config_overrides)`` is a tiny seeded source of that family
    with that head, saved with its tokenizer under ``tmp_path`` (each call in a directory of its own)."""
    count = 0

    def save(family: str = "roberta", head: str = "masked_lm", *, tokenizer: bool = True, **overrides):
        nonlocal count
        count += 1
        directory = tmp_path / f"source-{family}-{head}-{count}"
        return helpers.save_source(directory, family, head, tokenizer_for(family) if tokenizer else None, **overrides)

    return save


@pytest.fixture
def sentence_model(tmp_path, wordpiece_tokenizer):
    """A tiny BERT saved by sentence-transformers itself: mean pooling, normalisation, max_seq_length 24."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    backbone = helpers.save_source(tmp_path / "bert", "bert", "base", wordpiece_tokenizer)
    transformer = Transformer(str(backbone), max_seq_length=24)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu")
    model.save(str(tmp_path / "st"))
    card = tmp_path / "st" / "README.md"  # as on the Hub: the card names its base model and licence
    card.write_text(
        "---\nbase_model: someone/tiny-bert\nlicense: mit\nlibrary_name: sentence-transformers\n---\n# tiny\n"
    )
    return tmp_path / "st"
