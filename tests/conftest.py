"""Fakes for the dependencies of the code under test (never for the code itself) and tiny fixtures."""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.settings import Settings
from rag.text import analyze

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


class FakeEmbedder:
    """Deterministic bag-of-stems vectors: texts sharing words get similar vectors."""

    name = "fake-embedder"
    dim = 64

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in analyze(text, "fr") or ["empty"]:
                out[row, int(hashlib.md5(term.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class FakeGenerator:
    """A scripted model: returns the queued replies in order, and records the prompts (and
    constraints) it saw.

    Under a constraint (the span task) it behaves as a model held to it would: a reply the
    constraint allows is written as it is, any other reply is replaced by the first output the
    constraint allows; each token is written with probability `confidence` (`last_logprobs`).
    With `obey=False` it ignores constraints, as a generator that cannot enforce them, and tells
    no probabilities."""

    name = "fake-generator"

    def __init__(self, *replies: str, confidence: float = 0.9, obey: bool = True) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []
        self.constraints: list = []
        self.confidence, self.obey = confidence, obey
        self.last_usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.last_logprobs: list[float] | None = None

    def enqueue(self, reply: str) -> None:
        self.replies.append(reply)

    def stream(self, prompt: str, max_tokens: int = 96, temperature: float = 0.0,
               constraint=None) -> Iterator[str]:
        self.prompts.append(prompt)
        self.constraints.append(constraint)
        reply = self.replies.pop(0) if self.replies else ""
        self.last_logprobs = None
        if constraint is not None and self.obey:
            if not constraint.allows(f" {reply}\n".encode()):
                reply = constraint.outputs()[0].strip()
            self.last_logprobs = [math.log(self.confidence)] * (len(reply.split()) + 1)
        for word in reply.split(" "):
            yield word + " "
        self.last_usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(reply.split())}


@pytest.fixture(autouse=True)
def _no_warm_process(tmp_path_factory, monkeypatch):
    """`rag ask` in a test answers in its own process (a test that wants the warm one says so),
    and a warm process a test starts keeps its socket in the test's own folder."""
    monkeypatch.setenv("RAG_WARM", "0")
    monkeypatch.setenv("RAG_WARM_DIR", str(tmp_path_factory.mktemp("warm")))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "corpus", folder)
    return folder


@pytest.fixture
def settings(tmp_path: Path, corpus: Path) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", models_dir=tmp_path / "models",
                    manifest_path=ROOT / "models.txt")


@pytest.fixture
def built(settings: Settings):
    """An index of the fixture corpus built with the fake embedder."""
    from rag import store
    from rag.documents import load_corpus

    embedder = FakeEmbedder()
    store.build(settings.index_dir, load_corpus(settings.corpus_dir), embedder, settings.chunk_chars)
    return settings, embedder


def engine_over(folder: Path, files: dict[str, str], embedder=None, **overrides):
    """An engine (fake embedder, unless one is given, and fake generator) over a corpus of the
    given files, written under `folder`."""
    from rag import store
    from rag.documents import load_corpus
    from rag.pipeline import Engine
    from rag.retrieval import RetrievalConfig, Retriever

    corpus = folder / "docs"
    corpus.mkdir()
    for name, text in files.items():
        (corpus / name).write_text(text, "utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=folder / "index", models_dir=folder / "models",
                        manifest_path=ROOT / "models.txt", **overrides)
    embedder = embedder or FakeEmbedder()
    store.build(settings.index_dir, load_corpus(corpus), embedder, settings.chunk_chars)
    index = store.load(settings.index_dir)
    return Engine(settings, index, embedder, Retriever(index, embedder, RetrievalConfig(settings.retrieval)),
                  FakeGenerator())


@pytest.fixture
def engine_factory(built):
    from rag import store
    from rag.pipeline import Engine
    from rag.retrieval import RetrievalConfig, Retriever

    settings, embedder = built

    def make(*replies: str, **overrides) -> Engine:
        s = settings.with_overrides(**overrides)
        index = store.load(s.index_dir)
        retriever = Retriever(index, embedder, RetrievalConfig(s.retrieval))
        return Engine(s, index, embedder, retriever, FakeGenerator(*replies))

    return make
