"""The command line starts at once: nothing heavy is imported until a command needs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import roberta2longformer

HEAVY = ("torch", "transformers")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_importing_the_package_the_targets_and_the_cli_loads_neither_torch_nor_transformers():
    done = run_python(
        "import sys, roberta2longformer, roberta2longformer.cli, roberta2longformer.targets\n"
        "from roberta2longformer.cli import app\n"
        "from roberta2longformer.targets import all_targets\n"
        "[t.default_options() for t in all_targets()]\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["convert", "--help"], ["bench", "--help"], ["--version"]])
def test_help_and_version_run_without_heavy_imports(args):
    code = (
        "import sys\nfrom roberta2longformer.cli import app\n"
        f"try:\n    app.main({args!r}, prog_name='roberta2longformer')\nexcept SystemExit as exit:\n    code = exit.code\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules), code)"
    )
    done = run_python(code)
    assert done.stdout.strip().splitlines()[-1] == "LOADED [] 0", done.stdout + done.stderr


def test_python_dash_m_and_version():
    done = subprocess.run([sys.executable, "-m", "roberta2longformer", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"roberta2longformer {roberta2longformer.__version__}"


def test_a_finished_command_leaves_the_final_garbage_collection_out_and_keeps_its_exit_code():
    done = run_python(
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))  # runs after main's own exit\n"
        "sys.argv = ['roberta2longformer', 'convert', '/nonexistent/source', '/tmp/never-written']\n"
        "from roberta2longformer.cli import main\n"
        "main()"
    )
    assert done.returncode != 0 and done.stdout.strip() == "frozen True", done.stdout + done.stderr


def test_short_commands_defer_full_collections_while_they_run_and_long_ones_do_not():
    import gc

    from roberta2longformer.cli import app
    from roberta2longformer.cli.common import DEFERRED_FULL_COLLECTIONS, short_lived

    before = gc.get_threshold()
    seen = []

    @short_lived
    def command():
        seen.append(gc.get_threshold())
        raise RuntimeError("a failing command restores the thresholds too")

    with pytest.raises(RuntimeError):
        command()
    assert seen == [(*before[:2], DEFERRED_FULL_COLLECTIONS)] and gc.get_threshold() == before
    deferred = {name for name, cmd in app.commands.items() if hasattr(cmd.callback, "__wrapped__")}
    assert deferred == {"convert", "verify", "resize", "import-fairseq"}


def test_public_names_load_on_first_use():
    done = run_python(
        "import sys, roberta2longformer as r\n"
        "assert 'torch' not in sys.modules\n"
        "from roberta2longformer import convert_roberta_to_longformer, verify, Conversion\n"
        "print(callable(convert_roberta_to_longformer), callable(verify), Conversion.__name__, 'torch' in sys.modules)"
    )
    assert done.stdout.strip() == "True True Conversion True", done.stderr
    assert set(roberta2longformer.__all__) == {
        *roberta2longformer._PUBLIC,
        "ConversionError",
        "ToleranceError",
        "__version__",
    }


@pytest.mark.parametrize("verify, loads_model_classes", [(False, False), (True, True)])
def test_a_streaming_conversion_builds_model_classes_only_to_verify(
    saved_source, tmp_path, verify, loads_model_classes
):
    """Importing transformers' modeling code costs seconds; a --no-verify conversion does without it."""
    source, output = saved_source("roberta", "masked_lm"), tmp_path / "out"
    args = ["convert", str(source), str(output), "--max-length", "64", "--attention-window", "16", "--no-smoke"]
    args += [] if verify else ["--no-verify"]
    code = (
        "import json, sys\nfrom roberta2longformer.cli import app\n"
        f"try:\n    app.main({args!r}, prog_name='roberta2longformer')\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print(json.dumps({'code': code, 'modeling': 'transformers.modeling_utils' in sys.modules}))"
    )
    done = run_python(code)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "modeling": loads_model_classes}, done.stderr
    assert (output / "model.safetensors").is_file() and (output / "config.json").is_file()


def test_the_activation_names_read_from_transformers_source_are_its_table():
    import subprocess
    import sys

    code = (
        "import sys; from roberta2longformer.core.checks import known_activations; names = known_activations(); "
        "assert 'transformers.activations' not in sys.modules; "
        "from transformers.activations import ACT2FN; assert names == frozenset(ACT2FN), names ^ frozenset(ACT2FN)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
