"""Fine-tuning: classification (single- and multi-label), the truncate/chunk baselines, LED summarization,
label mappings that round-trip, resume after a kill, a 2-process gloo run, and bad input."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import transformers
from click.testing import CliRunner
from huggingface_hub import ModelCard

from helpers import CORPUS, free_port, make_source
from roberta2longformer import convert, fast, save_conversion
from roberta2longformer.cli import app

CLI = [sys.executable, "-m", "roberta2longformer"]
FAST = ["--max-steps", "3", "--batch-size", "2", "--precision", "fp32", "--learning-rate", "1e-3"]
ANIMALS = {"fox": "animal", "truth": "books", "Bibliothek": "books", "weight": "models"}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _label(text: str) -> str:
    return next(label for word, label in ANIMALS.items() if word in text)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def data(tmp_path):
    """Documents of 2–6 sentences labelled by their first sentence's topic (train/eval/test)."""

    def rows(offset: int, count: int) -> list[dict]:
        out = []
        for i in range(count):
            sentences = [CORPUS[(offset + i + k) % 4] for k in range(2 + i % 5)]
            text = " ".join(sentences)
            out.append({"text": text, "label": _label(sentences[0]), "tags": sorted({_label(s) for s in sentences})})
        return out

    return {
        "train": _write(tmp_path / "train.jsonl", rows(0, 12)),
        "eval": _write(tmp_path / "eval.jsonl", rows(1, 6)),
        "test": _write(tmp_path / "test.jsonl", rows(2, 5)),
    }


@pytest.fixture
def long_model(tmp_path, bpe_tokenizer):
    source = make_source("roberta", "masked_lm", layer_norm_eps=1e-5)
    conversion = convert(source, bpe_tokenizer, max_length=128, attention_window=16)
    return save_conversion(conversion, None, tmp_path / "long")


@pytest.fixture
def short_model(tmp_path, bpe_tokenizer):
    path = tmp_path / "short"
    make_source("roberta", "masked_lm", layer_norm_eps=1e-5).save_pretrained(path)
    bpe_tokenizer.save_pretrained(path)
    return path


def test_classification_end_to_end_writes_a_model_whose_labels_round_trip(long_model, data, tmp_path, caplog):
    out = tmp_path / "clf"
    result = run("finetune", long_model, "--train", data["train"], "--eval", data["eval"], "--test", data["test"],
                 "-o", out, *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "A fresh classification head for 3 labels" in result.output and "masked-LM head" in result.output
    assert result.output.count("A fresh classification head") == 1 and "classification head" not in caplog.text
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out / "final")
    assert type(model).__name__ == "LongformerForSequenceClassification"
    assert model.config.id2label == {0: "animal", 1: "books", 2: "models"}
    assert model.config.label2id == {"animal": 0, "books": 1, "models": 2}
    assert model.config.problem_type == "single_label_classification"
    scores = json.loads((out / "eval_results.json").read_text())
    assert 0 <= scores["accuracy"] <= 1 and 0 <= scores["f1_macro"] <= 1
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 5 and all(p["label"] in {"animal", "books", "models"} for p in predictions)
    test_rows = [json.loads(line) for line in data["test"].read_text().splitlines()]
    assert [p["id"] for p in predictions] == [f"test.jsonl:{n}" for n in range(1, 6)]  # lines: the rows have no id
    assert [p["gold"] for p in predictions] == [row["label"] for row in test_rows]
    assert all(set(p["scores"]) == {"animal", "books", "models"} for p in predictions)
    assert all(max(p["scores"], key=p["scores"].get) == p["label"] for p in predictions)
    assert json.loads((out / "test_results.json").read_text())["accuracy"] >= 0
    card = ModelCard.load(out / "final" / "README.md")
    assert card.data.pipeline_tag == "text-classification" and "classification" in card.data.tags
    assert "AutoModelForSequenceClassification" in card.text and "`animal`" in card.text
    settings = card.text.split("Settings: ")[1].split("\n")[0]
    assert "label_field" in settings and "summary_field" not in settings and "num_beams" not in settings
    assert "passage_words" not in settings and "None" not in card.text
    assert "attention" not in result.output or "Traceback" not in result.output


def test_global_attention_on_the_first_token_and_inputs_padded_to_windows(long_model, data):
    from roberta2longformer.train.tasks.supervised import GlobalFirstToken, input_multiple

    model = transformers.AutoModelForSequenceClassification.from_pretrained(long_model, num_labels=3)
    tokenizer = transformers.AutoTokenizer.from_pretrained(long_model)
    assert input_multiple(model) == 16
    assert input_multiple(fast.enable(copy.deepcopy(model))) is None  # the fast backend reads any length
    collator = GlobalFirstToken(transformers.DataCollatorWithPadding(tokenizer, pad_to_multiple_of=16), model)
    batch = collator([{"input_ids": [0, 5, 6, 2]}, {"input_ids": [0] + [7] * 20 + [2]}])
    assert batch["input_ids"].shape == (2, 32) and batch["global_attention_mask"][:, 0].tolist() == [1, 1]
    assert batch["global_attention_mask"][:, 1:].sum() == 0


def test_evaluation_batches_keep_the_datas_order_while_training_batches_are_grouped_by_length(tmp_path, bpe_tokenizer):
    """transformers' length grouping also reorders evaluation batches: windows averaged with other documents' and
    predictions beside the wrong ids (issue 34's predictions.jsonl test found it)."""
    import datasets

    from roberta2longformer.train.setup import length_grouped_arguments
    from roberta2longformer.train.tasks.supervised import InOrderTrainer

    lengths = [3, 40, 7, 25, 2, 33, 12, 5, 48, 9]
    rows = datasets.Dataset.from_dict({"input_ids": [[5] * n for n in lengths], "labels": list(range(len(lengths)))})
    arguments = transformers.TrainingArguments(
        tmp_path / "run",
        per_device_eval_batch_size=2,
        report_to=[],
        dataloader_pin_memory=False,
        **length_grouped_arguments(),
    )
    collator = transformers.DataCollatorWithPadding(bpe_tokenizer)
    trainer = InOrderTrainer(model=make_source("roberta", "masked_lm"), args=arguments, eval_dataset=rows,
                             data_collator=collator)  # fmt: skip
    seen = [label for batch in trainer.get_eval_dataloader() for label in batch["labels"].tolist()]
    assert seen == list(range(len(lengths)))


def test_multi_label_classification(long_model, data, tmp_path):
    out = tmp_path / "multi"
    result = run("finetune", long_model, "--train", data["train"], "--eval", data["eval"], "--label-field", "tags",
                 "-o", out, *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out / "final")
    assert model.config.problem_type == "multi_label_classification" and len(model.config.id2label) == 3
    assert {"accuracy", "f1_macro", "f1_micro"} <= set(json.loads((out / "eval_results.json").read_text()))


@pytest.mark.parametrize("baseline", [["--truncate", "16"], ["--chunks", "mean"]], ids=["truncate", "chunks"])
def test_a_short_model_runs_the_baselines(short_model, data, tmp_path, baseline):
    out = tmp_path / "short-run"
    result = run("finetune", short_model, "--train", data["train"], "--eval", data["eval"], "--test", data["test"],
                 "-o", out, *FAST, *baseline)  # fmt: skip
    assert result.exit_code == 0, result.output
    if baseline[0] == "--truncate":
        assert "reading the first 16 tokens" in result.output and "are read up to their first 16" in result.output
    else:
        assert "every window of 32 tokens, predictions averaged" in result.output
    predictions = (out / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 5  # one per document, whatever the number of windows
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out / "final")
    assert type(model).__name__ == "RobertaForSequenceClassification"


def test_window_predictions_are_averaged_per_document():
    import numpy as np

    from roberta2longformer.train.scoring import classification_metrics, per_document

    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [1.0, 0.0]])  # doc 0: windows 0-1, doc 1: 2-3
    labels = np.array([0, 0, 1, 1])
    mean, truth = per_document(logits, labels, [0, 0, 1, 1])
    assert mean.tolist() == [[1.0, 0.5], [0.5, 1.5]] and truth.tolist() == [0, 1]
    assert classification_metrics(mean, truth, multi=False) == {"accuracy": 1.0, "f1_macro": 1.0, "f1_micro": 1.0}
    hand = classification_metrics(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([0, 1, 1]), multi=False)
    assert hand["accuracy"] == pytest.approx(2 / 3) and hand["f1_macro"] == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_led_summarization_generates_and_scores_rouge(tmp_path, bpe_tokenizer):
    source = make_source("roberta", "masked_lm", layer_norm_eps=1e-5)
    led = save_conversion(
        convert(source, bpe_tokenizer, to="led", max_length=64, attention_window=16, decoder_max_length=24),
        None,
        tmp_path / "led",
    )
    # summaries of about 20 tokens: padded to whole windows (32) they would overrun the decoder's 24 positions
    pairs = [{"text": " ".join(CORPUS[i % 4 : i % 4 + 3]), "summary": CORPUS[i % 4]} for i in range(10)]
    train, dev = _write(tmp_path / "train.jsonl", pairs[:8]), _write(tmp_path / "dev.jsonl", pairs[8:])
    out = tmp_path / "sum"
    result = run("finetune", led, "--train", train, "--eval", dev, "--test", dev, "-o", out, *FAST,
                 "--max-summary-length", "24")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Fine-tuned for summarization" in result.output
    results = json.loads((out / "eval_results.json").read_text())
    assert {"rouge1", "rouge2", "rougeL"} <= set(results) and {"rougeL", "loss"} <= set(results["before_training"])
    assert "eval before training: " in result.output
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 2 and all("summary" in p for p in predictions)
    assert transformers.AutoModelForSeq2SeqLM.from_pretrained(out / "final").config.model_type == "led"
    too_long = run("finetune", led, "--train", train, "--eval", dev, "-o", tmp_path / "never", *FAST,
                   "--max-summary-length", "64")  # fmt: skip
    assert too_long.exit_code == 2 and "beyond the decoder's 24 positions" in too_long.output
    assert not (tmp_path / "never").exists()


BAD = [
    (lambda d, t: _write(t / "ev.jsonl", [{"text": "a dog", "label": "plants"}]), "eval", "label 'plants'"),
    (lambda d, t: _write(t / "ev.jsonl", [{"body": "a dog", "label": "animal"}]), "eval", "has no 'text' field"),
    (lambda d, t: _write(t / "ev.jsonl", []), "eval", "holds no text"),
    (lambda d, t: t / "missing.jsonl", "train", "does not exist"),
]


@pytest.mark.parametrize("make, split, phrase", BAD, ids=["unknown label", "missing field", "empty", "missing file"])
def test_bad_data_gets_one_sentence_and_nothing_in_output(long_model, data, tmp_path, make, split, phrase):
    files = {**data, split: make(data, tmp_path)}
    out = tmp_path / "never"
    result = run("finetune", long_model, "--train", files["train"], "--eval", files["eval"], "-o", out, *FAST)
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.parametrize(
    "extra, phrase",
    [
        (["--task", "summarization"], "Summarization needs an encoder-decoder"),
        (["--max-length", "4096"], "beyond the model's 128 positions"),
        (["--truncate", "16", "--chunks", "mean"], "choose one"),
        (["--task", "multi-label"], "the labels are single values"),
    ],
    ids=["summarization on an encoder", "too long", "two baselines", "wrong task"],
)
def test_bad_options_get_one_sentence_and_nothing_in_output(long_model, data, tmp_path, extra, phrase):
    out = tmp_path / "never"
    result = run("finetune", long_model, "--train", data["train"], "--eval", data["eval"], "-o", out, *FAST, *extra)
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert not out.exists()


def _command(model, data, out, *extra):
    return [*CLI, "finetune", str(model), "--train", str(data["train"]), "--eval", str(data["eval"]), "-o", str(out),
            "--batch-size", "2", "--precision", "fp32", "--early-stopping", "0", *extra]  # fmt: skip


def test_a_killed_run_resumes_from_its_last_checkpoint(long_model, data, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(_command(long_model, data, out, "--epochs", "200"), env=env, stdout=log, stderr=log)
    deadline = time.time() + 300
    while not any(p.name.startswith("checkpoint-") and (p / "trainer_state.json").exists()
                  for p in (out.iterdir() if out.exists() else [])):  # fmt: skip
        assert process.poll() is None and time.time() < deadline, (tmp_path / "first.log").read_text()[-2000:]
        time.sleep(0.05)
    time.sleep(0.5)  # let the checkpoint's files settle
    process.send_signal(signal.SIGKILL)
    process.wait()
    log.close()
    assert not (out / "final").exists()
    done = subprocess.run(_command(long_model, data, out, "--epochs", "2", "--resume"), env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout and (out / "final" / "model.safetensors").exists()


def test_two_process_gloo_run(long_model, data, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    command = [str(torchrun), "--nproc_per_node=2", f"--master_port={free_port()}", "-m", "roberta2longformer",
               *_command(long_model, data, out, "--max-steps", "2")[3:]]  # fmt: skip
    result = subprocess.run(command, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Fine-tuned for classification: 2 steps" in result.stdout
    assert transformers.AutoModelForSequenceClassification.from_pretrained(out / "final").config.id2label[0] == "animal"
