"""Faults and hostile input around the output: nothing lost, nothing half-written, one sentence each.

Each case builds its input here and checks the exit code, a phrase of the message, and that nothing
new is left beside the output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import transformers
from click.testing import CliRunner

from roberta2longformer import ConversionError
from roberta2longformer.cli import app
from roberta2longformer.io.output import RENAME_EXCHANGE, atomic_output_dir, renameat2

runner = CliRunner()
SMALL = ["--max-length", "64", "--attention-window", "16", "--no-smoke"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def leftovers(parent, name):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def test_force_never_replaces_the_source_or_a_directory_holding_it(saved_source, tmp_path):
    source = saved_source()
    before = sorted(p.name for p in source.iterdir())
    result = run("convert", source, source, "--force", *SMALL)
    assert result.exit_code == 2 and "is the source itself" in result.output
    result = run("convert", source, tmp_path, "--force", *SMALL)
    assert result.exit_code == 2 and "holds the source" in result.output
    assert sorted(p.name for p in source.iterdir()) == before and transformers.AutoConfig.from_pretrained(source)
    assert leftovers(tmp_path, tmp_path.name) == [] and leftovers(source.parent, source.name) == []


def test_an_output_that_appears_meanwhile_is_left_alone(tmp_path):
    output = tmp_path / "out"
    with pytest.raises(ConversionError, match="appeared while this ran"), atomic_output_dir(output) as staging:
        (staging / "new.txt").write_text("new")
        output.mkdir()  # as the user (or another run) would, while this one writes
        (output / "mine.txt").write_text("mine")
    assert (output / "mine.txt").read_text() == "mine" and not (output / "new.txt").exists()
    assert leftovers(tmp_path, "out") == []


def test_an_empty_directory_that_appears_meanwhile_is_not_replaced_either(tmp_path):
    output = tmp_path / "out"
    with pytest.raises(ConversionError, match="appeared while this ran"), atomic_output_dir(output) as staging:
        (staging / "new.txt").write_text("new")
        output.mkdir()
    assert list(output.iterdir()) == [] and leftovers(tmp_path, "out") == []


def test_force_swaps_old_and_new_in_one_step_where_the_filesystem_can(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    (old / "a").write_text("old"), (new / "a").write_text("new")
    if not renameat2(new, old, RENAME_EXCHANGE):
        pytest.skip("no renameat2(RENAME_EXCHANGE) here: --force replaces in two renames")
    assert (old / "a").read_text() == "new" and (new / "a").read_text() == "old"


def test_two_runs_into_one_new_output_keep_one_result_and_the_other_says_so(saved_source, tmp_path):
    source, output = saved_source(), tmp_path / "out"
    command = [sys.executable, "-m", "roberta2longformer", "convert", str(source), str(output), *SMALL]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in runs]
    codes = sorted(code for code, _ in results)
    if codes == [0, 0]:
        pytest.skip("the two runs did not overlap on this machine")  # the second started after the first finished
    assert codes == [0, 2], results
    assert "appeared while this ran" in next(err for code, err in results if code == 2)
    assert transformers.AutoModelForMaskedLM.from_pretrained(output) and leftovers(tmp_path, "out") == []


def _staged(tmp_path, name):
    """The staging directory's files, once it exists (else ``None``)."""
    found = leftovers(tmp_path, "out")
    return {p.name for p in (tmp_path / found[0]).iterdir()} if found else None


# When to signal: before anything is written (loading), while the weights are written, while verifying.
PHASES = {
    "loading": lambda staged, started: time.time() - started > 0.5,
    "writing": lambda staged, started: staged is not None,
    "verifying": lambda staged, started: staged is not None and "tokenizer.json" in staged,
}


@pytest.mark.parametrize(
    "stop, phase",
    [
        (signal.SIGTERM, "loading"),
        (signal.SIGTERM, "writing"),
        (signal.SIGTERM, "verifying"),
        (signal.SIGHUP, "writing"),
    ],
    ids=["SIGTERM-loading", "SIGTERM-writing", "SIGTERM-verifying", "SIGHUP-writing"],
)
def test_sigterm_and_sighup_remove_what_was_being_written(saved_source, tmp_path, stop, phase):
    source, output = saved_source(), tmp_path / "out"
    # 16384 tokens: verification (its smoke forward) lasts a second or more, so each phase can be hit
    command = [sys.executable, "-m", "roberta2longformer", "convert", str(source), str(output)]
    command += ["--max-length", "16384", "--attention-window", "16"]
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while process.poll() is None and not PHASES[phase](_staged(tmp_path, "out"), started):
        time.sleep(0.01)
    assert process.poll() is None, "the conversion ended before the phase was reached"
    process.send_signal(stop)
    code = process.wait(timeout=120)
    assert code == 128 + stop and "nothing was written" in process.stderr.read()
    assert not output.exists() and leftovers(tmp_path, "out") == []


def test_a_later_run_removes_the_staging_of_a_killed_one(saved_source, tmp_path, caplog):
    stale = tmp_path / ".out.tmp-999999999-abcd"  # no such process
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\0" * 1024)
    result = run("convert", saved_source(), tmp_path / "out", *SMALL)
    assert result.exit_code == 0, result.output
    assert "the unfinished output of an interrupted run" in caplog.text and not stale.exists()


def test_a_fifo_in_place_of_the_weights_is_refused_at_once(saved_source, tmp_path):
    source = saved_source()
    (source / "model.safetensors").unlink()
    os.mkfifo(source / "model.safetensors")
    done = subprocess.run(
        [sys.executable, "-m", "roberta2longformer", "convert", str(source), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "is not a regular file" in done.stderr
    assert not (tmp_path / "out").exists() and leftovers(tmp_path, "out") == []


@pytest.mark.parametrize("name, phrase", [(".", "names no directory of its own"), ("link", "dangling symbolic link")])
def test_outputs_that_name_no_new_directory_are_refused(saved_source, tmp_path, monkeypatch, name, phrase):
    monkeypatch.chdir(tmp_path)
    if name == "link":
        os.symlink(tmp_path / "nowhere", tmp_path / "link")
    result = run("convert", saved_source(), name, "--force", *SMALL)
    assert result.exit_code == 2 and phrase in result.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def hostile(saved_source, tmp_path):
    """Sources that must be refused before anything is loaded from them."""
    import json

    import torch

    code = saved_source()
    config = json.loads((code / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (code / "config.json").write_text(json.dumps(config))
    (code / "evil.py").write_text("raise SystemExit('the checkpoint ran its code')\n")

    pickled_shard = saved_source()
    weights = pickled_shard / "model.safetensors"
    from safetensors.torch import load_file

    torch.save(load_file(weights), pickled_shard / "pytorch_model-00001-of-00001.bin")
    weights.unlink()
    state = torch.load(pickled_shard / "pytorch_model-00001-of-00001.bin", weights_only=True)
    index = {"metadata": {}, "weight_map": dict.fromkeys(state, "pytorch_model-00001-of-00001.bin")}
    (pickled_shard / "model.safetensors.index.json").write_text(json.dumps(index))

    pickle_only = saved_source()
    state = load_file(pickle_only / "model.safetensors")
    torch.save(state, pickle_only / "pytorch_model.bin")
    (pickle_only / "model.safetensors").unlink()
    documents = tmp_path / "docs.txt"
    documents.write_text("a long document " * 200)
    return {"code": code, "pickled_shard": pickled_shard, "pickle_only": pickle_only, "docs": documents}


REFUSED = [
    (["convert", "{code}", "{out}"], "never runs a checkpoint's code"),
    (["verify", "{code}", "{code}"], "never runs a checkpoint's code"),
    (["evaluate", "{code}", "--data", "{docs}"], "never runs a checkpoint's code"),
    (["convert", "{pickled_shard}", "{out}"], "not safetensors"),
    (["verify", "{pickled_shard}", "{pickled_shard}"], "not safetensors"),
    (["evaluate", "{pickle_only}", "--data", "{docs}"], "holds only pickle weights"),
    (["pretrain", "{pickle_only}", "--data", "{docs}", "-o", "{out}"], "holds only pickle weights"),
    (["pretrain", "{code}", "--data", "{docs}", "-o", "{out}", "--batch-size", "0"], "0 is not in the range x>=1"),
    (
        ["pretrain", "{code}", "--data", "{docs}", "-o", "{out}", "--learning-rate", "-1"],
        "-1.0 is not in the range x>=0",
    ),
    (
        ["pretrain", "{pickle_only}", "--data", "{docs}", "-o", "{out}", "--schedule", "nonsense"],
        "Unknown --schedule 'nonsense'",
    ),
    (["pretrain", "{code}", "--data", "{docs}", "-o", "{out}", "--max-steps", "0"], "0 is not in the range x>=1"),
    (["pretrain", "{code}", "--data", "{docs}", "-o", "{out}", "--save-steps", "0"], "0 is not in the range x>=1"),
    (["pretrain", "{code}", "--data", "{docs}", "-o", "{out}", "--max-length", "0"], "0 is not in the range x>=3"),
    (["evaluate", "{code}", "--data", "{docs}", "--batch-size", "0"], "0 is not in the range x>=1"),
    (["evaluate", "{code}", "--data", "{docs}", "--window", "0"], "0 is not in the range x>=3"),
    (["evaluate", "{pickle_only}", "--data", "{docs}", "--json", "{out}/missing/r.json"], "does not exist"),
    (["verify", "{pickle_only}", "{pickle_only}", "--json", "{out}/missing/r.json"], "does not exist"),
]


@pytest.mark.parametrize("args, phrase", REFUSED, ids=lambda v: v if isinstance(v, str) else " ".join(v[:1] + v[-2:]))
def test_hostile_and_bad_input_gets_one_sentence_and_exit_2(hostile, tmp_path, args, phrase):
    out = tmp_path / "out"
    words = [a.format(out=out, **hostile) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*words)
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert "Traceback" not in result.output and "ran its code" not in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == before


def _edit_config(path, **fields):
    import json

    config = json.loads((path / "config.json").read_text())
    config.update(fields)
    (path / "config.json").write_text(json.dumps(config))


def _edit_weights(path, change):
    from safetensors.torch import load_file, save_file

    state = load_file(path / "model.safetensors")
    change(state)
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})


WORDS = "roberta.embeddings.word_embeddings.weight"
# (id, how the saved source is spoiled, extra arguments, a phrase of the one sentence)
BAD_SOURCES = [
    (
        "integer weights",
        lambda p: _edit_weights(p, lambda s: s.update({WORDS: s[WORDS].long()})),
        [],
        "not floating point",
    ),
    ("no layers", lambda p: _edit_config(p, num_hidden_layers=0), [], "num_hidden_layers=0"),
    ("negative positions", lambda p: _edit_config(p, max_position_embeddings=-5), [], "max_position_embeddings=-5"),
    ("heads do not divide", lambda p: _edit_config(p, num_attention_heads=5), [], "not a multiple of"),
    ("string hidden_size", lambda p: _edit_config(p, hidden_size="32"), [], "hidden_size"),
    ("pad id out of range", lambda p: _edit_config(p, pad_token_id=999), [], "pad"),
    ("vocab_size too small", lambda p: _edit_config(p, vocab_size=10), [], "does not match its config.json"),
    ("unknown activation", lambda p: _edit_config(p, hidden_act="swishy"), [], "hidden_act='swishy'"),
    ("a pipeline as the class", lambda p: _edit_config(p, architectures=["FillMaskPipeline"]), [], "not a model class"),
    (
        "a tokenizer as the class",
        lambda p: _edit_config(p, architectures=["RobertaTokenizer"]),
        [],
        "not a model class",
    ),
    ("fewer layers than weights", lambda p: _edit_config(p, num_hidden_layers=1), [], "weights for 2 layers"),
    ("a missing weight", lambda p: _edit_weights(p, lambda s: s.pop(WORDS)), [], "lacks"),
    ("corrupt config", lambda p: (p / "config.json").write_text("{not json"), [], "not a valid JSON"),
    ("window over length", None, ["--attention-window", "128"], "larger than max_length"),
    ("length of 1", None, ["--max-length", "1"], "at least 2 tokens"),
    ("a billion tokens", None, ["--max-length", "1000000000"], "position table needs"),
    ("seed beyond 32 bits", None, ["--seed", str(2**70)], "not in the range"),
]


@pytest.mark.parametrize("in_memory", [False, True], ids=["streaming", "in-memory"])
@pytest.mark.parametrize("spoil, extra, phrase", [row[1:] for row in BAD_SOURCES], ids=[row[0] for row in BAD_SOURCES])
def test_a_bad_source_or_option_gets_one_sentence_and_exit_2(saved_source, tmp_path, spoil, extra, phrase, in_memory):
    source = saved_source()
    if spoil is not None:
        spoil(source)
    before = sorted(p.name for p in tmp_path.iterdir())
    options = ["--max-length", "64", "--attention-window", "16", *extra, *(["--in-memory"] if in_memory else [])]
    result = run("convert", source, tmp_path / "out", *options)
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


MISLEADING = [
    (["resize", "{tmp}/nowhere", "{tmp}/out", "--max-length", "128"], "nowhere does not exist"),
    (["import-fairseq", "{tmp}/nowhere", "{tmp}/out", "--allow-pickle"], "nowhere does not exist"),
    (["convert", "{source}/config.json", "{tmp}/out"], "is a file, not a model directory"),
    (["resize", "{long}", "{tmp}/out", "--max-length", "8"], "larger than max_length"),
]


@pytest.mark.parametrize("args, phrase", MISLEADING, ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]))
def test_messages_say_what_is_wrong(saved_source, tmp_path, args, phrase):
    source = saved_source()
    long = tmp_path / "long"
    assert run("convert", source, long, *SMALL).exit_code == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*(a.format(tmp=tmp_path, source=source, long=long) for a in args))
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("in_memory", [False, True], ids=["streaming", "in-memory"])
def test_a_disk_too_small_is_said_before_writing(saved_source, tmp_path, monkeypatch, in_memory):
    import collections

    from roberta2longformer.io import output

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(output.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 1000, 1000))
    source = saved_source()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run("convert", source, tmp_path / "out", *SMALL, *(["--in-memory"] if in_memory else []))
    assert result.exit_code == 2 and "No space left" in result.output and "MB free" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_max_shard_size_is_honoured_in_memory_too(saved_source, tmp_path):
    import json

    result = run("convert", saved_source(), tmp_path / "out", *SMALL, "--in-memory", "--max-shard-size", "40KB")
    assert result.exit_code == 0, result.output
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "out")


def test_verify_refuses_a_tokenizer_larger_than_the_embedding(saved_source, tmp_path, bpe_tokenizer):
    converted = tmp_path / "long"
    assert run("convert", saved_source(), converted, *SMALL).exit_code == 0
    smaller = saved_source(vocab_size=300, tokenizer=False)  # the 320-token tokenizer beside a 300-row embedding
    bpe_tokenizer.save_pretrained(smaller)
    result = run("verify", smaller, converted)
    assert (
        result.exit_code == 2
        and "The tokenizer has 320 tokens but the source's embedding only 300 rows" in result.output
    )
    assert "Traceback" not in result.output
