"""Retrieval speed on a synthetic corpus: index build time, query p50/p95 and peak memory.

    python benchmarks/retrieval_benchmark.py --chunks 100000

The corpus is made of sentences of the seeds, shuffled and mixed with random figures, written as
files and indexed by the real pipeline (chunking, BM25, FAISS, vocabulary bridge). Embedding 100k
chunks with the multilingual USE model on a 2-core laptop takes far longer than the rest, so the
chunk vectors are random unit vectors of the same dimension (512); USE's throughput is measured on
a sample and the full embedding time extrapolated, reported apart. Queries are the gold questions,
embedded by the real USE model, searched in hybrid mode.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from rag.embedders import UniversalSentenceEncoder

    use = UniversalSentenceEncoder("use-multilingual")
    with tempfile.TemporaryDirectory() as tmp:
        corpus, index_dir = Path(tmp) / "corpus", Path(tmp) / "index"
        started = time.perf_counter()
        make_corpus(corpus, args.chunks)
        documents = load_corpus(corpus)
        print(f"corpus: {len(documents)} files, {sum(len(d.text) for d in documents) / 1e6:.1f} M characters "
              f"({time.perf_counter() - started:.1f}s to write and read)")

        sample = [d.text[:800] for d in documents[:2]] * 50
        use.embed(sample[:2])
        t = time.perf_counter()
        use.embed(sample)
        per_chunk = (time.perf_counter() - t) / len(sample)

        t = time.perf_counter()
        report = store.build(index_dir, documents, RandomEmbedder(), chunk_chars=900)
        build_s = time.perf_counter() - t
        index = store.load(index_dir)
        retriever = Retriever(index, use, RetrievalConfig("hybrid"))
        gold = [q.question for q in read_gold(ROOT / "seeds" / "gold.jsonl")]
        questions = [gold[i % len(gold)] for i in range(args.queries)]
        retriever.search(questions[0], 5)
        timings = []
        for question in questions:
            t = time.perf_counter()
            retriever.search(question, 5)
            timings.append((time.perf_counter() - t) * 1000)
        timings.sort()
        figures = {
            "chunks": report.chunks,
            "faiss": index.manifest["faiss"]["type"],
            "bridge_words": index.manifest["bridge"]["words"],
            "index_build_s_without_embedding": round(build_s, 1),
            "use_embedding_ms_per_chunk": round(per_chunk * 1000, 1),
            "use_embedding_s_estimated_for_all_chunks": round(per_chunk * report.chunks, 0),
            "query_ms_p50": round(statistics.median(timings), 2),
            "query_ms_p95": round(timings[int(0.95 * (len(timings) - 1))], 2),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
