"""The key-mapping engine: one-to-many renames, nothing dropped, shapes checked."""

import pytest
import torch
from torch import nn

from roberta2longformer import ConversionError
from roberta2longformer.core.keys import load_checked, rename, rename_keys


def test_one_key_can_feed_several_targets():
    rules = [rename(r"a\.(?P<p>q|k)", r"x.\g<p>", r"x.\g<p>_global"), rename(r"(?P<k>.+)", r"\g<k>")]
    tensor = torch.ones(2)
    out = rename_keys({"a.q": tensor, "b": tensor}, rules, what="test")
    assert set(out) == {"x.q", "x.q_global", "b"}


def test_first_matching_rule_wins():
    rules = [rename(r"pooler\.w", r"head.dense.w"), rename(r"(?P<k>.+)", r"base.\g<k>")]
    assert set(rename_keys({"pooler.w": torch.ones(1)}, rules, what="t")) == {"head.dense.w"}


def test_unmatched_keys_are_an_error_not_a_loss():
    with pytest.raises(ConversionError, match=r"1 source weight\(s\) have no place.*cls\.seq_relationship"):
        rename_keys({"cls.seq_relationship.weight": torch.ones(1)}, [rename(r"base\..+", "x")], what="source")


def test_collisions_are_an_error():
    rules = [rename(r".+", "same")]
    with pytest.raises(ConversionError, match="map onto 'same'"):
        rename_keys({"a": torch.ones(1), "b": torch.ones(1)}, rules, what="source")


def test_load_checked_names_missing_unexpected_and_misshaped_keys():
    model = nn.Linear(3, 2)
    with pytest.raises(ConversionError, match=r"missing \['bias'\]; unexpected \['extra'\]"):
        load_checked(model, {"weight": torch.zeros(2, 3), "extra": torch.zeros(1)})
    with pytest.raises(ConversionError, match=r"wrong shape \['weight: \(3, 3\) vs \(2, 3\)'\]"):
        load_checked(model, {"weight": torch.zeros(3, 3), "bias": torch.zeros(2)})
    load_checked(model, {"weight": torch.ones(2, 3), "bias": torch.ones(2)})
    assert model.weight.sum().item() == 6
