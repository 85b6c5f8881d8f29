"""Where every artifact lives: the repository's layout, written once.

A stage takes its input and output folders as arguments and finds the files inside them
through the classes here; the loaders, the serving bundle (which mirrors this layout
under its own root), the orchestration and the benchmarks use the same names.
``dvc.yaml`` spells the stage folders out on each command line; a test checks that they
are the ones :class:`Layout` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def _file(name: str, doc: str | None = None, kind: type | None = None) -> property:
    """A path inside the object's ``folder``, as a read-only attribute (wrapped in ``kind`` if given)."""
    if kind is None:
        return property(lambda self: self.folder / name, doc=doc)
    return property(lambda self: kind(self.folder / name), doc=doc)


@dataclass(frozen=True)
class SplitFiles:
    """Written by ``split``: the temporal split and its summary (cut-off dates, row counts)."""

    folder: Path

    train = _file("train.parquet")
    valid = _file("valid.parquet")
    test = _file("test.parquet")
    test_truth = _file("test_truth.parquet")
    summary = _file("split.json")


@dataclass(frozen=True)
class TextModelFiles:
    """Written by ``finetune_text``: the MiniLM every later stage embeds with, as a model directory
    (``model.safetensors``, vocabulary, configs): fine-tuned, or the pretrained one copied unchanged;
    and its int8 export, which depends on nothing else (so DVC's run-cache restores it with the weights)."""

    folder: Path

    losses = _file("losses.csv", "Training and held-out loss per epoch (empty when not fine-tuned).")
    summary = _file("summary.json", "Pairs mined per kind, epochs run, the epoch kept.")
    quantized_encoder = _file("query_encoder.tflite",
                              "This MiniLM with int8 weights, for one query at a time (search, the intents).")


@dataclass(frozen=True)
class RetrievalFiles:
    """Written by ``train_retrieval``: two two-towers (``replay`` fitted before the validation
    window, ``final`` on all of train), each as stored user/item vectors, plus the export."""

    folder: Path

    def embeddings(self, phase: str) -> Path:
        """User query vectors as of the phase's cut-off, the cold-start vector and item vectors."""
        return self.folder / phase / "embeddings.npz"

    def query_tower(self, phase: str) -> Path:
        """The phase's query tower as arrays (:class:`~shoprec.models.query_tower.QueryTowerWeights`)."""
        return self.folder / phase / "query_tower.npz"

    item_embeddings = _file("item_embeddings.parquet",
                            "The final model's candidate vectors (vector indexes read them).")
    losses = _file("losses.csv")
    saved_model = _file("saved_model")


@dataclass(frozen=True)
class RankingFiles:
    """Written by ``train_ranking``: the DCN ranker's weights, its config and the export."""

    folder: Path

    weights = _file("weights", "A checkpoint prefix (Keras writes ``weights.index`` and ``weights.data-*``).")
    config = _file("config.json")
    losses = _file("losses.csv")
    saved_model = _file("saved_model")


@dataclass(frozen=True)
class LexicalFiles:
    """Written by ``build_lexical_index``: what search knows about words."""

    folder: Path

    bm25 = _file("bm25")
    vocabulary = _file("vocabulary.json", "The speller's known words and their counts.")
    expansion = _file("expansion.json", "Query word -> catalog word translations learned from the click logs.")
    popularity = _file("popularity.npy", "Weighted training interactions per item (the hybrid order's prior).")
    titles = _file("titles.npz", "Which items' titles have each word.")
    defining = _file("defining.json",
                     "Title words that say what a product is (shoppers name them), from the click logs.")


@dataclass(frozen=True)
class QueryModelFiles:
    """Written by ``train_query_model``: the semantic leg of search."""

    folder: Path

    semantic = _file("semantic.npz", "Item vectors, and the query projection when one was trained.")
    intent = _file("intent.npz", "The category intent classifier (only when trained).")
    saved_model = _file("saved_model", "Raw query strings -> top-K item ids and scores.")
    summary = _file("summary.json")
    losses = _file("losses.csv")


@dataclass(frozen=True)
class IntentFiles:
    """Written by ``train_intents``: the help centre's intent classifier and the answers it gives."""

    folder: Path

    classifier = _file("classifier.npz", "Softmax regression on the query's MiniLM vector (only when trained).")
    answers = _file("answers.json", "Intent id -> answer template and the shopper fields it needs.")
    summary = _file("summary.json", "Examples per class, or why no classifier was trained.")


@dataclass(frozen=True)
class ReportFiles:
    """Written by ``evaluate``, ``evaluate_search`` and ``gate``."""

    folder: Path

    metrics = _file("metrics.json")
    recommendations = _file("recommendations.parquet")
    recall_curves = _file("recall_curves.csv")
    recall_plot = _file("recall_curves.png")
    search_metrics = _file("search_metrics.json")
    search_table = _file("search_metrics.md")
    search_lists = _file("search_lists.parquet", "Each search system's ranked list per labelled query.")
    intent_metrics = _file("intent_metrics.json", "The intent classifier on held-out phrasings and product queries.")
    tuning = _file("tuning.csv", "shoprec tune's trials: overrides and validation-window metrics, best first.")
    gate = _file("gate.json")
    search_gate = _file("search_gate.json")
    headline = _file("headline.json", "The small file ``dvc metrics show`` and ``dvc metrics diff`` read.")


@dataclass(frozen=True)
class BundleFiles:
    """Written by ``package``: the serving bundle. What it copies from the repository keeps the
    repository's layout (:attr:`layout`); what only serving needs is precomputed under ``serving/``."""

    folder: Path

    @property
    def layout(self) -> "Layout":
        return Layout(self.folder)

    manifest = _file("manifest.json", "Version, data hash and the sha256 of every file.")
    params = _file("params.yaml", "The params the models were trained with, which the service reads.")
    lists = _file("serving/recommendations.parquet",
                  "Top lists of every known user and of a new visitor, both views.")
    history = _file("serving/history.parquet", "Each user's purchases (count, last time).")
    together = _file("serving/together.parquet", "Co-purchase neighbours of every item.")
    item_index = _file("serving/items.faiss", "HNSW index of the item embeddings (large catalogs only).")
    semantic_index = _file("serving/semantic.faiss",
                           "HNSW index of the semantic search vectors (large catalogs only).")
    text_model = _file("models/text_encoder", "The finetune_text stage's MiniLM (the repository's path): its tokenizer "
                                              "files, and its float weights with search.query_encoder: float.")
    text_vocab = _file("models/text_encoder/vocab.txt", "The WordPiece vocabulary in text_model, which every bundle has.")

    def name(self, path: Path) -> str:
        """``path`` as the manifest lists it (relative to the bundle)."""
        return str(path.relative_to(self.folder))


@dataclass(frozen=True)
class Layout:
    """The artifacts under ``root``: a repository after ``dvc repro``, or a serving bundle."""

    root: Path = Path(".")

    @property
    def folder(self) -> Path:
        return self.root

    raw = _file("data/raw")
    clean = _file("data/clean")
    items = _file("data/clean/items.parquet")
    events = _file("data/clean/events.parquet")
    query_labels = _file("data/clean/query_labels.parquet")
    service_intents = _file("data/clean/service_intents.parquet")
    service_phrasings = _file("data/clean/service_phrasings.parquet")
    validation_report = _file("data/clean/validation.json")
    split = _file("data/split", kind=SplitFiles)
    text_model = _file("models/text_encoder", kind=TextModelFiles)
    text_embeddings = _file("data/features/item_text_embeddings.parquet")
    retrieval = _file("models/retrieval", kind=RetrievalFiles)
    ranking = _file("models/ranking", kind=RankingFiles)
    lexical = _file("models/search/lexical", kind=LexicalFiles)
    query_model = _file("models/search/query_model", kind=QueryModelFiles)
    intents = _file("models/intents", kind=IntentFiles)
    reports = _file("reports", kind=ReportFiles)
    bundle = _file("models/serving/bundle", kind=BundleFiles)

    @property
    def run_details(self) -> Path:
        """Untracked: what differs from run to run (timings, tags, commits), never a DVC output."""
        return self.root / "var"

    @property
    def package_record(self) -> Path:
        """The last package stage's model tag, bento tag and git commit (a run detail)."""
        return self.run_details / "package.json"

    @property
    def systems(self) -> Path:
        """Baselines packaged as servable models (``shoprec package --system NAME``): bundle ``NAME/``
        and record ``NAME.json`` each; untracked, the model store keeps what a server loads."""
        return self.run_details / "systems"
