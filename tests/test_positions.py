"""Position tables with hand-built tensors: offsets, extension modes, shrinking."""

import pytest
import torch

from roberta2longformer import ConversionError, extend_learned_rows, rebuild_position_table


def numbered(rows: int, width: int = 3) -> torch.Tensor:
    return torch.arange(rows, dtype=torch.float32).unsqueeze(1).repeat(1, width)


def test_tile_repeats_the_learned_rows():
    out = extend_learned_rows(numbered(4), 10, "tile")
    assert out[:, 0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_interpolate_keeps_source_rows_and_stretches_one_copy_over_the_rest():
    out = extend_learned_rows(numbered(4), 11, "interpolate")
    assert out[:4, 0].tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(out[4:, 0], torch.linspace(0, 3, 7))


def test_random_keeps_source_rows_and_draws_the_rest():
    generator = torch.Generator().manual_seed(0)
    out = extend_learned_rows(numbered(4) + 100, 2000, "random", std=0.5, generator=generator)
    torch.testing.assert_close(out[:4], numbered(4) + 100)
    assert abs(out[4:].std().item() - 0.5) < 0.05 and abs(out[4:].mean().item()) < 0.05


def test_random_all_is_the_papers_ablation_and_breaks_equivalence(bpe_tokenizer):
    generator = torch.Generator().manual_seed(0)
    out = extend_learned_rows(numbered(4) + 100, 2000, "random-all", std=0.5, generator=generator)
    assert out.shape == (2000, 3) and abs(out.std().item() - 0.5) < 0.05 and out[:4].abs().max() < 5
    from helpers import make_source
    from roberta2longformer import ToleranceError, convert, verify

    source = make_source("roberta", "masked_lm")
    model = convert(source, bpe_tokenizer, max_length=64, attention_window=64, position_init="random-all").model
    with pytest.raises(ToleranceError):
        verify(source, model, bpe_tokenizer, smoke=False)


def test_shrinking_keeps_the_first_rows():
    assert extend_learned_rows(numbered(8), 3, "interpolate")[:, 0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("init", ["tile", "interpolate", "random", "random-all"])
def test_dtype_is_kept(init):
    out = extend_learned_rows(numbered(4).to(torch.bfloat16), 9, init)
    assert out.dtype == torch.bfloat16


def test_roberta_offset_rows_stay_where_they_are():
    table = numbered(6)  # rows 0-1: offset (row 1 = padding), rows 2-5: learned
    out = rebuild_position_table(table, source_offset=2, target_offset=2, max_length=8, init="tile")
    assert out[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 2, 3, 4, 5]


def test_bert_rows_move_behind_a_zero_padding_row():
    out = rebuild_position_table(numbered(4) + 1, source_offset=0, target_offset=1, max_length=6, init="tile")
    assert out[:, 0].tolist() == [0, 1, 2, 3, 4, 1, 2]


def test_offset_rows_are_dropped_for_a_target_without_offset():
    out = rebuild_position_table(numbered(6), source_offset=2, target_offset=0, max_length=5, init="tile")
    assert out[:, 0].tolist() == [2, 3, 4, 5, 2]


def test_bad_inputs_are_refused():
    with pytest.raises(ConversionError, match="choose one of tile, tile-trained, interpolate, random"):
        extend_learned_rows(numbered(4), 8, "copy")
    with pytest.raises(ConversionError, match="positive length"):
        extend_learned_rows(numbered(4), 0)
    with pytest.raises(ConversionError, match="none of them learned"):
        rebuild_position_table(numbered(2), source_offset=2, target_offset=2, max_length=4)
