"""Fine-tuning MiniLM (stage finetune_text): the pairs it learns from, what it changes, and what it leaves alone.

A tiny setting (a few dozen pairs, short texts, one trainable layer) so that two
fine-tunings, a save and an int8 export run in well under a minute on CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shoprec  # noqa: F401
import tensorflow as tf

from shoprec.config import Params, ParamsError, load_params
from shoprec.layout import TextModelFiles
from shoprec.models.training import distribution, set_seeds
from shoprec.stages.finetune_text import export_query_encoder
from shoprec.text import MiniLMEncoder
from shoprec.text.finetune import FineTuned, fine_tune
from shoprec.text.pairs import mine_pairs
from shoprec.text.quantized import QuantizedEncoder
from shoprec.text.weights import REQUIRED_FILES, package_model_dir, read_weights

COLOURS = ["red", "blue", "green", "pink", "black", "white", "yellow", "grey"]
PRODUCTS = [("mug", "ceramic coffee cup"), ("lamp", "bedside light"), ("bag", "tote for shopping"),
            ("candle", "scented wax light"), ("clock", "wall timepiece"), ("cushion", "sofa pillow")]
# shopper's words -> catalog wording: the kind of pairs the query logs give
PAIRS = pd.DataFrame([(f"{c} {alt}", f"{c} {p}") for c in COLOURS for p, alt in PRODUCTS], columns=["anchor", "positive"])
TINY = {"max_length": 16, "finetune_layers": 1, "finetune_epochs": 3, "finetune_patience": 3,
        "finetune_batch_size": 8, "finetune_learning_rate": 3e-4, "finetune_holdout": 0.2, "finetune_warmup": 0.1}


def _tune() -> FineTuned:
    set_seeds(7)
    return fine_tune(PAIRS, Params().text.model_copy(update=TINY), distribution(), seed=7)


@pytest.fixture(scope="module")
def tuned() -> FineTuned:
    return _tune()


def _state(encoder: MiniLMEncoder) -> dict[str, np.ndarray]:
    state = encoder.embeddings.state()
    for i, block in enumerate(encoder.blocks):
        state |= block.state(f"encoder.layer.{i}")
    return state


def test_fine_tuning_lowers_the_loss_and_moves_only_the_top_layer(tuned: FineTuned) -> None:
    assert len(tuned.losses) == len(tuned.held_out) == 3 and 1 <= tuned.best_epoch <= 3
    assert tuned.losses[-1] < tuned.losses[0]
    assert min(tuned.held_out) == tuned.held_out[tuned.best_epoch - 1]
    pretrained, state = read_weights(package_model_dir()), _state(tuned.encoder)
    moved = {name for name, value in state.items() if not np.array_equal(value, pretrained[name])}
    assert moved and all(name.startswith("encoder.layer.5.") for name in moved)
    assert {n for n in state if n.startswith("encoder.layer.5.") and n.endswith(".weight") and "LayerNorm" not in n} <= moved


def test_the_same_seed_gives_the_same_weights(tuned: FineTuned) -> None:
    again = _tune()
    assert again.losses == tuned.losses
    first, second = _state(tuned.encoder), _state(again.encoder)
    assert all(np.array_equal(first[name], second[name]) for name in first)


def test_saved_model_dir_and_its_int8_export_give_the_fine_tuned_vectors(tuned: FineTuned, tmp_path: Path) -> None:
    """The stage's export reads the saved folder, so what it quantises is the fine-tuned model."""
    folder = tuned.encoder.save_model_dir(tmp_path / "text_encoder")
    texts = tf.constant(list(PAIRS["anchor"][:6]) + ["x", "lunch bag under 20"])
    float_vectors = tuned.encoder.embed(texts).numpy()
    reloaded = MiniLMEncoder(folder, max_length=16)
    np.testing.assert_array_equal(reloaded.embed(texts).numpy(), float_vectors)
    int8 = QuantizedEncoder(export_query_encoder(TextModelFiles(folder), 16), folder, 16, threads=1)
    quantised = np.concatenate([int8.embed(texts[i : i + 1]) for i in range(len(texts))])
    cosine = (quantised * float_vectors).sum(axis=1)
    assert cosine.min() >= 0.99
    pretrained_encoder = MiniLMEncoder(max_length=16)  # held: embed is a method traced on a weak reference
    pretrained = pretrained_encoder.embed(texts).numpy()
    # the export follows the fine-tuned model, not the pretrained one it started from
    assert (quantised * pretrained).sum(axis=1).min() < cosine.min()


def test_finetune_layers_zero_copies_the_pretrained_files_unchanged(pretrained_text_model: Path) -> None:
    out = pretrained_text_model
    for name in REQUIRED_FILES:
        assert (out / name).read_bytes() == (package_model_dir() / name).read_bytes()
    assert pd.read_csv(out / "losses.csv").empty
    assert TextModelFiles(out).quantized_encoder.is_file()  # its vectors: tests/unit/test_text_encoder.py (int8_file)


def test_finetune_layers_accepts_a_count_or_all_and_names_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    for value in ("all", 2):
        path.write_text(f"text: {{finetune_layers: {value}}}\n")
        assert load_params(path).text.finetune_layers == value
    for value in (-1, "some"):
        path.write_text(f"text: {{finetune_layers: {value}}}\n")
        with pytest.raises(ParamsError, match="text.finetune_layers"):
            load_params(path)
    with pytest.raises(ValueError, match="'all' or in 0..6"):
        MiniLMEncoder(trainable_layers=7)


def test_pairs_come_from_before_the_cut_only_and_share_the_budget() -> None:
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "title": ["red mug", "blue lamp", "tote bag", "owl clock"],
                          "description": ["", "for the desk", "", ""], "category": ["kitchen", "home", "", "home"],
                          "brand": ["", "", "acme", ""], "price": [1.0, 2.0, 3.0, 4.0]})
    t = pd.Timestamp("2024-03-01", tz="UTC")
    day = pd.Timedelta(days=1)
    events = pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u2", "u3"],
        "item_id": ["a", "b", "c", "d", "a", "c"],
        "event_type": ["click", "purchase", "purchase", "click", "purchase", "purchase"],
        "timestamp": [t - 3 * day, t - 2 * day, t - 2 * day, t + day, t + day, t + day],
        "session_id": ["s1", "s2", "s2", "s3", "s3", "s4"],
        "query": ["coffee cup", "", "", "wise bird", "", ""],
        "quantity": 1,
    })
    weights = {"view": 0.0, "click": 0.3, "add_to_cart": 0.6, "purchase": 1.0}
    pairs = mine_pairs(events, items, t, weights, max_pairs=100, seed=0)
    by_kind = {k: list(zip(g["anchor"], g["positive"])) for k, g in pairs.groupby("kind")}
    assert by_kind["query"] == [("coffee cup", "red mug. kitchen")]  # "wise bird" was searched after the cut
    assert by_kind["basket"] == [("blue lamp. home. for the desk", "tote bag. acme")]  # s3's basket is after it
    assert sorted(by_kind["title"]) == [("blue lamp", "home. for the desk"), ("owl clock", "home"),
                                        ("red mug", "kitchen"), ("tote bag", "acme")]
    capped = mine_pairs(events, items, t, weights, max_pairs=4, seed=0)
    assert capped["kind"].value_counts().to_dict() == {"query": 1, "basket": 1, "title": 2}  # the rest goes on
