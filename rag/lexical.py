"""BM25 over each passage analysed by its own language pack, and BM25 over sub-words: character
n-grams of the words, which still match where whole words do not. bm25s builds both indexes and
scores them: its "lucene" variant, held in memory as its own sparse matrix (one float32 column of
chunk scores per term), which `scores` reads column by column.

k1 = 0.5 (bm25s and Lucene default to 1.2-1.5): a chunk or a short FAQ answer that holds more of
the question's distinct terms should beat one that repeats a single term, and with k1 = 1.2 the
repeats counted too much. Measured on four corpora with `benchmarks/cnil_retrieval.py` (none of them
better at 1.2: CNIL FAQ, SQuAD English articles, the seeds, realdocs); 0.3 to 0.7 gave the same
figures within a question or two.

Only the file the model is saved in is ours (bm25.npz, compressed): bm25s's `save` writes its
matrix as it holds it (float32 scores, int32 chunk numbers, int64 column pointers, a JSON
vocabulary), 3.5 to 4.9 times the text for the sub-word index of the devsets. bm25.npz holds the
same matrix, columns in term order: each chunk number as the difference from the one before it
in its column and each column's length, in the smallest unsigned type that holds them, the scores
as SCORE_DTYPE (float16: the retrieval of the devsets did not move), the terms and bm25s's
parameters; 0.8 to 1.05 times the text for the sub-word index. `load` sets up the bm25s model as
`bm25s.BM25.load` does from bm25s's own files: nothing is scored again. Reading both indexes of
the CNIL FAQ takes 13-15 ms (4-5 ms from bm25s's files), 4.3 million postings 0.13 s."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from rag.text import Lang, analyze, pack_of, words

K1 = 0.5
B = 0.75
SUBWORD_CHARS = 4  # 3 matched too loosely, 5 as well as 4 (see the benchmark)
FILE = "bm25.npz"
SCORE_DTYPE = np.float16  # on disk (a relative error of 5e-4 at most); read back as bm25s's float32
# bm25s's constructor parameters, as its own params.index.json records them
PARAMS = ("k1", "b", "delta", "method", "idf_method", "dtype", "int_dtype", "backend")
SPELLING_MIN_LETTERS = 6  # shorter words are one letter away from too many others ('sin', 'sun', 'son')
SPELLING_LIMIT = 3  # corpus terms a misspelt word may stand for


class LexicalIndex:
    def __init__(self, model):
        """`model`: an indexed bm25s.BM25."""
        self._model = model
        self._terms: dict[int, list[str]] | None = None  # the vocabulary's words by length, for spelled_like()

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
        """The model's score matrix and vocabulary in one compressed file (see the module's docstring)."""
        import bm25s

        model = self._model
        if model.nonoccurrence_array is not None:
            raise ValueError(f"bm25.npz holds no non-occurrence scores (BM25 variant {model.method})")
        data, indices, indptr = self.data, self.indices, self.indptr
        columns = len(indptr) - 1
        vocab = model.vocab_dict
        if sorted(vocab.values()) != list(range(len(vocab))) or len(vocab) < columns:
            raise ValueError("the BM25 vocabulary does not number the columns of its matrix")
        # columns in term order (compresses better, and the same corpus gives the same file); a term
        # bm25s numbers past the matrix (the "" it adds to the vocabulary) stays after it
        inside = sorted(t for t, c in vocab.items() if c < columns)
        terms = inside + sorted((t for t, c in vocab.items() if c >= columns), key=vocab.get)
        order = np.array([vocab[t] for t in inside], dtype=np.int64)
        df = np.diff(indptr)[order]
        ends = np.cumsum(df)
        take = np.repeat(indptr[order] - (ends - df), df) + np.arange(len(indices), dtype=np.int64)
        rows = indices[take].astype(np.int64)
        gaps = rows.copy()
        gaps[1:] -= rows[:-1]
        firsts = (ends - df)[df > 0]
        gaps[firsts] = rows[firsts]  # each column's first chunk as it is
        with np.errstate(over="ignore"):
            scores = data[take].astype(SCORE_DTYPE)
        if not np.isfinite(scores).all():  # past float16's 65 504 (BM25 scores stay below 20)
            scores = data[take]
        params = {name: getattr(model, name) for name in PARAMS}
        params.update(num_docs=int(model.scores["num_docs"]), version=bm25s.__version__)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            folder / FILE,
            terms=_utf8(terms), params=_utf8(params),
            df=_smallest(df), gaps=_planes(_smallest(gaps)), scores=_planes(scores),
        )

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        """The bm25s model saved in `folder`, as `bm25s.BM25.load` sets one up; ValueError (or
        another exception) for a file that is not a sound bm25.npz."""
        import bm25s

        with np.load(folder / FILE, allow_pickle=False) as stored:
            terms, params = (json.loads(stored[name].tobytes().decode("utf-8")) for name in ("terms", "params"))
            df, gaps, scores = stored["df"], _unplanes(stored["gaps"], "u"), _unplanes(stored["scores"], "f")
        if df.ndim != 1 or df.dtype.kind != "u":
            raise ValueError("bm25.npz does not hold a BM25 matrix")
        if not (isinstance(terms, list) and all(isinstance(t, str) for t in terms) and isinstance(params, dict)):
            raise ValueError("bm25.npz does not hold a BM25 vocabulary")
        num_docs, version = params.pop("num_docs", None), params.pop("version", None)
        if not isinstance(num_docs, int) or num_docs < 0 or set(params) != set(PARAMS):
            raise ValueError("bm25.npz does not hold bm25s's parameters")
        if len(set(terms)) != len(terms) or len(terms) < len(df) \
                or not int(df.sum(dtype=np.int64)) == len(gaps) == len(scores):
            raise ValueError("BM25 terms and matrix differ in size")
        if not np.isfinite(scores).all():
            raise ValueError("the BM25 matrix holds scores that are not numbers")
        indptr = np.zeros(len(df) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        # chunk numbers again: running sums of the gaps, started afresh at each column
        rows = np.cumsum(gaps, dtype=np.int64)
        before = np.concatenate([[0], rows])[indptr[:-1]]
        rows -= np.repeat(before, df)
        if len(rows) and not 0 <= int(rows.min()) <= int(rows.max()) < num_docs:
            raise ValueError("the BM25 matrix names a chunk that is not there")
        # as bm25s.BM25.load sets up a model from its own files
        model = bm25s.BM25(**params)
        if model.method in model.methods_requiring_nonoccurrence:
            raise ValueError(f"bm25.npz holds no non-occurrence scores (BM25 variant {model.method})")
        model.vocab_dict = {term: column for column, term in enumerate(terms)}
        model._original_version = version
        model.unique_token_ids_set = set(model.vocab_dict.values())
        model.scores = {"data": scores.astype(model.dtype), "indices": rows.astype(model.int_dtype),
                        "indptr": indptr, "num_docs": num_docs}
        model.nonoccurrence_array = None
        return cls(model)

    @property
    def vocabulary(self) -> dict[str, int]:
        return self._model.vocab_dict

    def spelled_like(self, term: str) -> list[str]:
        """Terms of the corpus one letter away from `term` (a letter added, dropped or changed:
        'celeron' for 'celoron', 'frenchman' for 'frenchmen'), for a word of at least
        SPELLING_MIN_LETTERS letters; none for a shorter word, a number or a term the corpus uses.
        Only terms of a length one away are compared: 8 unknown words over a vocabulary of 200 000
        terms take about 56 ms here.

        >>> LexicalIndex.build(["Céloron led the expedition.", "The Frenchmen won."], ["en", "en"]).spelled_like("celeron")
        ['celoron']
        """
        if len(term) < SPELLING_MIN_LETTERS or not term.isalpha() or term in self.vocabulary:
            return []
        if self._terms is None:  # by length: one letter away is one letter longer or shorter at most
            self._terms = {}
            for t in self.vocabulary:
                if len(t) >= SPELLING_MIN_LETTERS - 1 and t.isalpha():
                    self._terms.setdefault(len(t), []).append(t)
        near = [t for n in (len(term) - 1, len(term), len(term) + 1) for t in self._terms.get(n, ())]
        found = process.extract(term, near, scorer=Levenshtein.distance, score_cutoff=1, limit=SPELLING_LIMIT)
        return sorted(match for match, _, _ in found)

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    # bm25s's score matrix (CSC, chunks x terms): column c of term vocabulary[t] holds the scores
    # data[indptr[c]:indptr[c + 1]] of the chunks indices[indptr[c]:indptr[c + 1]] (ascending)
    @property
    def data(self) -> np.ndarray:
        return self._model.scores["data"]

    @property
    def indices(self) -> np.ndarray:
        return self._model.scores["indices"]

    @property
    def indptr(self) -> np.ndarray:
        return self._model.scores["indptr"]

    def _column(self, term: str) -> int | None:
        """The term's column in the matrix; None for a term absent from it (bm25s numbers the ""
        it adds to its vocabulary past the matrix, when no chunk is empty)."""
        column = self._model.vocab_dict.get(term)
        return column if column is not None and column < len(self.indptr) - 1 else None

    def idf(self, term: str) -> float:
        """Inverse document frequency; a term absent from the corpus gets the highest value."""
        column = self._column(term)
        indptr = self.indptr
        df = 0 if column is None else int(indptr[column + 1] - indptr[column])
        return idf_weight(df, self.size)

    def scores(self, weights: dict[str, float]) -> np.ndarray:
        """BM25 score of every chunk for weighted query terms: sum of weight x term score.
        bm25s stores per-term scores column-wise, so each term costs one slice."""
        data, indices, indptr = self.data, self.indices, self.indptr
        total = np.zeros(self.size, dtype=np.float32)
        for term, weight in weights.items():
            column = self._column(term)
            if column is None:
                continue
            a, b = indptr[column], indptr[column + 1]
            total[indices[a:b]] += weight * data[a:b]
        return total


def _utf8(value) -> np.ndarray:
    """A JSON value as an array of bytes (np.load reads it without pickle)."""
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def _planes(values: np.ndarray) -> np.ndarray:
    """The bytes of `values` (little-endian), a row for each byte of a value: the high bytes of
    small numbers, alike, then compress far better than the bytes side by side (a fifth less for
    the scores and the gaps)."""
    values = values.astype(values.dtype.newbyteorder("<"))
    return np.ascontiguousarray(values.view(np.uint8).reshape(len(values), values.itemsize).T)


def _unplanes(planes: np.ndarray, kind: str) -> np.ndarray:
    """The values that `_planes` laid out, as numbers of `kind` ("u" or "f") as wide as there are rows."""
    if planes.ndim != 2 or planes.dtype != np.uint8 or planes.shape[0] not in {"u": (1, 2, 4, 8), "f": (2, 4, 8)}[kind]:
        raise ValueError("bm25.npz does not hold a BM25 matrix")
    dtype = np.dtype(f"<{kind}{planes.shape[0]}")
    return np.ascontiguousarray(planes.T).view(dtype).ravel().astype(dtype.newbyteorder("="))


def _smallest(values: np.ndarray) -> np.ndarray:
    """The array in the smallest unsigned integer type that holds it."""
    top = int(values.max()) if len(values) else 0
    for kind in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(kind).max:
            return values.astype(kind)
    return values.astype(np.uint64)


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
