"""A llama.cpp build that crashes on this CPU must not take the assistant down.

The crashing case is simulated for real: the probe's child is a Python process that kills itself
with SIGSEGV in the default configuration, as a library with AMX kernels does in a sandbox that does
not grant AMX. Everything else (running the children, reading the signal, choosing, remembering) is
the code under test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rag import llama_build, llama_probe
from rag.errors import ModelError

# Stands in for `python -m rag.llama_probe MODEL [--safe]` on a CPU where the default kernels fault.
CRASHING_CHILD = """
import os, signal, sys
if sys.argv[1] == "default" and "{default}" == "crash" or sys.argv[1] == "safe" and "{safe}" == "crash":
    os.kill(os.getpid(), signal.SIGSEGV)
if sys.argv[1] == "default" and "{default}" == "error":
    sys.exit("ValueError: Failed to load model from file")
"""


def child(default: str = "ok", safe: str = "ok"):
    script = CRASHING_CHILD.format(default=default, safe=safe)
    return lambda model, is_safe, n_gpu_layers: [sys.executable, "-c", script, "safe" if is_safe else "default"]


class CountingRunner:
    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command):
        self.commands.append(list(command))
        return llama_probe.run_probe(command, timeout=60)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF not really")
    return path


def test_a_crash_in_the_default_configuration_falls_back_to_the_safe_one_and_says_so(tmp_path, model):
    runner = CountingRunner()
    choice = llama_probe.choose_load(model, 0, tmp_path / "cache", runner=runner, command=child(default="crash"))
    assert choice.use_extra_bufts is False
    assert "SIGSEGV" in choice.notice and "safe configuration" in choice.notice
    assert len(runner.commands) == 2  # default, then safe
    # Remembered: the next load probes nothing and gives the same choice and notice.
    again = llama_probe.choose_load(model, 0, tmp_path / "cache", runner=runner, command=child(default="crash"))
    assert again == choice and len(runner.commands) == 2


def test_a_clean_default_is_remembered(tmp_path, model):
    runner = CountingRunner()
    first = llama_probe.choose_load(model, 0, tmp_path, runner=runner, command=child())
    second = llama_probe.choose_load(model, 0, tmp_path, runner=runner, command=child())
    assert first == second == llama_probe.LoadChoice(True)
    assert len(runner.commands) == 1


def test_a_changed_model_file_is_probed_again(tmp_path, model):
    runner = CountingRunner()
    llama_probe.choose_load(model, 0, tmp_path, runner=runner, command=child())
    model.write_bytes(b"GGUF another model, another size")
    llama_probe.choose_load(model, 0, tmp_path, runner=runner, command=child())
    assert len(runner.commands) == 2


def test_crashing_in_both_configurations_is_a_clear_error(tmp_path, model):
    with pytest.raises(ModelError, match=r"crashes on this CPU.*SIGSEGV.*scripts/build-llama"):
        llama_probe.choose_load(model, 0, tmp_path, runner=CountingRunner(), command=child("crash", "crash"))


def test_an_ordinary_load_error_is_left_to_the_real_load_and_remembered(tmp_path, model):
    runner = CountingRunner()
    choice = llama_probe.choose_load(model, 0, tmp_path, runner=runner, command=child(default="error"))
    assert choice == llama_probe.LoadChoice(True)
    llama_probe.choose_load(model, 0, tmp_path, runner=runner, command=child(default="error"))
    assert len(runner.commands) == 1  # not probed again for the same file; a fixed file has another key


def test_a_damaged_probe_file_means_probing_again(tmp_path, model):
    (tmp_path / llama_probe.PROBE_FILE).write_bytes(b"\xff\x00 not json")
    runner = CountingRunner()
    assert llama_probe.choose_load(model, 0, tmp_path, runner=runner, command=child()).use_extra_bufts
    assert len(runner.commands) == 1


def test_run_probe_names_the_signal_and_the_error():
    crash = llama_probe.run_probe([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"])
    assert not crash.ok and crash.crashed and crash.detail == "killed by SIGILL"
    error = llama_probe.run_probe([sys.executable, "-c", "raise SystemExit('bad magic')"])
    assert not error.ok and not error.crashed and error.detail == "exit 1: bad magic"
    slow = llama_probe.run_probe([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.5)
    assert slow.detail == "timed out" and not slow.crashed


def test_the_portability_check_reads_the_compiled_instruction_set():
    native_xeon = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 |"
    assert llama_build.portability_problems(llama_build.parse_system_info(native_xeon), "x86_64") == [
        "compiled with AVX512", "compiled with AMX_INT8"]
    portable = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | REPACK = 1 |"
    assert llama_build.portability_problems(llama_build.parse_system_info(portable), "x86_64") == []
    assert llama_build.portability_problems({"SSE3": "1"}, "x86_64") == ["compiled without AVX2"]


@pytest.mark.integration
def test_the_real_model_under_a_simulated_crash_loads_safely_and_answers(tmp_path, monkeypatch, caplog):
    """The whole chain with the real SmolLM2 and the real llama.cpp: the probe's default child
    crashes, the generator is loaded in the safe configuration, warns, and still generates."""
    from tests.conftest import ROOT

    from rag.pipeline import load_configured_generator
    from rag.settings import Settings

    monkeypatch.setattr(llama_probe, "probe_command", child(default="crash"))
    settings = Settings(manifest_path=ROOT / "models.txt", models_dir=tmp_path, generator="smollm2-135m")
    with caplog.at_level("WARNING", logger="rag"):
        generator = load_configured_generator(settings)
    assert any("SIGSEGV" in record.getMessage() for record in caplog.records)
    assert "".join(generator.stream("The capital of France is", 4, 0.0)).strip()


@pytest.mark.integration
def test_the_real_probe_passes_the_installed_build_on_this_cpu(tmp_path):
    """The installed library is the portable build, and its probe child runs the real model."""
    from tests.conftest import ROOT

    from rag import models

    assert llama_build.portability_problems(llama_build.installed_features()) == []
    entry = models.find_entry(models.read_manifest(ROOT / "models.txt"), "smollm2-135m", "generator")
    path = models.resolve(entry, ROOT, tmp_path)
    result = llama_probe.run_probe(llama_probe.probe_command(path, False, 0))
    assert result.ok, result.detail
    assert llama_probe.run_probe(llama_probe.probe_command(path, True, 0)).ok


@pytest.mark.integration
def test_models_check_probes_once_and_remembers(tmp_path):
    from tests.test_cli import rag

    env = {"RAG_MODELS_DIR": str(tmp_path)}
    done = rag("models", "check", "smollm2-135m", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "smollm2-135m: loads and generates with llama.cpp's default kernels on this CPU"
    assert done.stdout.splitlines()[1].startswith("smollm2-135m: compute: ")  # CPU here (tests/test_compute.py)
    assert (tmp_path / llama_probe.PROBE_FILE).is_file()
