"""The README and the guides in docs/ work as written: every command and every Python snippet runs, in the
order a reader meets them, with the built-in models and small made-up documents in place of the user's.

What is substituted (and nothing else): ``path/to/your-model`` → ``builtin:austen-roberta``; ``path/to/roberta``
→ that model's directory; the documents the guides name (``novels/``, ``held-out/``, ``train.jsonl``…) are
made here; step counts and benchmark sizes are scaled down (``--max-steps 2000`` → 2, ``--shapes base`` →
``small``…); paths into the repository (``.cache/``, ``examples/``) point at it. Commands run in a fresh
directory, so ``out/`` is the test's own.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import CORPUS
from roberta2longformer.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDES = ["converting", "python-api", "training", "finetuning", "long-embeddings", "speed", "architecture"]
DOCUMENTS = [README, *(ROOT / "docs" / f"{name}.md" for name in GUIDES)]
BUILTIN = "builtin:austen-roberta"
#: Scaled down so that a document runs in seconds: (pattern, replacement).
SMALLER = [
    (r"--max-steps (\d+)", lambda m: f"--max-steps {max(1, int(m[1]) // 1000)}"),
    (r"--shapes [\w,]+", lambda m: "--shapes small"),
    (r"--model-shape \w+", lambda m: "--model-shape small"),
    (r"--lengths [\d,]+", lambda m: "--lengths 256,512"),
    (r"--repeats \d+", lambda m: "--repeats 1"),
]


def blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def commands(path: Path) -> list[str]:
    """Every ``roberta2longformer …`` line of the document's bash blocks (continuations joined, comments cut)."""
    found = []
    for block in blocks(path, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("roberta2longformer "):
                found.append(line)
    return found


def _words(command: str) -> list[str]:
    for pattern, replacement in SMALLER:
        command = re.sub(pattern, replacement, command)
    words = shlex.split(command.replace("path/to/your-model", BUILTIN))[1:]
    return [str(ROOT / w) if w.startswith((".cache/", "examples/")) else w for w in words]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A directory with the documents the guides name, made up from the test corpus."""
    home = tmp_path_factory.mktemp("docs")
    sentences = sorted(set(CORPUS))
    for folder, count, parts in (("novels", 8, 200), ("held-out", 3, 60)):
        (home / folder).mkdir()
        for i in range(count):
            text = " ".join(f"{folder} {i}, part {j}. {sentences[(i + j) % len(sentences)]}" for j in range(parts))
            (home / folder / f"{folder}-{i}.txt").write_text(text, encoding="utf-8")
    labels = ["animal", "books", "models"]
    for split, count in (("train", 12), ("dev", 6), ("test", 5)):
        rows = [
            {"id": f"{split}-{i}", "text": " ".join([sentences[i % len(sentences)]] * 30), "label": labels[i % 3]}
            for i in range(count)
        ]
        (home / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        summaries = [{"text": " ".join([sentences[i % 4]] * 20), "summary": sentences[i % 4]} for i in range(count)]
        (home / f"summaries-{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in summaries))
    return home


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_command_runs_as_written(document, workspace, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("novels", "held-out"):
        (tmp_path / name).symlink_to(workspace / name)
    for file in workspace.glob("*.jsonl"):
        (tmp_path / file.name).symlink_to(file)
    runner = CliRunner()
    for command in commands(document):
        if command.startswith("roberta2longformer bench"):
            continue  # tests/test_benchmark.py runs these, and checks what they write
        result = runner.invoke(app, _words(command), catch_exceptions=False)
        assert result.exit_code == 0, f"{document.name}: {command}\n{result.output[-3000:]}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_python_snippet_runs_in_order(document, tmp_path, monkeypatch):
    """A document's snippets build on each other (``roberta_model`` from the first); run them in order."""
    from roberta2longformer.core.locations import resolve_source

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"long_text": "It is a truth universally acknowledged that a long document needs a long model."}
    for snippet in blocks(document, "python"):
        code = snippet.replace('"path/to/your-model"', f'"{BUILTIN}"').replace(
            '"path/to/roberta"', repr(resolve_source(BUILTIN))
        )
        exec(compile(code, str(document), "exec"), namespace)  # noqa: S102


def test_the_readme_starts_with_the_two_commands_and_reads_in_five_minutes():
    text = README.read_text(encoding="utf-8")
    first = blocks(README, "bash")[0]
    assert "bash scripts/demo.sh" in first and "bash scripts/test.sh" in first
    assert len(text.splitlines()) <= 250
    for link in re.findall(r"\]\(((?:docs|scripts|experiments)/[^)#]+)", text):
        assert (ROOT / link).exists(), link


def test_the_guides_link_to_what_exists():
    for document in DOCUMENTS[1:]:
        for link in re.findall(r"\]\((?!https?:)([^)#]+)", document.read_text(encoding="utf-8")):
            assert (document.parent / link).exists(), f"{document.name}: {link}"


def test_the_command_line_reference_is_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == module.reference(), (
        "docs/cli.md is out of date: run python scripts/cli_reference.py"
    )
