"""Late chunking: one pass per document (per macro window when it is longer than the model) gives its vector and
its chunks' vectors; ``embed`` writes them; evaluate-embeddings scores them beside the windows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers import CORPUS
from roberta2longformer.cli import app
from roberta2longformer.train.late_chunking import LateChunker, macro_windows, owner_windows, token_spans


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def model(sentence_model):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(sentence_model), device="cpu")


def _unit(vector):
    return vector / np.linalg.norm(vector)


def test_a_document_that_fits_gets_what_encode_gives_and_its_chunks_pool_its_tokens(model):
    text = CORPUS[0]
    document = LateChunker(model, chunk_size=5).embed("d", text)
    assert document.windows == 1 and document.tokens == len(
        model.tokenizer(text, add_special_tokens=False)["input_ids"]
    )
    assert np.allclose(document.vector, model.encode(text), atol=1e-5)
    states = model.encode(text, output_value="token_embeddings").numpy()[1:-1]  # without [CLS] and [SEP]
    assert [(c.first_token, c.last_token) for c in document.chunks][:2] == [(0, 5), (5, 10)]
    for chunk, vector in zip(document.chunks, document.chunk_vectors):
        assert np.allclose(vector, _unit(states[chunk.first_token : chunk.last_token].mean(0)), atol=1e-5)
        assert chunk.text == text[chunk.start : chunk.end] and chunk.text.strip()


@pytest.mark.parametrize("fits", [True, False], ids=["documents that fit", "longer documents"])
def test_documents_that_fit_are_read_once_for_the_whole_and_the_late_chunk_readings(sentence_model, monkeypatch, fits):
    from roberta2longformer.train import retrieval
    from roberta2longformer.train.queries import Query

    # The model reads 24 tokens: one sentence (20–21 tokens) fits, two do not.
    texts = [CORPUS[i] if fits else " ".join(CORPUS[i : i + 2]) for i in (0, 2, 4, 6)]
    queries = [Query(" ".join(text.split()[:6]), i) for i, text in enumerate(texts)]
    alone = retrieval.evaluate_retrieval([str(sentence_model)], list("abcd"), texts, queries)
    encoded, encode = [], retrieval.Embedder.encode
    monkeypatch.setattr(
        retrieval.Embedder, "encode", lambda self, t, progress=True: encoded.append(t) or encode(self, t)
    )
    both = retrieval.evaluate_retrieval([str(sentence_model)], list("abcd"), texts, queries, chunks=("late-max",))
    assert [r.mode for r in both] == ["whole", "best late chunk"] and both[0].overall == alone[0].overall
    assert encoded == ([[q.text for q in queries]] if fits else [[q.text for q in queries], texts])


def test_windows_overlap_and_each_token_keeps_its_most_central_state():
    assert macro_windows(10, 22, 5) == [(0, 10)]
    assert macro_windows(50, 20, 5) == [(0, 20), (15, 35), (30, 50)]
    # token 17 sits 2 from an edge in both windows: a tie keeps the earlier one; 18 sits 3 inside the second
    owners = owner_windows(50, [(0, 20), (15, 35), (30, 50)])
    assert list(owners[[0, 9, 17, 18, 25, 32, 33, 49]]) == [0, 0, 0, 1, 1, 1, 2, 2]


def test_a_long_document_is_read_in_macro_windows_and_its_first_token_keeps_the_first_windows_state(model):
    text = " ".join(CORPUS[:8])
    chunker = LateChunker(model, chunk_size=1, overlap=6)
    document = chunker.embed("long", text)
    assert document.tokens > 60 and document.windows > 3
    assert [c.first_token for c in document.chunks] == list(range(document.tokens))
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        first = chunker._token_states(chunker.prefix + ids[: chunker.inner] + chunker.suffix)[1].numpy()
    assert np.allclose(document.chunk_vectors[0], _unit(first), atol=1e-5)


def test_sentence_and_paragraph_chunks_start_where_the_text_does():
    text = "One two. Three four five! Six.\n\nSeven eight."
    offsets = [(0, 3), (4, 7), (7, 8), (9, 14), (15, 19), (20, 24), (24, 25), (26, 29), (29, 30), (32, 37),
               (38, 43), (43, 44)]  # fmt: skip
    assert token_spans(offsets, text, "sentences", 100) == [(0, 3), (3, 7), (7, 9), (9, 12)]
    assert token_spans(offsets, text, "paragraphs", 100) == [(0, 9), (9, 12)]
    assert token_spans(offsets, text, "paragraphs", 4) == [(0, 4), (4, 8), (8, 9), (9, 12)]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_embed_writes_rows_beside_their_vectors(sentence_model, tmp_path, file_format):
    import datasets

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"d{i}.txt").write_text(" ".join(CORPUS[i : i + 4 + 2 * i]))
    out = tmp_path / "vectors"
    result = run("embed", sentence_model, "--data", docs, "-o", out, "--chunk-tokens", "8", "--format", file_format)
    assert result.exit_code == 0, result.output
    assert "Embedded 3 documents" in result.output
    read = (lambda name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]) if (
        file_format == "jsonl") else (lambda name: datasets.Dataset.from_parquet(str(out / f"{name}.parquet")).to_list())  # fmt: skip
    documents, chunks = read("documents"), read("chunks")
    assert [d["id"] for d in documents] == ["d0", "d1", "d2"] and all(d["windows"] > 1 for d in documents[1:])
    assert np.load(out / "document_embeddings.npy").shape == (3, 32)
    assert np.load(out / "chunk_embeddings.npy").shape == (len(chunks), 32) == (sum(d["chunks"] for d in documents), 32)
    settings = json.loads((out / "embed.json").read_text())
    assert settings["reads"] == 24 and settings["normalised"] and settings["chunk_tokens"] == 8


@pytest.mark.parametrize(
    "extra, phrase",
    [(["--overlap", "22"], "window overlap must be"), (["--chunking", "pages"], "Invalid value for '--chunking'")],
)
def test_embed_refuses_bad_input_and_writes_nothing(sentence_model, tmp_path, extra, phrase):
    (tmp_path / "d.txt").write_text(CORPUS[0])
    out = tmp_path / "vectors"
    result = run("embed", sentence_model, "--data", tmp_path / "d.txt", "-o", out, *extra)
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert not out.exists()
