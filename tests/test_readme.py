"""The README's quickstart works as written (with the built-in model in place of the user's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Convert your own model", 1)[1].split("\n## ", 1)[0]
BUILTIN = "builtin:austen-roberta"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, flags=re.S)


def test_the_quickstart_commands_run_as_written(tmp_path):
    commands = [line.split("#")[0].strip() for line in blocks("bash")[0].splitlines() if line.strip()]
    assert [c.split()[1] for c in commands] == ["convert", "verify", "convert"]
    cli = [sys.executable, "-m", "roberta2longformer"]
    for command in commands:
        words = command.replace("path/to/your-model", BUILTIN).replace("out/", f"{tmp_path}/").split()[1:]
        done = subprocess.run([*cli, *words], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "your-model-4096" / "README.md").is_file()


def test_the_quickstart_python_runs_as_written():
    code = (
        blocks("python")[0]
        .replace('"path/to/your-model"', f'"{BUILTIN}"')
        .replace("longformer_max_length=4096", "longformer_max_length=4096, attention_window=64")
    )
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    assert (
        type(namespace["model"]).__name__ == "LongformerForMaskedLM" and namespace["tokenizer"].model_max_length == 4096
    )


def test_every_python_snippet_of_the_readme_runs_in_order(tmp_path, monkeypatch):
    """The API sections build on each other (``roberta_model`` from the first); run them all, with the
    built-in RoBERTa as the user's model and a short text as ``long_text``."""
    from roberta2longformer.core.loading import resolve_source

    monkeypatch.chdir(tmp_path)
    snippets = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(snippets) >= 6
    namespace: dict = {"long_text": "It is a truth universally acknowledged that a long document needs a long model."}
    for snippet in snippets:
        code = snippet.replace('"path/to/your-model"', f'"{BUILTIN}"').replace(
            '"path/to/roberta"', repr(resolve_source(BUILTIN))
        )
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "out" / "longformer" / "config.json").is_file()
    assert namespace["summary_ids"].shape[0] == 1 and namespace["model"].config.max_position_embeddings == 16384 + 2
