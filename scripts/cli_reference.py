"""Write docs/cli.md, the command-line reference, from the commands' own ``--help`` (what click prints), so
that it cannot drift from the code; ``tests/test_readme.py`` checks that the committed file is current.

Usage: python scripts/cli_reference.py [OUTPUT]   (default: docs/cli.md)
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from roberta2longformer.cli import app

WIDTH = 110


def reference() -> str:
    runner = CliRunner()
    parts = [
        "# Command line",
        "",
        "Every command and option, as `roberta2longformer COMMAND --help` prints them (written by "
        "`scripts/cli_reference.py`; `tests/test_readme.py` checks that this file is current).",
        "",
    ]
    for name in [None, *app.list_commands(None)]:
        args = [name, "--help"] if name else ["--help"]
        shown = runner.invoke(app, args, prog_name="roberta2longformer", terminal_width=WIDTH).output
        parts += [f"## `roberta2longformer{' ' + name if name else ''}`", "", "```text", shown.rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    target.write_text(reference(), encoding="utf-8")
    print(f"Wrote {target}")
