"""A sentence-transformers directory as a source: its modules carried over, SentenceTransformer(OUT)
loading the long model with them, sentence embeddings exact on short inputs, and bad layouts refused."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import CORPUS
from roberta2longformer.cli import app

SMALL = ["--max-length", "128", "--attention-window", "32"]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_modules_are_carried_and_sentence_transformers_loads_the_long_model(sentence_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "long"
    result = run("convert", sentence_model, out, *SMALL)
    assert result.exit_code == 0, result.output
    assert "✓ sentence embeddings: SentenceTransformer.encode" in result.output
    long = SentenceTransformer(str(out), device="cpu")
    assert long.max_seq_length == 128 and [type(m).__name__ for m in long] == ["Transformer", "Pooling", "Normalize"]
    embedding = long.encode([" ".join(CORPUS[:6])], convert_to_tensor=True)
    assert embedding.shape == (1, 32) and torch.linalg.norm(embedding).item() == pytest.approx(1.0, abs=1e-5)
    assert type(transformers.AutoModel.from_pretrained(out)).__name__ == "LongformerModel"
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 128
    report = json.loads((out / "verification.json").read_text())
    assert any(c["case"] == "sentence embeddings" and c["passed"] for c in report["checks"])
    assert "SentenceTransformer(" in (out / "README.md").read_text()


@pytest.mark.parametrize("in_memory", [False, True], ids=["streaming", "in-memory"])
def test_sentence_embeddings_are_the_sources_on_short_inputs(sentence_model, tmp_path, in_memory):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "long"
    assert run("convert", sentence_model, out, *SMALL, *(["--in-memory"] if in_memory else [])).exit_code == 0
    short, long = SentenceTransformer(str(sentence_model), device="cpu"), SentenceTransformer(str(out), device="cpu")
    long.max_seq_length = short.max_seq_length = 17  # one window: 32 / 2 + 1
    texts = CORPUS[:4]
    difference = (short.encode(texts, convert_to_tensor=True) - long.encode(texts, convert_to_tensor=True)).abs().max()
    assert difference <= 1e-4


@pytest.mark.parametrize(
    "spoil, phrase",
    [
        (lambda m: [x for x in m if not x["type"].endswith("Transformer")], "names no Transformer module"),
        (lambda m: [*m, {"idx": 9, "name": "9", "path": "9_X", "type": "my_package.Reranker"}], "cannot carry over"),
        (lambda m: [*m, {"idx": 9, "name": "9", "path": "9_Dense", "type": "sentence_transformers.models.Dense"}],
         "missing"),
        (lambda m: "not a list", "is not a sentence-transformers module list"),
    ],
    ids=["no transformer", "unknown module", "missing folder", "corrupt"],
)  # fmt: skip
def test_a_layout_we_cannot_carry_is_refused(sentence_model, tmp_path, spoil, phrase):
    listed = json.loads((sentence_model / "modules.json").read_text())
    (sentence_model / "modules.json").write_text(json.dumps(spoil(listed)))
    out = tmp_path / "never"
    result = run("convert", sentence_model, out, *SMALL)
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert not out.exists()


def test_a_target_that_reads_one_length_only_is_refused(sentence_model, tmp_path):
    out = tmp_path / "never"
    result = run("convert", sentence_model, out, "--to", "nystromformer", "--max-length", "128")
    assert result.exit_code == 2 and "pads each batch to its longest text" in result.output, result.output
    assert "longformer" in result.output and not out.exists()


def test_tile_trained_repeats_the_rows_the_embedder_was_used_at(sentence_model, tmp_path):
    out = tmp_path / "long"
    result = run("convert", sentence_model, out, "--max-length", "128", "--attention-window", "64",
                 "--position-init", "tile-trained")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "verification.json").read_text())
    assert report["options"]["trained_positions"] == 24 and report["exact_length"] == 24  # its max_seq_length
    source = transformers.AutoModel.from_pretrained(sentence_model).embeddings.position_embeddings.weight
    long = transformers.AutoModel.from_pretrained(out).embeddings.position_embeddings.weight
    offset = long.shape[0] - 128  # BERT numbers positions from 0, a Longformer after its padding row
    for position in (0, 23, 24, 50, 127):
        assert torch.equal(long[offset + position], source[position % 24])
    verified = run("verify", sentence_model, out)  # the options come from verification.json
    assert verified.exit_code == 0, verified.output


def test_tile_trained_rows():
    from roberta2longformer.core.positions import extend_learned_rows

    learned = torch.arange(8.0).unsqueeze(1)
    rows = extend_learned_rows(learned, 10, "tile-trained", trained=3)
    assert rows.squeeze(1).tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert extend_learned_rows(learned, 10, "tile-trained").squeeze(1).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]


def test_retrieval_metrics_on_a_hand_checked_case():
    import numpy as np

    from roberta2longformer.train.queries import Query
    from roberta2longformer.train.retrieval import by_place, metrics, rank

    documents = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    queries = [Query("a", 0, "start"), Query("b", 1, "end"), Query("c", 2, "end")]
    # query 0 is nearest document 0; query 1 is nearer document 2 than its own 1; query 2 nearest 2
    ranks = rank(documents, np.array([[1.0, 0.1], [0.6, 0.8], [0.7, 0.7]]), queries)
    assert ranks.tolist() == [1, 2, 1]
    assert metrics(ranks) == {"recall@1": 2 / 3, "recall@10": 1.0, "mrr": (1 + 0.5 + 1) / 3, "queries": 3}
    places = by_place(ranks, queries, [True, False, None])
    assert places["end"]["recall@1"] == 0.5 and places["inside the window"]["recall@1"] == 1.0
    assert places["beyond the window"]["mrr"] == 0.5


def test_best_window_and_averaged_windows_on_a_hand_checked_case():
    import numpy as np

    from roberta2longformer.train.queries import Query
    from roberta2longformer.train.retrieval import chunk_scores, rank_scores

    # document 0 has windows [1, 0] and [0, 1]; document 1 one window [0.6, 0.8]
    windows, owners = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), [0, 0, 1]
    queries = [Query("a", 0), Query("b", 1)]
    embedded = np.array([[0.0, 1.0], [0.6, 0.8]])
    best = chunk_scores("max", windows, owners, embedded, 2)
    assert np.allclose(best, [[1.0, 0.8], [0.8, 1.0]])  # query a matches document 0's second window exactly
    averaged = chunk_scores("mean", windows, owners, embedded, 2)  # document 0 becomes [0.5, 0.5]
    assert np.allclose(averaged, [[0.5**0.5, 0.8], [1.4 / 2**0.5, 1.0]])
    assert rank_scores(best, queries).tolist() == [1, 1] and rank_scores(averaged, queries).tolist() == [2, 1]


def test_generated_queries_come_from_each_third():
    from roberta2longformer.train.queries import generated_queries

    text = " ".join(f"w{i}" for i in range(300))
    queries = generated_queries([text, "too short"], passage_words=10, seed=0)
    assert [q.place for q in queries] == ["start", "middle", "end"] and {q.document for q in queries} == {0}
    assert [q.word // 100 for q in queries] == [0, 1, 2] and all(len(q.text.split()) == 10 for q in queries)
    assert generated_queries([text], 10, 0)[1].text == queries[1].text  # seeded


def test_evaluate_embeddings_compares_models_side_by_side(sentence_model, tmp_path):
    long = tmp_path / "long"
    assert run("convert", sentence_model, long, *SMALL).exit_code == 0
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"d{i}.txt").write_text(" ".join(CORPUS[i::4][:8]) + f" document {i} " * 30)
    out = tmp_path / "r.json"
    result = run("evaluate-embeddings", sentence_model, long, "--data", docs, "--chunks", "mean",
                 "--chunks", "max", "--chunks", "late-max", "--chunk-tokens", "8", "--passage-words", "8",
                 "--json", out, "--plot", tmp_path / "r.png")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    modes = ["whole", "windows averaged", "best window", "best late chunk"]
    assert [(r["mode"], r["reads"]) for r in data["results"]] == [(m, 24) for m in modes] + [(m, 128) for m in modes]
    assert all({"start", "middle", "end"} <= set(r["by_place"]) for r in data["results"])
    assert all(0 <= r["overall"]["recall@1"] <= 1 for r in data["results"]) and (tmp_path / "r.png").exists()
    assert [r["attention"] for r in data["results"]] == ["transformers"] * 4 + ["roberta2longformer.fast"] * 4
    header = next(line for line in result.output.splitlines() if line.startswith("model"))
    queries = data["results"][0]["by_place"]["start"]["queries"]
    assert "reading" in header and f"start (n={queries})" in header and "beyond the window (n=" in header


@pytest.mark.parametrize(
    "setup, phrase",
    [
        ("empty", "holds no text"),
        ("unknown document", "which is not in --data"),
        ("not a sentence-transformers model", "not a sentence-transformers model"),
    ],
)
def test_evaluate_embeddings_refuses_bad_input(sentence_model, tmp_path, setup, phrase):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("" if setup == "empty" else " ".join(CORPUS[:10]))
    args = ["evaluate-embeddings", sentence_model, "--data", docs, "--passage-words", "4"]
    if setup == "unknown document":
        (tmp_path / "q.jsonl").write_text(json.dumps({"query": "fox", "document": "zzz"}) + "\n")
        args += ["--queries", tmp_path / "q.jsonl"]
    if setup == "not a sentence-transformers model":
        args[1] = tmp_path / "bert"  # the plain transformers directory the fixture started from
    result = run(*args)
    assert result.exit_code == 2 and phrase in result.output, result.output


def _documents(directory, count: int, offset: int = 0):
    directory.mkdir()
    for i in range(offset, offset + count):
        (directory / f"d{i}.txt").write_text(" ".join(CORPUS[i % len(CORPUS) :: 3][:10]) + f" topic{i} " * 20)
    return directory


@pytest.fixture
def embedding_run(sentence_model, tmp_path):
    """The tiny sentence-transformers model converted to 128 tokens (tile-trained over its 24), and documents."""
    long = tmp_path / "long"
    assert run("convert", sentence_model, long, *SMALL, "--position-init", "tile-trained").exit_code == 0
    return long, _documents(tmp_path / "train", 6), _documents(tmp_path / "eval", 3, offset=6)


def _finetune_embedding(model, train, evaluation, out, *extra):
    return run("finetune", model, "--task", "embedding", "--train", train, "--eval", evaluation, "-o", out,
               "--passage-words", "6", "--max-steps", "3", "--batch-size", "3", "--learning-rate", "1e-2", *extra)  # fmt: skip


def test_embedding_finetune_of_new_positions_keeps_short_inputs_exact(embedding_run, sentence_model, tmp_path):
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    long, train, evaluation = embedding_run
    out = tmp_path / "trained"
    result = _finetune_embedding(long, train, evaluation, out, "--only-positions-beyond", "24")
    assert result.exit_code == 0, result.output
    assert "training position rows beyond 24" in result.output and "eval before training: recall@1" in result.output
    before, after = load_file(long / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    key, kept = "embeddings.position_embeddings.weight", 1 + 24  # Longformer's positions start after pad id 0
    assert torch.equal(before[key][:kept], after[key][:kept]) and not torch.equal(before[key][kept:], after[key][kept:])
    assert all(torch.equal(before[k], after[k]) for k in before if k != key)
    short, trained = SentenceTransformer(str(sentence_model), device="cpu"), SentenceTransformer(str(out / "final"))
    short.max_seq_length = trained.max_seq_length = 17
    gap = (short.encode(CORPUS[:4], convert_to_tensor=True) - trained.encode(CORPUS[:4], convert_to_tensor=True)).abs()
    assert gap.max() <= 1e-4
    verified = run("verify", sentence_model, out / "final", "--json", tmp_path / "v.json")
    assert verified.exit_code == 0, verified.output
    report = json.loads((tmp_path / "v.json").read_text())
    names = [c["output"] for c in report["checks"] if c["max_abs_diff"] <= c["atol"]]
    assert any("kept by training only the rows beyond" in n for n in names)
    assert any(c["case"] == "sentence embeddings" for c in report["checks"]) and report["exact_length"] <= 24
    assert json.loads((out / "eval_results.json").read_text())["before_training"]["recall@1"] >= 0


def test_shifted_positions_train_far_rows_from_short_documents_and_keep_short_inputs_exact(
    embedding_run, sentence_model, tmp_path
):
    from safetensors.torch import load_file

    long, train, evaluation = embedding_run
    key, kept = "embeddings.position_embeddings.weight", 1 + 24
    moved = {}
    for shift in (False, True):
        out = tmp_path / f"trained-{shift}"
        extra = ["--shift-positions"] if shift else []
        result = _finetune_embedding(long, train, evaluation, out, "--only-positions-beyond", "24", "--max-length",
                                     "24", *extra)  # fmt: skip
        assert result.exit_code == 0, result.output
        before, after = load_file(long / "model.safetensors"), load_file(out / "final" / "model.safetensors")
        assert torch.equal(before[key][:kept], after[key][:kept])
        moved[shift] = [i for i in range(kept, before[key].shape[0]) if not torch.equal(before[key][i], after[key][i])]
    assert moved[False] == []  # documents read at 24 tokens never reach a row past 24 unshifted
    assert len(moved[True]) > 10 and max(moved[True]) > kept + 20  # shifted, they reach rows far past it
    assert "(position ids shifted: PoSE)" in result.output
    verified = run("verify", sentence_model, tmp_path / "trained-True" / "final")
    assert verified.exit_code == 0, verified.output


def test_shift_positions_needs_only_positions_beyond(embedding_run, tmp_path):
    long, train, evaluation = embedding_run
    result = _finetune_embedding(long, train, evaluation, tmp_path / "never", "--shift-positions")
    assert result.exit_code == 2 and "give --only-positions-beyond N" in result.output, result.output
    assert not (tmp_path / "never").exists()


def test_embedding_finetune_of_all_weights_is_no_longer_the_source(embedding_run, sentence_model, tmp_path):
    long, train, evaluation = embedding_run
    out = tmp_path / "trained"
    result = _finetune_embedding(long, train, evaluation, out)
    assert result.exit_code == 0, result.output
    assert "training all weights" in result.output
    assert (out / "final" / "modules.json").is_file() and (out / "final" / "README.md").is_file()
    card = (out / "final" / "README.md").read_text()
    training_text = (train / "d0.txt").read_text()
    assert "widget:" not in card and training_text[:40] not in card and len(card.splitlines()) < 120
    assert "was converted from" in card and "fine-tuned for embedding" in card and "=True`" not in card, card
    assert "library_name: sentence-transformers" in card and "base_model: someone/tiny-bert" in card
    assert "license: mit" in card and "Unknown" not in card
    assert run("verify", sentence_model, out / "final").exit_code == 1  # trained: it computes something else now


@pytest.mark.parametrize(
    "setup, phrase",
    [
        ("plain model", "not a sentence-transformers model"),
        ("no rows left", "leaves no rows to train"),
        ("shared documents", "in both --train and --eval"),
        ("baseline", "--chunks applies to --task classification or multi-label; it does not apply to --task embedding"),
        ("positions without embedding", "--only-positions-beyond applies to --task embedding"),
        ("one document", "contrastive training needs at least two"),
    ],
)
def test_embedding_finetune_refuses_bad_input(embedding_run, tmp_path, setup, phrase):
    long, train, evaluation = embedding_run
    extra: list = []
    if setup == "plain model":
        long = tmp_path / "bert"
    if setup == "no rows left":
        extra = ["--only-positions-beyond", "128"]
    if setup == "shared documents":
        evaluation = train
    if setup == "baseline":
        extra = ["--chunks", "mean"]
    if setup == "one document":
        train = _documents(tmp_path / "single", 1)
    out = tmp_path / "trained"
    if setup == "positions without embedding":
        result = run(
            "finetune", long, "--train", train, "--eval", evaluation, "-o", out, "--only-positions-beyond", "4"
        )
    else:
        result = _finetune_embedding(long, train, evaluation, out, *extra)
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert not out.exists() or not any(out.iterdir())


def test_one_call_runs_a_sentence_transformer_with_the_fast_backend(sentence_model, tmp_path):
    """fast.enable(SentenceTransformer) reaches the Longformer layers inside it; the embeddings stay the same."""
    from sentence_transformers import SentenceTransformer

    from roberta2longformer import fast

    long = tmp_path / "long"
    assert run("convert", sentence_model, long, *SMALL).exit_code == 0
    model = SentenceTransformer(str(long), device="cpu")
    text = " ".join(CORPUS) * 3
    before = model.encode([text, CORPUS[0]], convert_to_tensor=True)
    assert fast.enable(model) is model and fast.is_enabled(model[0].auto_model)
    after = model.encode([text, CORPUS[0]], convert_to_tensor=True)
    assert (before - after).abs().max() <= 1e-5


def test_the_embedder_reads_long_documents_with_bigbirds_own_attention_after_short_queries(sentence_model, tmp_path):
    from roberta2longformer.train.retrieval import Embedder

    long = tmp_path / "long"
    result = run("convert", sentence_model, long, "--to", "bigbird", "--max-length", "128", "--block-size", "4",
                 "--num-random-blocks", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    embedder = Embedder(str(long))
    used = []
    embedder.model[0].auto_model.encoder.layer[0].attention.register_forward_pre_hook(
        lambda module, args: used.append(type(module.self).__name__)
    )
    embedder.encode(CORPUS[:2], progress=False)  # short queries: full attention, as BigBird chooses
    embedder.encode([" ".join(CORPUS) * 3], progress=False)
    assert used == ["BigBirdSelfAttention", "BigBirdBlockSparseAttention"]
