"""The search indexes: words (BM25, titles) and vectors (semantic, exact or HNSW)."""
