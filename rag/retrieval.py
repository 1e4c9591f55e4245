"""Hybrid retrieval: BM25 over the French analyzer and dense search in FAISS, fused by weighted
reciprocal rank fusion, then de-duplicated. Returns typed hits with every retriever's rank and score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.chunking import Chunk
from rag.embedders import Embedder
from rag.store import Index
from rag.text import normalize, query_weights


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    rank: int  # 1-based, after fusion
    score: float  # fused score
    lexical_rank: int | None = None
    lexical_score: float | None = None
    dense_rank: int | None = None
    dense_score: float | None = None


@dataclass(frozen=True)
class RetrievalConfig:
    mode: str = "hybrid"  # "hybrid", "lexical" or "dense"
    rrf_k: int = 60
    lexical_weight: float = 1.0
    dense_weight: float = 1.0
    depth: int = 50  # how deep each list is read before fusing


class Retriever:
    def __init__(self, index: Index, embedder: Embedder | None, config: RetrievalConfig = RetrievalConfig()):
        if config.mode != "lexical" and embedder is None:
            raise ValueError("dense and hybrid retrieval need an embedder")
        self.index = index
        self.embedder = embedder
        self.config = config

    def search(self, query: str, k: int = 5, mode: str | None = None) -> list[Hit]:
        mode = mode or self.config.mode
        depth = max(self.config.depth, 4 * k)
        lexical = self._lexical(query, depth) if mode in ("hybrid", "lexical") else []
        dense = self._dense(query, depth) if mode in ("hybrid", "dense") else []
        return fuse(self.index.chunks, lexical, dense, self.config, k)

    def _lexical(self, query: str, depth: int) -> list[tuple[int, float]]:
        scores = self.index.lexical.scores(query_weights(query))
        return _top(scores, depth)

    def _dense(self, query: str, depth: int) -> list[tuple[int, float]]:
        vector = self.embedder.embed([query])
        scores, ids = self.index.dense.search(vector, min(depth, self.index.dense.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def _top(scores: np.ndarray, depth: int) -> list[tuple[int, float]]:
    """Indices and scores of the best `depth` positive scores, best first."""
    if scores.size == 0:
        return []
    depth = min(depth, scores.size)
    candidates = np.argpartition(-scores, depth - 1)[:depth]
    ordered = candidates[np.argsort(-scores[candidates], kind="stable")]
    return [(int(i), float(scores[i])) for i in ordered if scores[i] > 0]


def fuse(
    chunks: list[Chunk],
    lexical: list[tuple[int, float]],
    dense: list[tuple[int, float]],
    config: RetrievalConfig,
    k: int,
) -> list[Hit]:
    """Weighted reciprocal rank fusion: score = sum of weight / (rrf_k + rank) over the lists
    a chunk appears in; ties keep the lexical order."""
    fused: dict[int, float] = {}
    lex_pos = {i: (r, s) for r, (i, s) in enumerate(lexical, start=1)}
    dense_pos = {i: (r, s) for r, (i, s) in enumerate(dense, start=1)}
    for weight, ranked in ((config.lexical_weight, lex_pos), (config.dense_weight, dense_pos)):
        for i, (r, _) in ranked.items():
            fused[i] = fused.get(i, 0.0) + weight / (config.rrf_k + r)
    order = sorted(fused, key=lambda i: (-fused[i], lex_pos.get(i, (10**9,))[0]))
    hits: list[Hit] = []
    for i in deduplicate(chunks, order):
        lr, ls = lex_pos.get(i, (None, None))
        dr, ds = dense_pos.get(i, (None, None))
        hits.append(Hit(chunks[i], len(hits) + 1, fused[i], lr, ls, dr, ds))
        if len(hits) == k:
            break
    return hits


def deduplicate(chunks: list[Chunk], order: list[int]):
    """Skip a chunk that overlaps one already kept in the same file, or repeats its text."""
    kept_spans: dict[str, list[tuple[int, int]]] = {}
    kept_texts: set[str] = set()
    for i in order:
        chunk = chunks[i]
        text = " ".join(normalize(chunk.text).lower().split())
        spans = kept_spans.setdefault(chunk.source, [])
        if text in kept_texts or any(a < chunk.end and chunk.start < b for a, b in spans):
            continue
        spans.append((chunk.start, chunk.end))
        kept_texts.add(text)
        yield i
