"""Retrieval speed on a synthetic corpus: index build time, query p50/p95 and peak memory.

    python benchmarks/retrieval_benchmark.py --chunks 100000

The corpus is made of sentences of the seeds, shuffled and mixed with random figures, written as
files and indexed by the real pipeline (chunking, BM25, FAISS, vocabulary bridge). Embedding 100k
chunks on a 2-core laptop takes far longer than the rest, so the chunk vectors are random unit
vectors (512 dimensions); each embedder's throughput is measured on `--sample` distinct chunks of
the corpus (the passage side, as `rag index` embeds them; none seen before, since the embedders
keep what they embedded) and its time for every chunk extrapolated: `index_s_estimated` is the
build without embedding plus that, the time `rag index` would take with it. `index_s_no_vectors`
is a real build without chunk vectors (`rag index --no-vectors`: words and sub-words, the
vocabulary bridge embedded by the default embedder), and `query_ms_no_vectors_p50` its searches.
Queries are the gold questions, embedded by the real USE model, searched in hybrid mode.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import store  # noqa: E402
from rag.documents import load_corpus  # noqa: E402
from rag.evaluation import read_gold  # noqa: E402
from rag.retrieval import RetrievalConfig, Retriever  # noqa: E402
from rag.text import sentence_spans  # noqa: E402


class RandomEmbedder:
    name = "random-512"
    dim = 512

    def __init__(self, seed: int = 0):
        self._rng = np.random.default_rng(seed)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self._rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_corpus(folder: Path, chunks: int, per_file: int = 200, seed: int = 0) -> None:
    """`chunks` paragraphs of 700 to 850 characters (one chunk each), `per_file` paragraphs a file."""
    rng = random.Random(seed)
    sentences = []
    for doc in load_corpus(ROOT / "seeds"):
        sentences += [doc.text[a:b] for a, b in sentence_spans(doc.text) if b - a > 40]
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(0, chunks, per_file):
        paragraphs = []
        for _ in range(min(per_file, chunks - f)):
            picked = rng.sample(sentences, 6)
            words = " ".join(picked).split()
            rng.shuffle(words)
            words.insert(rng.randrange(len(words)), f"{rng.randrange(1, 10_000):,}".replace(",", " "))
            paragraphs.append(" ".join(words)[: rng.randrange(700, 850)].rsplit(" ", 1)[0] + ".")
        (folder / f"synthetic_{f // per_file:05d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")


def _search_times(retriever: Retriever, questions: list[str]) -> list[float]:
    """Milliseconds of each search (after one unmeasured), sorted."""
    retriever.search(questions[0], 5)
    timings = []
    for question in questions:
        t = time.perf_counter()
        retriever.search(question, 5)
        timings.append((time.perf_counter() - t) * 1000)
    return sorted(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sample", type=int, default=100, help="chunks embedded to time each embedder")
    parser.add_argument("--embedders", default="e5-use-multilingual,use-multilingual,minilm-l6",
                        help="manifest names of the embedders to time (comma-separated)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from rag.embedders import UniversalSentenceEncoder, passage_embedder
    from rag.pipeline import load_configured_embedder
    from rag.settings import Settings

    use = UniversalSentenceEncoder("use-multilingual")
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        started = time.perf_counter()
        make_corpus(corpus, args.chunks)
        documents = load_corpus(corpus)
        print(f"corpus: {len(documents)} files, {sum(len(d.text) for d in documents) / 1e6:.1f} M characters "
              f"({time.perf_counter() - started:.1f}s to write and read)")

        t = time.perf_counter()
        report = store.build(index_dir, documents, RandomEmbedder(), chunk_chars=900)
        build_s = time.perf_counter() - t
        index = store.load(index_dir)
        # distinct chunks, none embedded before: an embedder's cache must not answer for it
        step = max(1, len(index.chunks) // args.sample)
        sample = [c.text for c in index.chunks[::step][: args.sample]]
        embedding = {}
        for name in filter(None, args.embedders.split(",")):
            embedder = passage_embedder(load_configured_embedder(Settings(), name))
            embedder(["warm-up: " + sample[0][:50]])
            t = time.perf_counter()
            embedder(sample)
            per_chunk = (time.perf_counter() - t) / len(sample)
            embedding[name] = {"chunks_per_s": round(1 / per_chunk, 1),
                               "embedding_s_estimated": round(per_chunk * report.chunks),
                               "index_s_estimated": round(build_s + per_chunk * report.chunks)}
        gold = [q.question for q in read_gold(ROOT / "seeds" / "gold.jsonl")]
        questions = [gold[i % len(gold)] for i in range(args.queries)]
        timings = _search_times(Retriever(index, use, RetrievalConfig("hybrid")), questions)
        faiss_type, bridge_words = index.manifest["faiss"]["type"], index.manifest["bridge"]["words"]
        del index

        t = time.perf_counter()
        default = load_configured_embedder(Settings())
        words_only = store.build(Path(tmp) / "words-only", documents, default, chunk_chars=900, vectors=False)
        no_vectors_s = time.perf_counter() - t
        words_timings = _search_times(Retriever(store.load(Path(tmp) / "words-only"), default, RetrievalConfig("hybrid")),
                                      questions)
        figures = {
            "chunks": report.chunks,
            "faiss": faiss_type,
            "bridge_words": bridge_words,
            "index_build_s_without_embedding": round(build_s, 1),
            "embedders": embedding,
            "index_s_no_vectors": round(no_vectors_s, 1),
            "chunks_no_vectors": words_only.chunks,
            "query_ms_p50": round(statistics.median(timings), 2),
            "query_ms_p95": round(timings[int(0.95 * (len(timings) - 1))], 2),
            "query_ms_no_vectors_p50": round(statistics.median(words_timings), 2),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
