"""The architecture is checked, not hoped for: what import-linter (run by scripts/test.sh beside ruff) does
not see, these do — private names stay in their module, imports inside functions say why, functions stay
short, and tests use public names only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "roberta2longformer"
MODULES = sorted(p for p in SOURCE.rglob("*.py") if "models" not in p.relative_to(SOURCE).parts)
LONGEST_FUNCTION = 80  # lines, decorators aside
LONGEST_COMMAND = 60  # a command line command's function: it parses, calls one pipeline, prints


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _functions(tree: ast.AST):
    return (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _private_imports(path: Path) -> list[str]:
    """``from .x import _name`` (or ``from roberta2longformer.x import _name``) of another module's private name."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("roberta2longformer")):
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return found


def test_no_module_imports_another_modules_private_names():
    found = [line for path in [*MODULES, *sorted((ROOT / "tests").glob("*.py"))] for line in _private_imports(path)]
    assert found == []


def test_every_import_inside_a_function_says_why():
    """Imports inside functions only where startup time needs them (or a dependency is optional), each with a
    one-line reason on its line or the line above; the command line's modules are all about startup."""
    unexplained = []
    for path in MODULES:
        lines = path.read_text(encoding="utf-8").splitlines()
        if path.parent.name == "cli" or path.parent.name == "workers":
            continue  # commands import what they run (startup), worker scripts what they measure
        for function in _functions(_tree(path)):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and node in _direct_body(function):
                    said = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
                    block = _first_of_block(function, node, lines)
                    if not (said or block):
                        unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert unexplained == []


def _direct_body(function: ast.AST) -> list[ast.AST]:
    """The statements of ``function`` itself (a nested function's imports are its own)."""
    nodes = []
    for child in ast.iter_child_nodes(function):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        nodes.append(child)
        nodes += _direct_body(child)
    return nodes


def _first_of_block(function: ast.AST, node: ast.AST, lines: list[str]) -> bool:
    """An import in a run of imports (blank lines and ``try:``/``except`` between them allowed) shares the
    reason given on one of them, or on the comment line above the run."""
    previous = node.lineno - 2
    while previous >= 0:
        line = lines[previous].strip()
        if line.startswith("#") or ("#" in line and line.startswith(("from ", "import ", "try:", "except"))):
            return True
        if line and not line.startswith(("from ", "import ", "try:", "except")):
            return False
        previous -= 1
    return False


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in MODULES:
        for function in _functions(_tree(path)):
            start = function.lineno  # the def line: decorators (click options) aside
            limit = LONGEST_COMMAND if path.parent.name == "cli" and function.decorator_list else LONGEST_FUNCTION
            if function.end_lineno - start + 1 > limit:
                long.append(f"{path.relative_to(ROOT)}:{start} {function.name} ({function.end_lineno - start + 1})")
    assert long == []
