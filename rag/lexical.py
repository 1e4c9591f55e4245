"""BM25 over each passage analysed by its own language pack (bm25s does the scoring and the on-disk
format), and BM25 over
sub-words: character n-grams of the words, which still match where whole words do not.

k1 = 0.5 (bm25s and Lucene default to 1.2-1.5): a chunk or a short FAQ answer that holds more of
the question's distinct terms should beat one that repeats a single term, and with k1 = 1.2 the
repeats counted too much. Measured on four corpora with `benchmarks/cnil_retrieval.py` (none of them
better at 1.2: CNIL FAQ, SQuAD English articles, the seeds, realdocs); 0.3 to 0.7 gave the same
figures within a question or two."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag.text import Lang, analyze, pack_of, words

K1 = 0.5
B = 0.75
SUBWORD_CHARS = 4  # 3 matched too loosely, 5 as well as 4 (see the benchmark)


class LexicalIndex:
    def __init__(self, model):
        self._model = model

    @classmethod
    def build(cls, texts: list[str], languages: list[str], k1: float = K1, b: float = B,
              analyzer: Callable[[str, str], list[str]] = analyze) -> "LexicalIndex":
        """BM25 over `analyzer`'s terms of each text in its language: `analyze` (stemmed words)
        or `subwords`."""
        import bm25s

        model = bm25s.BM25(k1=k1, b=b)
        model.index([analyzer(t, lang) or [""] for t, lang in zip(texts, languages)], show_progress=False)
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


def subwords(text: str, lang: Lang, n: int = SUBWORD_CHARS) -> list[str]:
    """Character n-grams of the folded words that are not stop words, '_' marking where a word
    starts and ends; a word shorter than n - 1 letters stays whole. They match what whole-word
    terms miss: words glued by a lost space ('lesempreintes'), forms the stemmer cuts differently
    ('remaining', 'remained'), and parts of compounds ('vidéosurveillance').

    >>> subwords("Les empreintes", "fr")
    ['_emp', 'empr', 'mpre', 'prei', 'rein', 'eint', 'inte', 'ntes', 'tes_']
    >>> set(subwords("lesempreintes", "fr")) > {'empr', 'mpre', 'prei', 'rein', 'eint', 'inte', 'ntes', 'tes_'}
    True
    >>> subwords("le R1 de l'IA", "fr")
    ['_r1_', '_ia_']
    """
    stop = pack_of(lang).stopwords
    grams: list[str] = []
    for word in words(text, lang):
        if word in stop:
            continue
        marked = f"_{word}_"
        grams.extend(marked[i : i + n] for i in range(max(1, len(marked) - n + 1)))
    return grams


def subword_weights(question: str, lang: Lang) -> dict[str, float]:
    """A question's sub-words as BM25 query terms, each weighing the number of times it occurs.

    >>> subword_weights("papa", "fr")
    {'_pap': 1.0, 'papa': 1.0, 'apa_': 1.0}
    """
    return {gram: float(count) for gram, count in Counter(subwords(question, lang)).items()}
