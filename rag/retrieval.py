"""Hybrid retrieval: BM25 over the French analyzer, BM25 over sub-words (character n-grams) and
dense search in FAISS, fused (normalised scores by default, or reciprocal ranks), then de-duplicated.
Returns typed hits with every retriever's rank and score."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from rag.bridge import compound_words, question_words
from rag.chunking import Chunk
from rag.embedders import Embedder, fusion_weight, query_embedder
from rag import languages
from rag.lexical import subword_weights
from rag.store import Index
from rag.query import Query, analyse
from rag.text import analyze, normalize


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    rank: int  # 1-based, after fusion
    score: float  # fused score
    lexical_rank: int | None = None
    lexical_score: float | None = None
    dense_rank: int | None = None
    dense_score: float | None = None
    subword_rank: int | None = None
    subword_score: float | None = None


@dataclass(frozen=True)
class QueryTerms:
    """A question's analysed terms with their weights, and for a word the corpus never uses,
    the corpus terms standing in for it (cross-language bridge) with their similarity.
    `reach`: for a word of the question's language that the documents write in another, the
    similarity of its closest translation, which is as much as the documents can hold of it."""

    weights: dict[str, float]
    stand_ins: dict[str, dict[str, float]] = field(default_factory=dict)
    reach: dict[str, float] = field(default_factory=dict)

    def bm25(self) -> dict[str, float]:
        """BM25 query weights: each stand-in weighs its question term's weight x its similarity.

        >>> QueryTerms({"cost": 1.0, "r1": 2.0}, {"cost": {"cout": 0.8}}).bm25()
        {'cost': 1.0, 'r1': 2.0, 'cout': 0.8}
        """
        weights = dict(self.weights)
        for term, matches in self.stand_ins.items():
            for match, similarity in matches.items():
                weights[match] = max(weights.get(match, 0.0), self.weights[term] * similarity)
        return weights

    def known(self, term: str, vocabulary) -> bool:
        """Whether the documents use the term or one of its stand-ins (`vocabulary`: the index's terms).

        >>> QueryTerms({"cost": 1.0}, {"cost": {"cout": 0.8}}).known("cost", {"cout"})
        True
        """
        return term in vocabulary or any(s in vocabulary for s in self.stand_ins.get(term, {}))

    def credit(self, term: str, found: set[str]) -> float:
        """How much of question term `term` the analysed terms `found` hold: 1 for the term
        itself, a stand-in's similarity for a stand-in, else 0; for a word the documents write
        in another language, relative to its closest translation (`reach`): a French question's
        'forts' is held in full by the 'forts' of an English text, 0.95 from it.

        >>> terms = QueryTerms({"fort": 1.0, "cout": 1.0}, {"fort": {"fort": 0.95, "strong": 0.8}, "cout": {"cost": 0.8}},
        ...                    reach={"fort": 0.95})
        >>> terms.credit("fort", {"fort"}), round(terms.credit("fort", {"strong"}), 3), terms.credit("cout", {"cost"})
        (1.0, 0.842, 0.8)
        """
        if term in found:
            return 1.0
        held = max((s for match, s in self.stand_ins.get(term, {}).items() if match in found), default=0.0)
        return min(1.0, held / self.reach.get(term, 1.0))


FUSIONS = ("score", "rrf")
SPELLING_SIMILARITY = 0.9  # how much of a question term a corpus term one letter away holds


@dataclass(frozen=True)
class RetrievalConfig:
    mode: str = "hybrid"  # "hybrid", "lexical" or "dense"
    fusion: str = "score"  # "score": weighted normalised scores; "rrf": reciprocal rank fusion
    rrf_k: int = 60
    lexical_weight: float = 1.0
    dense_weight: float = 1.0  # times the embedder's own fusion weight (embedders.fusion_weight)
    depth: int = 50  # how deep each list is read before fusing
    bridge_similarity: float = 0.75  # least similarity for a cross-language word match
    # BM25 over character n-grams, a third list in hybrid mode; 0 leaves it out. Weighs as much
    # as the other two (not fitted): see benchmarks/cnil_retrieval.py for what it changes.
    subword_weight: float = 1.0


class Retriever:
    def __init__(self, index: Index, embedder: Embedder | None, config: RetrievalConfig = RetrievalConfig()):
        if config.mode != "lexical" and embedder is None:
            raise ValueError("dense and hybrid retrieval need an embedder")
        self.index = index
        self.embedder = embedder
        self.config = config

    def search(self, query: str, k: int = 5, mode: str | None = None,
               terms: QueryTerms | None = None) -> list[Hit]:
        """The k best passages; `terms` are the query's weighted terms when already computed."""
        mode = mode or self.config.mode
        if mode == "dense" and self.index.dense is None:
            mode = "hybrid"  # nothing to search by meaning: the words and sub-words
        depth = max(self.config.depth, 4 * k)
        lexical = self._lexical((terms or self.query_terms(query)).bm25(), depth) if mode in ("hybrid", "lexical") else []
        dense = self._dense(query, depth) if mode in ("hybrid", "dense") else []
        subword = self._subword(query, depth) if mode == "hybrid" else []
        config = self.config
        if dense and fusion_weight(self.embedder) != 1.0:
            config = dataclasses.replace(config, dense_weight=config.dense_weight * fusion_weight(self.embedder))
        return fuse(self.index.chunks, lexical, dense, config, k, subword)

    def query_terms(self, query: str | Query) -> QueryTerms:
        """Weighted BM25 terms of a query. In a corpus of several languages, each term also
        stands for the same word as the other languages' packs analyse it ('wikipedi' for
        'wikipedia'). A question in another language than the corpus, or over a corpus of several,
        also gets, for each word the corpus never uses, the corpus terms closest in meaning; and in
        any corpus, a word it never uses stands for its terms one letter away (a misspelling,
        `LexicalIndex.spelled_like`)."""
        query = query if isinstance(query, Query) else analyse(query, self.index.language, self.index.languages)
        weights = query.weights
        stand_ins: dict[str, dict[str, float]] = {}
        for other in self.index.languages:
            if other == query.terms_language:
                continue
            for word, term in question_words(query.text, query.terms_language):
                for variant in analyze(word, other):
                    if variant != term and term in weights:
                        stand_ins.setdefault(term, {})[variant] = 1.0
        vocabulary = self.index.lexical.vocabulary
        for term in weights:  # a misspelt name ('Celeron' for 'Céloron') stands for the corpus's spelling
            if term not in vocabulary and not any(v in vocabulary for v in stand_ins.get(term, ())):
                for match in self.index.lexical.spelled_like(term):
                    stand_ins.setdefault(term, {})[match] = SPELLING_SIMILARITY
        several = len(self.index.languages) > 1
        if self.embedder is None or (query.language == self.index.language and not several):
            return QueryTerms(weights, stand_ins)
        # every word of a question in another language than (some of) the documents: they say it
        # otherwise, even where the corpus also uses it ('États' for 'States'; 'school' in a
        # French text's English name for 'école'); else a word the corpus never uses
        every = several or query.language != self.index.language

        def unknown(t: str) -> bool:
            return t not in vocabulary and not any(v in vocabulary for v in stand_ins.get(t, ()))

        bridged = [(w, t) for w, t in question_words(query.text, query.terms_language)
                   if t in weights and (every or unknown(t))]
        bridged += [(w, t) for w, parts in compound_words(query.text, query.terms_language)
                    for t in parts if t in weights and (every or unknown(t))]
        # each word as written and in lower case: the corpus's words are embedded in lower case,
        # and the embedder reads case ('Acadiens' is 0.64 from 'acadians', 'acadiens' 0.93; but
        # 'brésil' is no country, 'Brésil' is 0.86 from 'brazil')
        bridged += [(w.lower(), t) for w, t in bridged if w != w.lower()]
        if not bridged:
            return QueryTerms(weights, stand_ins)
        vectors = self.embedder.embed([w for w, _ in bridged])
        for (word, term), vector in zip(bridged, vectors):
            known = term in vocabulary  # then its own term is among the closest: one more
            for match, similarity in self.index.bridge.expand(word, vector, self.config.bridge_similarity,
                                                              3 if known else 2).items():
                if match == term:
                    continue
                matches = stand_ins.setdefault(term, {})
                matches[match] = max(matches.get(match, 0.0), similarity)
        # a word of the question's language the documents never use is held as far as its closest
        # translation reaches ('forts' of an English text: 0.95); a word they do use, or a word of a
        # question in their own language, only by itself (a stand-in then is another word)
        reach = {t: max(stand_ins[t].values()) for _, t in bridged if t in stand_ins and t not in vocabulary} \
            if query.language != self.index.language else {}
        return QueryTerms(weights, stand_ins, reach)

    def _lexical(self, terms: dict[str, float], depth: int) -> list[tuple[int, float]]:
        return _top(self.index.lexical.scores(terms), depth)

    def _subword(self, query: str, depth: int) -> list[tuple[int, float]]:
        """Sub-word BM25 list; empty for an index built without it, or with a weight of 0."""
        if self.index.subwords is None or self.config.subword_weight <= 0:
            return []
        language = languages.detect(query, self.index.language) or self.index.language
        return _top(self.index.subwords.scores(subword_weights(query, language)), depth)

    def _dense(self, query: str, depth: int) -> list[tuple[int, float]]:
        if self.index.dense is None:  # an index built without chunk vectors: words and sub-words only
            return []
        vector = query_embedder(self.embedder)([query])
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
    subword: list[tuple[int, float]] = (),
) -> list[Hit]:
    """Fuse the ranked lists (word BM25, dense, sub-word BM25), then de-duplicate; ties keep the
    lexical order.

    "rrf": score = sum of weight / (rrf_k + rank) over the lists a chunk appears in.
    "score": score = sum of weight x score scaled to [0, 1] within its list (min-max), so a
    passage far ahead in one list keeps that lead, which rank fusion throws away."""
    fused: dict[int, float] = {}
    lex_pos = {i: (r, s) for r, (i, s) in enumerate(lexical, start=1)}
    dense_pos = {i: (r, s) for r, (i, s) in enumerate(dense, start=1)}
    sub_pos = {i: (r, s) for r, (i, s) in enumerate(subword, start=1)}
    lists = ((config.lexical_weight, lex_pos), (config.dense_weight, dense_pos), (config.subword_weight, sub_pos))
    for weight, ranked in lists:
        if config.fusion == "rrf":
            contributions = {i: 1.0 / (config.rrf_k + r) for i, (r, _) in ranked.items()}
        else:
            contributions = _min_max({i: s for i, (_, s) in ranked.items()})
        for i, value in contributions.items():
            fused[i] = fused.get(i, 0.0) + weight * value
    order = sorted(fused, key=lambda i: (-fused[i], lex_pos.get(i, (10**9,))[0]))
    hits: list[Hit] = []
    for i in deduplicate(chunks, order):
        lr, ls = lex_pos.get(i, (None, None))
        dr, ds = dense_pos.get(i, (None, None))
        sr, ss = sub_pos.get(i, (None, None))
        hits.append(Hit(chunks[i], len(hits) + 1, fused[i], lr, ls, dr, ds, sr, ss))
        if len(hits) == k:
            break
    return hits


def _min_max(scores: dict[int, float]) -> dict[int, float]:
    """Scale scores to [0, 1]: {a: 4, b: 2, c: 1} -> {a: 1.0, b: 0.33, c: 0.0}; one item -> 1.0."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high - low < 1e-9:
        return dict.fromkeys(scores, 1.0)
    return {i: (s - low) / (high - low) for i, s in scores.items()}


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
