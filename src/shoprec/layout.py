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


@dataclass(frozen=True)
class SplitFiles:
    """Written by ``split``: the temporal split and its summary (cut-off dates, row counts)."""

    folder: Path

    @property
    def train(self) -> Path:
        return self.folder / "train.parquet"

    @property
    def valid(self) -> Path:
        return self.folder / "valid.parquet"

    @property
    def test(self) -> Path:
        return self.folder / "test.parquet"

    @property
    def test_truth(self) -> Path:
        return self.folder / "test_truth.parquet"

    @property
    def summary(self) -> Path:
        return self.folder / "split.json"


@dataclass(frozen=True)
class RetrievalFiles:
    """Written by ``train_retrieval``: two two-towers (``replay`` fitted before the validation
    window, ``final`` on all of train), each as stored user/item vectors, plus the export."""

    folder: Path

    def embeddings(self, phase: str) -> Path:
        """User query vectors as of the phase's cut-off, the cold-start vector and item vectors."""
        return self.folder / phase / "embeddings.npz"

    @property
    def item_embeddings(self) -> Path:
        """The final model's candidate vectors, ``item_id, embedding`` Parquet (vector indexes read it)."""
        return self.folder / "item_embeddings.parquet"

    @property
    def losses(self) -> Path:
        return self.folder / "losses.csv"

    @property
    def saved_model(self) -> Path:
        return self.folder / "saved_model"


@dataclass(frozen=True)
class RankingFiles:
    """Written by ``train_ranking``: the DCN ranker's weights, its config and the export."""

    folder: Path

    @property
    def weights(self) -> Path:
        """A checkpoint prefix (Keras writes ``weights.index`` and ``weights.data-*``)."""
        return self.folder / "weights"

    @property
    def config(self) -> Path:
        return self.folder / "config.json"

    @property
    def losses(self) -> Path:
        return self.folder / "losses.csv"

    @property
    def saved_model(self) -> Path:
        return self.folder / "saved_model"


@dataclass(frozen=True)
class LexicalFiles:
    """Written by ``build_lexical_index``: what search knows about words."""

    folder: Path

    @property
    def bm25(self) -> Path:
        return self.folder / "bm25"

    @property
    def vocabulary(self) -> Path:
        """The speller's known words and their counts."""
        return self.folder / "vocabulary.json"

    @property
    def expansion(self) -> Path:
        """Query word -> catalog word translations learned from the click logs."""
        return self.folder / "expansion.json"

    @property
    def popularity(self) -> Path:
        """Weighted training interactions per item (the hybrid order's prior)."""
        return self.folder / "popularity.npy"

    @property
    def titles(self) -> Path:
        """Which items' titles have each word."""
        return self.folder / "titles.npz"

    @property
    def defining(self) -> Path:
        """Title words that say what a product is (shoppers name them), from the click logs."""
        return self.folder / "defining.json"


@dataclass(frozen=True)
class QueryModelFiles:
    """Written by ``train_query_model``: the semantic leg of search."""

    folder: Path

    @property
    def semantic(self) -> Path:
        """Item vectors, and the query projection when one was trained."""
        return self.folder / "semantic.npz"

    @property
    def intent(self) -> Path:
        """The category intent classifier (only when trained)."""
        return self.folder / "intent.npz"

    @property
    def quantized_encoder(self) -> Path:
        """MiniLM with int8 weights, for one query at a time (serving)."""
        return self.folder / "query_encoder.tflite"

    @property
    def saved_model(self) -> Path:
        """Raw query strings -> top-K item ids and scores."""
        return self.folder / "saved_model"

    @property
    def summary(self) -> Path:
        return self.folder / "summary.json"

    @property
    def losses(self) -> Path:
        return self.folder / "losses.csv"


@dataclass(frozen=True)
class ReportFiles:
    """Written by ``evaluate``, ``evaluate_search`` and ``gate``."""

    folder: Path

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.json"

    @property
    def recommendations(self) -> Path:
        return self.folder / "recommendations.parquet"

    @property
    def recall_curves(self) -> Path:
        return self.folder / "recall_curves.csv"

    @property
    def recall_plot(self) -> Path:
        return self.folder / "recall_curves.png"

    @property
    def search_metrics(self) -> Path:
        return self.folder / "search_metrics.json"

    @property
    def search_table(self) -> Path:
        return self.folder / "search_metrics.md"

    @property
    def gate(self) -> Path:
        return self.folder / "gate.json"

    @property
    def search_gate(self) -> Path:
        return self.folder / "search_gate.json"

    @property
    def headline(self) -> Path:
        """The small file ``dvc metrics show`` and ``dvc metrics diff`` read."""
        return self.folder / "headline.json"


@dataclass(frozen=True)
class BundleFiles:
    """Written by ``package``: the serving bundle. What it copies from the repository keeps the
    repository's layout (:attr:`layout`); what only serving needs is precomputed under ``serving/``."""

    folder: Path

    @property
    def layout(self) -> "Layout":
        return Layout(self.folder)

    @property
    def manifest(self) -> Path:
        """Version, data hash and the sha256 of every file."""
        return self.folder / "manifest.json"

    @property
    def params(self) -> Path:
        """The params the models were trained with, which the service reads."""
        return self.folder / "params.yaml"

    @property
    def lists(self) -> Path:
        """Top lists of every known user and of a new visitor, both views."""
        return self.folder / "serving/recommendations.parquet"

    @property
    def history(self) -> Path:
        """Each user's purchases (count, last time)."""
        return self.folder / "serving/history.parquet"

    @property
    def together(self) -> Path:
        """Co-purchase neighbours of every item."""
        return self.folder / "serving/together.parquet"

    @property
    def item_index(self) -> Path:
        """HNSW index of the item embeddings (large catalogs only)."""
        return self.folder / "serving/items.faiss"

    @property
    def semantic_index(self) -> Path:
        """HNSW index of the semantic search vectors (large catalogs only)."""
        return self.folder / "serving/semantic.faiss"

    def name(self, path: Path) -> str:
        """``path`` as the manifest lists it (relative to the bundle)."""
        return str(path.relative_to(self.folder))


@dataclass(frozen=True)
class Layout:
    """The artifacts under ``root``: a repository after ``dvc repro``, or a serving bundle."""

    root: Path = Path(".")

    @property
    def raw(self) -> Path:
        return self.root / "data/raw"

    @property
    def clean(self) -> Path:
        return self.root / "data/clean"

    @property
    def items(self) -> Path:
        return self.clean / "items.parquet"

    @property
    def events(self) -> Path:
        return self.clean / "events.parquet"

    @property
    def query_labels(self) -> Path:
        return self.clean / "query_labels.parquet"

    @property
    def validation_report(self) -> Path:
        return self.clean / "validation.json"

    @property
    def split(self) -> SplitFiles:
        return SplitFiles(self.root / "data/split")

    @property
    def text_embeddings(self) -> Path:
        return self.root / "data/features/item_text_embeddings.parquet"

    @property
    def retrieval(self) -> RetrievalFiles:
        return RetrievalFiles(self.root / "models/retrieval")

    @property
    def ranking(self) -> RankingFiles:
        return RankingFiles(self.root / "models/ranking")

    @property
    def lexical(self) -> LexicalFiles:
        return LexicalFiles(self.root / "models/search/lexical")

    @property
    def query_model(self) -> QueryModelFiles:
        return QueryModelFiles(self.root / "models/search/query_model")

    @property
    def reports(self) -> ReportFiles:
        return ReportFiles(self.root / "reports")

    @property
    def bundle(self) -> BundleFiles:
        return BundleFiles(self.root / "models/serving/bundle")

    @property
    def run_details(self) -> Path:
        """Untracked: what differs from run to run (timings, tags, commits), never a DVC output."""
        return self.root / "var"

    @property
    def package_record(self) -> Path:
        """The last package stage's model tag, bento tag and git commit (a run detail)."""
        return self.run_details / "package.json"
