"""Retrieval quality on four corpora, before and after a change: the right file and the passage
holding the answer, at ranks 1 and 5.

    python benchmarks/cnil_retrieval.py [--work /tmp/rb-bench] [--sets cnil squad2-en seeds realdocs] [--json out.json]
                                        [--embedder use-multilingual|e5-use-multilingual]

Named for the set that motivated it (issue #16: retrieval that beats BM25 on the CNIL FAQ, a corpus
nothing was tuned on), it scores every variant on all four sets, because a change that helps one
and hurts another is no improvement:

- cnil: ../shared/devsets/cnil-faq (506 FAQ answers, 256 questions: the FAQ titles);
- squad2-en: ../shared/devsets/squad2-en (4 English Wikipedia articles, 240 answerable questions);
- seeds: seeds/ with seeds/gold.jsonl (60 answerable questions);
- realdocs: ../shared/devsets/realdocs (PDF, Word, HTML, Markdown; 34 answerable questions).

Each corpus is indexed once by the real `store.build` (with --embedder, USE by default) under --work;
later runs reuse its vectors, so only the first run pays for embedding (about 3 minutes on 2 cores
for the four). Questions go through `Retriever.search(question, 5)`, as in `rag eval
--retrieval-only`, and are scored the same way:

- file@1 / file@5: the gold file is the source of the first hit / of one of the first 5 hits;
- passage@1 / passage@5: the first hit / one of the first 5 holds an acceptable answer
  (`contains_answer`). On the CNIL set an "answer" is the first part of the FAQ answer, so passage
  hits there also need that part to sit in one chunk.

Variants (the index is the same; only the lexical side is rebuilt in memory where a variant needs it):

- before: word BM25 with k1 = 1.2 fused with dense, as the code was before sub-words;
- k1=0.5: word BM25 with k1 = 0.5, no sub-words;
- subwords, k1=1.2: the sub-word list added, both BM25s with k1 = 1.2;
- after: the shipped defaults (k1 = 0.5, sub-word list, RetrievalConfig()).

The embedder matters more than any fusion setting. With USE, measured over the same four sets and
none reaching 0.55 right files first on CNIL: weights 0.5-2 for any list, reciprocal-rank, z-score
or max-scaled fusion, list depth 20-100, a fourth list of the best evidence sentence's USE
similarity, and re-spacing glued words before BM25 and embedding (CNIL file@1 0.47-0.50). With
`--embedder e5-use-multilingual` (multilingual-e5-small searches, its list weighing 2; USE for
everything else), "after" (rag eval --retrieval-only, file = source):

| embedder | cnil file@1/@5 | cnil passage@1/@5 | squad2-en passage@1/@5 | seeds passage@1 | realdocs passage@1/@5 |
|---|---|---|---|---|---|
| use-multilingual | 0.492 / 0.785 | 0.418 / 0.731 | 0.850 / 0.958 | 0.967 | 0.765 / 0.941 |
| e5-use-multilingual | 0.590 / 0.863 | 0.547 / 0.813 | 0.863 / 0.967 | 0.967 | 0.765 / 0.941 |

The E5 list alone gives CNIL 0.590 / 0.852 but squad2-en 0.779 passages first; with weight 1 CNIL
is 0.547 / 0.828, with 3 realdocs falls to 0.706 first. Its chunk embedding costs about 3.6x USE's
(2 cores), its query embedding about a fifth of USE's (25 ms against 130).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import store  # noqa: E402
from rag.documents import load_corpus  # noqa: E402
from rag.embedders import fusion_weight, passage_embedder, query_embedder  # noqa: E402
from rag.evaluation import contains_answer, read_gold  # noqa: E402
from rag.lexical import LexicalIndex, subwords  # noqa: E402
from rag.retrieval import RetrievalConfig, Retriever  # noqa: E402

DEVSETS = ROOT.parent / "shared" / "devsets"
SETS = {
    "cnil": (DEVSETS / "cnil-faq" / "corpus", DEVSETS / "cnil-faq" / "questions.jsonl"),
    "squad2-en": (DEVSETS / "squad2-en" / "corpus", DEVSETS / "squad2-en" / "questions.jsonl"),
    "seeds": (ROOT / "seeds", ROOT / "seeds" / "gold.jsonl"),
    "realdocs": (DEVSETS / "realdocs" / "corpus", DEVSETS / "realdocs" / "questions.jsonl"),
}
CHUNK_CHARS = 900  # Settings.chunk_chars


class CachedEmbedder:
    """The real embedder, remembering each text's vector (per side): every variant asks for the
    same questions."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self.fusion_weight = fusion_weight(embedder)
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def _cached(self, side: str, embed, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if (side, t) not in self._cache]
        if missing:
            self._cache.update(zip([(side, t) for t in missing], embed(missing)))
        if not texts:
            return embed([])
        return np.stack([self._cache[side, t] for t in texts])

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._cached("embed", self._embedder.embed, texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._cached("passages", passage_embedder(self._embedder), texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._cached("queries", query_embedder(self._embedder), texts)


def variants(index: store.Index) -> dict[str, tuple[store.Index, RetrievalConfig]]:
    texts = [c.text for c in index.chunks]
    langs = [c.language for c in index.chunks]
    words_k12 = LexicalIndex.build(texts, langs, k1=1.2)
    subwords_k12 = LexicalIndex.build(texts, langs, k1=1.2, analyzer=subwords)
    return {
        "before": (dataclasses.replace(index, lexical=words_k12, subwords=None), RetrievalConfig()),
        "k1=0.5": (index, RetrievalConfig(subword_weight=0.0)),
        "subwords, k1=1.2": (dataclasses.replace(index, lexical=words_k12, subwords=subwords_k12), RetrievalConfig()),
        "after": (index, RetrievalConfig()),
    }


def score(retriever: Retriever, gold) -> dict[str, float]:
    rows = []
    for q in gold:
        hits = retriever.search(q.question, 5)
        sources = [h.chunk.source for h in hits]
        answer_ranks = [h.rank for h in hits if contains_answer(h.chunk.text, q.answers)]
        rows.append((bool(sources) and sources[0] in q.sources, any(s in q.sources for s in sources[:5]),
                     bool(answer_ranks) and answer_ranks[0] == 1, bool(answer_ranks)))
    figures = np.mean(np.array(rows, dtype=float), axis=0) if rows else [0.0] * 4
    return dict(zip(("file@1", "file@5", "passage@1", "passage@5"), (round(float(x), 3) for x in figures)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/rb-bench"), help="where the indexes are built")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--embedder", default="use-multilingual", help="an embedder of models.txt")
    args = parser.parse_args()

    from rag.pipeline import load_configured_embedder
    from rag.settings import Settings

    embedder = CachedEmbedder(load_configured_embedder(Settings(), args.embedder))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.sets:
        corpus, gold_path = SETS[name]
        started = time.perf_counter()
        report = store.build(args.work / args.embedder / name, load_corpus(corpus), embedder, CHUNK_CHARS)
        index = store.load(args.work / args.embedder / name)
        gold = [q for q in read_gold(gold_path) if not q.unanswerable]
        print(f"{name}: {report.documents} documents, {report.chunks} chunks ({report.embedded} embedded), "
              f"{len(gold)} answerable questions; indexed in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        results[name] = {label: score(Retriever(idx, embedder, config), gold)
                         for label, (idx, config) in variants(index).items()}

    labels = list(next(iter(results.values())))
    print("| variant | " + " | ".join(f"{n} file@1/@5 | {n} passage@1/@5" for n in results) + " |")
    print("|---|" + "---|---|" * len(results))
    for label in labels:
        cells = []
        for name in results:
            f = results[name][label]
            cells += [f"{f['file@1']:.3f} / {f['file@5']:.3f}", f"{f['passage@1']:.3f} / {f['passage@5']:.3f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
