"""Where the DVC stages write, as named in ``dvc.yaml``: one place for the CLI and the service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

QUANTIZED_ENCODER = "query_encoder.tflite"  # under models/search/query_model: MiniLM with int8 weights, for queries
POPULARITY = "popularity.npy"  # under models/search/lexical: weighted training interactions per item (search's prior)
TITLE_INDEX = "titles.npz"  # ... which items' titles have each word
DEFINING_WORDS = "defining.json"  # ... title words that say what a product is


@dataclass(frozen=True)
class Artifacts:
    root: Path = Path(".")

    @property
    def items(self) -> Path:
        return self.root / "data/clean/items.parquet"

    @property
    def split(self) -> Path:
        return self.root / "data/split"

    @property
    def text_embeddings(self) -> Path:
        return self.root / "data/features/item_text_embeddings.parquet"

    @property
    def retrieval(self) -> Path:
        return self.root / "models/retrieval"

    @property
    def ranking(self) -> Path:
        return self.root / "models/ranking"

    @property
    def reports(self) -> Path:
        return self.root / "reports"
