"""GPU offload by default and the compute report, on fakes: this machine and CI have no GPU, so
the library's answers (offload supported, its devices) are what is faked, never the code that
decides from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import compute, llama_probe
from rag.compute import Compute, Device
from rag.errors import UsageError
from rag.settings import Settings

H100 = Device("CUDA0", "NVIDIA H100 80GB HBM3", "GPU", "CUDA", 80 << 30, 81 << 30)
CPU = Device("CPU", "AMD EPYC", "CPU", "CPU")


def never() -> bool:
    raise AssertionError("the library was asked although the layers were given")


# ---------------------------------------------------------------- the default: auto

def test_the_default_is_auto_and_resolves_from_the_build():
    assert Settings().n_gpu_layers is None
    assert compute.gpu_layers(Settings().n_gpu_layers, lambda: True) == -1  # every layer
    assert compute.gpu_layers(Settings().n_gpu_layers, lambda: False) == 0  # a CPU-only build: as before


@pytest.mark.parametrize("raw, layers", [("0", 0), ("-1", -1), ("12", 12)])
def test_rag_n_gpu_layers_overrides_auto_without_asking_the_library(raw, layers):
    settings = Settings.from_env({"RAG_N_GPU_LAYERS": raw})
    assert compute.gpu_layers(settings.n_gpu_layers, never) == layers


def test_zero_forces_the_cpu_on_a_gpu_build():
    requested = Settings.from_env({"RAG_N_GPU_LAYERS": "0"}).n_gpu_layers
    layers = compute.gpu_layers(requested, lambda: True)
    assert layers == 0
    assert compute.describe(requested, layers, True, [CPU, H100], 30).line() == \
        "CPU (GPU offload turned off: RAG_N_GPU_LAYERS=0)"


@pytest.mark.parametrize("raw", ["auto", "AUTO", " auto "])
def test_auto_can_be_written(raw):
    assert Settings.from_env({"RAG_N_GPU_LAYERS": raw}).n_gpu_layers is None


@pytest.mark.parametrize("raw, words", [("many", "whole number or 'auto'"), ("-2", "at least -1"), ("", "whole number")])
def test_a_bad_value_is_a_usage_error(raw, words):
    with pytest.raises(UsageError, match=words):
        Settings.from_env({"RAG_N_GPU_LAYERS": raw})


def test_the_warm_process_gets_auto_back():
    from rag.warm import settings_dict, settings_from

    assert settings_from(json.loads(json.dumps(settings_dict(Settings())))).n_gpu_layers is None


# ---------------------------------------------------------------- the probe cache stays valid

def test_the_probe_key_of_a_cpu_build_is_the_one_it_had(tmp_path):
    """The probe cache is keyed on offload on/off: with auto on a CPU-only build the key is the
    one computed with 0 (the old default), so every remembered probe still applies."""
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    before = llama_probe.probe_key(model, 0)
    assert llama_probe.probe_key(model, compute.gpu_layers(Settings().n_gpu_layers, lambda: False)) == before
    assert llama_probe.probe_key(model, compute.gpu_layers(Settings().n_gpu_layers, lambda: True)) != before


def test_the_generator_is_probed_with_the_resolved_layers(tmp_path, monkeypatch):
    from rag import pipeline

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    manifest = tmp_path / "models.txt"
    manifest.write_text(f"generator tiny {model}\n")
    probed = []

    def choose_load(path, layers, cache_dir):
        probed.append(layers)
        raise UsageError("stop before loading")

    monkeypatch.setattr(pipeline, "choose_load", choose_load)
    settings = Settings(manifest_path=manifest, models_dir=tmp_path, generator="tiny")
    for supported, expected in ((False, 0), (True, -1)):
        monkeypatch.setattr(compute, "offload_supported", lambda: supported)
        with pytest.raises(UsageError):
            pipeline.load_configured_generator(settings)
        assert probed[-1] == expected


# ---------------------------------------------------------------- what is offloaded, and the line

@pytest.mark.parametrize("layers, model_layers, has_gpu, offloaded", [
    (-1, 30, True, 31), (31, 30, True, 31), (99, 30, True, 31), (10, 30, True, 10), (0, 30, True, 0), (-1, 30, False, 0),
])
def test_offloaded_layers_follow_llama_cpp(layers, model_layers, has_gpu, offloaded):
    assert compute.offloaded_layers(layers, model_layers, has_gpu) == offloaded


def test_lines():
    assert compute.describe(None, -1, True, [CPU, H100], 30).line() == \
        "GPU offload, all 31 layers (CUDA: NVIDIA H100 80GB HBM3)"
    assert compute.describe(10, 10, True, [H100], 30).line() == \
        "GPU offload, 10 of 31 layers (the rest on the CPU) (CUDA: NVIDIA H100 80GB HBM3)"
    assert compute.describe(None, -1, True, [H100], None).line() == "GPU offload, all layers (CUDA: NVIDIA H100 80GB HBM3)"
    assert compute.describe(None, 0, False, [CPU], 18).line() == "CPU (llama.cpp built without GPU offload)"
    assert compute.describe(-1, -1, True, [CPU], 18).line() == "CPU (llama.cpp sees no GPU)"
    apple = Device("Metal", "Apple M3", "IGPU", "Metal")
    assert compute.describe(None, -1, True, [apple], 18).line() == "GPU offload, all 19 layers (Metal: Apple M3)"
    assert compute.served(None, "http://127.0.0.1:8080/v1").line().startswith("served by http://127.0.0.1:8080/v1")
    assert Compute("", None).line() == "not loaded"


def test_json():
    assert compute.describe(None, -1, True, [CPU, H100], 30).as_json() == {
        "backend": "CUDA", "gpu_layers_requested": "auto", "gpu_layers": -1, "layers_offloaded": 31, "layers": 31,
        "devices": ["NVIDIA H100 80GB HBM3"]}
    assert compute.describe(0, 0, False, [CPU], 18).as_json() == {
        "backend": "CPU", "gpu_layers_requested": 0, "gpu_layers": 0, "layers_offloaded": 0, "layers": 19, "devices": []}
    assert Compute("", None).as_json()["backend"] is None
    served = compute.served(None, "http://h:1/v1").as_json()
    assert served["backend"] == "server" and served["url"] == "http://h:1/v1" and served["gpu_layers_requested"] is None


def test_the_installed_library_lists_its_cpu_device():
    """The ctypes reading of ggml's device registry works on the installed llama.cpp."""
    found = compute.devices(supported=True)
    assert compute.devices(supported=False) == []
    assert any(d.kind == "CPU" and d.backend == "CPU" for d in found), found


# ---------------------------------------------------------------- rag models and rag ask --json

def test_rag_models_prints_the_compute_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rag import cli

    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    manifest = tmp_path / "models.txt"
    manifest.write_text(f"generator tiny {model}\nembedder words {tmp_path} loader=use\n")
    env = {"RAG_GENERATOR": "tiny", "RAG_EMBEDDER": "words", "RAG_MODELS_DIR": str(tmp_path)}
    monkeypatch.setattr(compute, "offload_supported", lambda: True)
    monkeypatch.setattr(compute, "devices", lambda supported=True: [CPU, H100])
    done = CliRunner().invoke(cli.cli, ["--models", str(manifest), "models"], env=env)
    assert done.exit_code == 0, done.output
    assert "compute    tiny: GPU offload, all layers (CUDA: NVIDIA H100 80GB HBM3)" in done.output
    assert "embedding  words: CPU (a numpy engine" in done.output

    monkeypatch.setattr(compute, "offload_supported", lambda: False)
    monkeypatch.setattr(compute, "devices", lambda supported=True: [CPU])
    done = CliRunner().invoke(cli.cli, ["--models", str(manifest), "models"], env=env)
    assert "compute    tiny: CPU (llama.cpp built without GPU offload)" in done.output


def test_rag_models_names_a_served_generator(tmp_path):
    from click.testing import CliRunner

    from rag import cli

    manifest = tmp_path / "models.txt"
    manifest.write_text("generator far openai:http://127.0.0.1:9/v1\n")
    done = CliRunner().invoke(cli.cli, ["--models", str(manifest), "models"], env={"RAG_GENERATOR": "far"})
    assert "compute    far: served by http://127.0.0.1:9/v1" in done.output, done.output


def test_ask_json_has_the_compute_object(engine_factory, monkeypatch):
    from click.testing import CliRunner

    from rag import cli
    from rag.pipeline import Engine

    engine = engine_factory("La boulangerie Martin emploie 12 personnes.", answer_mode="generate")
    engine._generator.compute = compute.describe(None, -1, True, [CPU, H100], 30)  # as LlamaGenerator sets it
    monkeypatch.setattr(Engine, "load", lambda settings: engine)
    done = CliRunner().invoke(cli.cli, ["ask", "--json", "Combien de personnes emploie la boulangerie Martin ?"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["compute"] == {
        "backend": "CUDA", "gpu_layers_requested": "auto", "gpu_layers": -1, "layers_offloaded": 31, "layers": 31,
        "devices": ["NVIDIA H100 80GB HBM3"]}


def test_ask_json_without_the_model_says_it_was_not_loaded(engine_factory, monkeypatch):
    from click.testing import CliRunner

    from rag import cli
    from rag.pipeline import Engine

    engine = engine_factory(use_llm=False)
    engine._generator = None  # --no-llm: no model is loaded to answer
    monkeypatch.setattr(Engine, "load", lambda settings: engine)
    done = CliRunner().invoke(cli.cli, ["ask", "--json", "--no-llm", "Combien de personnes emploie la boulangerie Martin ?"])
    assert done.exit_code == 0, done.output
    found = json.loads(done.output)["compute"]
    assert found["backend"] is None and found["layers_offloaded"] is None


@pytest.mark.integration
def test_the_real_generator_reports_the_cpu_here(tmp_path):
    """On this CPU-only build the real model loads with 0 layers offloaded and says why."""
    from rag import models
    from rag.generation import LlamaGenerator
    from tests.conftest import ROOT

    entry = models.find_entry(models.read_manifest(ROOT / "models.txt"), "smollm2-135m", "generator")
    path = models.resolve(entry, ROOT, tmp_path)
    generator = LlamaGenerator("smollm2-135m", Path(path), n_ctx=512, n_gpu_layers=Settings().n_gpu_layers)
    if compute.offload_supported():
        pytest.skip("this llama.cpp can offload: the GPU side is checked on a GPU machine")
    assert generator.compute.line() == "CPU (llama.cpp built without GPU offload)"
    assert generator.compute.as_json()["layers"] == 31 and generator.compute.as_json()["layers_offloaded"] == 0


def test_a_model_that_fails_to_load_with_offload_says_to_offload_fewer_layers(tmp_path, monkeypatch):
    """llama.cpp 0.3.36 does not fit layers to the GPU's memory: a load that fails with layers on
    the GPU says which setting gives fewer (faked: a file llama.cpp cannot read, on a build said
    to offload)."""
    from rag.errors import ModelError
    from rag.generation import LlamaGenerator

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF not really")
    monkeypatch.setattr(compute, "offload_supported", lambda: True)
    with pytest.raises(ModelError, match="every layer on the GPU: .* set RAG_N_GPU_LAYERS to fewer"):
        LlamaGenerator("bad", bad)
    with pytest.raises(ModelError, match="12 layers on the GPU"):
        LlamaGenerator("bad", bad, n_gpu_layers=12)
    monkeypatch.setattr(compute, "offload_supported", lambda: False)
    with pytest.raises(ModelError) as caught:
        LlamaGenerator("bad", bad)
    assert "RAG_N_GPU_LAYERS" not in str(caught.value)
