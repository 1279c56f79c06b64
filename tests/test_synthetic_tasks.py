"""LongEmbed-style passkey and needle retrieval, built offline and seeded, and scored by evaluate-embeddings."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from helpers import CORPUS
from roberta2longformer.cli import app
from roberta2longformer.errors import ConversionError
from roberta2longformer.train.synthetic import build_task, parse_lengths


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def words(text: str) -> int:
    return len(text.split())  # a stand-in tokenizer: one token per word


@pytest.mark.parametrize("task", ["passkey", "needle"])
def test_each_document_hides_one_detail_that_only_its_query_asks_for(task):
    built = build_task(task, 300, words, seed=3, haystack=CORPUS[:12], documents=20, queries=8)
    assert len(built.texts) == 20 and len(built.queries) == 8 and len(set(built.ids)) == 20
    assert all(250 <= words(text) <= 300 - 2 for text in built.texts)
    for query in built.queries:
        name = " ".join(query.text.split("for ")[-1].rstrip("?").split()[:2]) if task == "passkey" else None
        name = name or next(w for w in _names_in(query.text))
        holders = [i for i, text in enumerate(built.texts) if name in text]
        assert holders == [query.document], (query, holders)
    assert {q.place for q in built.queries} <= {"start", "middle", "end"}
    again = build_task(task, 300, words, seed=3, haystack=CORPUS[:12], documents=20, queries=8)
    assert (
        again.texts == built.texts and build_task(task, 300, words, seed=4, haystack=CORPUS[:12]).texts != built.texts
    )


def _names_in(question: str):
    from roberta2longformer.train.synthetic import FIRST_NAMES, LAST_NAMES

    tokens = question.replace("'s", "").replace("?", "").split()
    for a, b in zip(tokens, tokens[1:]):
        if a in FIRST_NAMES and b in LAST_NAMES:
            yield f"{a} {b}"


def test_the_needle_needs_real_text_and_lengths_are_checked():
    with pytest.raises(ConversionError, match="real text"):
        build_task("needle", 256, words)
    assert parse_lengths("256, 1024") == [256, 1024]
    with pytest.raises(ConversionError, match="at least 32"):
        parse_lengths("256,x")


def test_evaluate_embeddings_runs_a_task_at_each_length(sentence_model, tmp_path):
    out = tmp_path / "passkey.json"
    result = run("evaluate-embeddings", sentence_model, "--task", "passkey", "--lengths", "48,96",
                 "--task-documents", "6", "--task-queries", "3", "--chunks", "max", "--chunks", "late-max",
                 "--chunk-tokens", "8", "--json", out, "--plot", tmp_path / "passkey.png")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["task"] == "passkey" and data["documents"] == 6
    assert [(r["length"], r["mode"]) for r in data["results"]] == [
        (n, m) for n in (48, 96) for m in ("whole", "best window", "best late chunk")
    ]
    assert all(r["queries"] == 3 and 0 <= r["overall"]["recall@1"] <= 1 for r in data["results"])
    assert "accuracy@1 per document length" in result.output and (tmp_path / "passkey.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "extra, phrase",
    [
        (["--task", "needle"], "give documents with --data"),
        (["--task", "passkey", "--lengths", "8"], "at least 32"),
        (["--task", "passkey", "--task-documents", "3", "--task-queries", "5"], "more than --task-documents"),
        ([], "No documents given (--data)"),
    ],
    ids=["needle without text", "too short", "more queries than documents", "neither data nor task"],
)
def test_bad_task_input_gets_one_sentence(sentence_model, tmp_path, extra, phrase):
    result = run("evaluate-embeddings", sentence_model, *extra, "--json", tmp_path / "r.json")
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert not (tmp_path / "r.json").exists()
