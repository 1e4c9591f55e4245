"""BM25 over each passage analysed by its own language pack (bm25s does the scoring and the on-disk
format)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rag.text import analyze


class LexicalIndex:
    def __init__(self, model):
        self._model = model

    @classmethod
    def build(cls, texts: list[str], languages: list[str], k1: float = 1.2, b: float = 0.75) -> "LexicalIndex":
        import bm25s

        model = bm25s.BM25(k1=k1, b=b)
        model.index([analyze(t, lang) or [""] for t, lang in zip(texts, languages)], show_progress=False)
        return cls(model)

    def save(self, folder: Path) -> None:
        self._model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        import bm25s

        return cls(bm25s.BM25.load(str(folder), show_progress=False))

    @property
    def vocabulary(self) -> dict[str, int]:
        return self._model.vocab_dict

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    def idf(self, term: str) -> float:
        """Inverse document frequency; a term absent from the corpus gets the highest value."""
        column = self._model.vocab_dict.get(term)
        indptr = self._model.scores["indptr"]
        df = 0 if column is None else int(indptr[column + 1] - indptr[column])
        return idf_weight(df, self.size)

    def scores(self, weights: dict[str, float]) -> np.ndarray:
        """BM25 score of every chunk for weighted query terms: sum of weight x term score.
        bm25s stores per-term scores column-wise, so each term costs one slice."""
        scores_matrix = self._model.scores
        data, indices, indptr = scores_matrix["data"], scores_matrix["indices"], scores_matrix["indptr"]
        total = np.zeros(scores_matrix["num_docs"], dtype=np.float32)
        vocab = self._model.vocab_dict
        for term, weight in weights.items():
            column = vocab.get(term)
            if column is None:
                continue
            a, b = indptr[column], indptr[column + 1]
            total[indices[a:b]] += weight * data[a:b]
        return total


def idf_weight(df: int, n: int) -> float:
    """BM25's idf, floored at a small positive value so very common terms still count a little."""
    return max(0.05, math.log(1 + (n - df + 0.5) / (df + 0.5)))
