"""`RAG_GPU=cuda bash scripts/install`, on fakes: the prerequisite checks (rag/gpu_check.py) with
every probe of the machine injected, then the real install and build-llama scripts run in a copy
of the project with fake nvcc, nvidia-smi and a fake virtual environment on PATH (no GPU, no
compiler, nothing installed: the fake `python` only records what it was asked to do)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rag import gpu_check
from tests.conftest import ROOT

TOOLKIT = "/opt/cuda-13.0"
NVCC = f"{TOOLKIT}/bin/nvcc"
NVCC_VERSION = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 13.0, V13.0.88\n"
ARCHS_13 = "\n".join(f"compute_{a}" for a in (75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121))
H100 = "NVIDIA H100 80GB HBM3, 9.0, 580.65.06\n"


class Machine:
    """A fake machine for `check_cuda`: the programs on PATH, what they print, the files there."""

    def __init__(self, programs=("nvcc", "nvidia-smi"), smi=H100, nvcc_version=NVCC_VERSION, archs=ARCHS_13,
                 files=(f"{TOOLKIT}/lib64/libcublas.so", f"{TOOLKIT}/lib64/libcublas.so.13"), libcuda=True):
        self.programs, self.smi, self.nvcc_version, self.archs = set(programs), smi, nvcc_version, archs
        self.files, self.libcuda = set(files), libcuda
        self.ran: list[list[str]] = []

    def which(self, name):
        return {"nvcc": NVCC, "nvidia-smi": "/usr/bin/nvidia-smi"}.get(name) if name in self.programs else None

    def run(self, command):
        self.ran.append(list(command))
        if command[0].endswith("nvidia-smi"):
            return (0, self.smi) if self.smi is not None else (9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")
        if command[1:] == ["--version"]:
            return 0, self.nvcc_version
        if command[1] == "--dryrun":
            return 0, f"#$ _HERE_={TOOLKIT}/bin\n#$ TOP={TOOLKIT}/bin/..\n"
        if command[1:] == ["--list-gpu-arch"]:
            return 0, self.archs
        return 1, "unknown"

    def glob(self, pattern):
        import fnmatch

        return [f for f in self.files if fnmatch.fnmatch(f, pattern)]

    def probes(self, environ=None):
        return dict(which=self.which, run=self.run, find=self.glob,
                    find_library=lambda name: "libcuda.so.1" if self.libcuda and name == "cuda" else None,
                    environ=environ or {}, exists=lambda path: False)


def checks(report) -> dict[str, gpu_check.Check]:
    return {c.name: c for c in report.checks}


def test_all_present_gives_the_cmake_args_for_the_visible_gpu():
    report = gpu_check.check_cuda(**Machine().probes())
    assert report.ok, report.checks
    assert report.cuda_version == (13, 0)
    assert report.cmake_args() == "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90"
    found = checks(report)
    assert found["cuBLAS"].detail == f"{TOOLKIT}/lib64/libcublas.so"
    assert "580.65.06" in found["driver"].detail
    assert "NVIDIA H100 80GB HBM3, compute capability 9.0 -> -DCMAKE_CUDA_ARCHITECTURES=90" in found["GPU"].detail


def test_missing_nvcc_is_named_and_everything_else_still_checked():
    report = gpu_check.check_cuda(**Machine(programs=("nvidia-smi",)).probes())
    found = checks(report)
    assert not report.ok
    assert not found["nvcc"].ok and "install the CUDA toolkit" in found["nvcc"].detail
    assert not found["cuBLAS"].ok
    assert found["driver"].ok and found["GPU"].ok  # the rest is reported as it is


def test_nvcc_off_path_is_found_in_cuda_home_and_given_to_cmake():
    machine = Machine(programs=("nvidia-smi",))
    probes = machine.probes({"CUDA_HOME": TOOLKIT})
    probes["exists"] = lambda path: path == NVCC
    report = gpu_check.check_cuda(**probes)
    assert report.ok, report.checks
    assert report.cmake_args().endswith(f"-DCMAKE_CUDA_COMPILER={NVCC}")


def test_missing_cublas_is_named():
    """The failure of the H100 trial: a toolkit without cuBLAS fails at link time after minutes."""
    report = gpu_check.check_cuda(**Machine(files=()).probes())
    assert not report.ok
    assert "no libcublas.so in the toolkit at /opt/cuda-13.0" in checks(report)["cuBLAS"].detail


def test_a_runtime_only_cublas_is_not_enough_to_link():
    report = gpu_check.check_cuda(**Machine(files=(f"{TOOLKIT}/targets/x86_64-linux/lib/libcublas.so.13",)).probes())
    detail = checks(report)["cuBLAS"].detail
    assert not report.ok and "only libcublas.so.13" in detail and "development package" in detail


def test_cublas_in_the_targets_folder_is_found():
    report = gpu_check.check_cuda(**Machine(files=(f"{TOOLKIT}/targets/x86_64-linux/lib/libcublas.so",)).probes())
    assert report.ok, report.checks


def test_a_gpu_older_than_turing_with_cuda_13():
    report = gpu_check.check_cuda(**Machine(smi="Tesla V100-SXM2-16GB, 7.0, 580.65.06\n").probes())
    assert not report.ok
    assert "compute capability 7.0: CUDA 13 dropped GPUs older than Turing (7.5)" in checks(report)["GPU"].detail


def test_an_old_gpu_is_fine_with_cuda_12():
    archs_12 = "\n".join(f"compute_{a}" for a in (50, 52, 60, 61, 70, 75, 80, 86, 89, 90))
    report = gpu_check.check_cuda(**Machine(smi="Tesla V100-SXM2-16GB, 7.0, 550.1\n", archs=archs_12,
                                            nvcc_version="Cuda compilation tools, release 12.4, V12.4.131").probes())
    assert report.ok, report.checks
    assert report.cmake_args() == "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=70"


def test_a_gpu_newer_than_the_toolkit():
    archs_12 = "\n".join(f"compute_{a}" for a in (50, 60, 70, 75, 80, 86, 89, 90))
    report = gpu_check.check_cuda(**Machine(smi="NVIDIA GeForce RTX 5090, 12.0, 575.1\n", archs=archs_12,
                                            nvcc_version="Cuda compilation tools, release 12.4, V12.4.131").probes())
    assert not report.ok and "cannot compile for: install a newer CUDA toolkit" in checks(report)["GPU"].detail


def test_two_kinds_of_gpu_get_both_architectures():
    report = gpu_check.check_cuda(**Machine(smi="NVIDIA RTX A6000, 8.6, 580.1\n" + H100).probes())
    assert report.cmake_args() == "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=86;90"


def test_no_driver():
    report = gpu_check.check_cuda(**Machine(programs=("nvcc",), libcuda=False).probes())
    assert "no NVIDIA driver" in checks(report)["driver"].detail and not checks(report)["GPU"].ok


def test_a_driver_that_does_not_answer():
    report = gpu_check.check_cuda(**Machine(smi=None).probes())
    assert "couldn't communicate with the NVIDIA driver" in checks(report)["driver"].detail


def test_a_driver_older_than_the_toolkit_needs():
    """A CUDA 13 build on a 570 driver compiles, then finds no GPU at run time."""
    report = gpu_check.check_cuda(**Machine(smi="NVIDIA H100 80GB HBM3, 9.0, 570.86.10\n").probes())
    assert not report.ok
    assert "driver 570.86.10 is older than CUDA 13.0 needs (580 or newer)" in checks(report)["driver"].detail


def test_an_nvidia_smi_too_old_for_compute_cap():
    machine = Machine()
    machine.smi = None
    machine.run = lambda command: (2, 'Field "compute_cap" is not a valid field to query.') \
        if command[0].endswith("nvidia-smi") else Machine.run(machine, command)
    detail = checks(gpu_check.check_cuda(**machine.probes()))["driver"].detail
    assert "cannot report the compute capability" in detail and "525 or newer" in detail


def test_libcuda_without_nvidia_smi_points_to_rag_cuda_architectures():
    report = gpu_check.check_cuda(**Machine(programs=("nvcc",)).probes())
    assert "RAG_CUDA_ARCHITECTURES" in checks(report)["driver"].detail


def test_architectures_given_by_hand_skip_the_gpu_query():
    machine = Machine(programs=("nvcc",), libcuda=False)
    report = gpu_check.check_cuda(**machine.probes({"RAG_CUDA_ARCHITECTURES": "89;90"}))
    assert report.ok and report.cmake_args() == "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=89;90"
    assert not any(c[0].endswith("nvidia-smi") for c in machine.ran)
    bad = gpu_check.check_cuda(**machine.probes({"RAG_CUDA_ARCHITECTURES": "9.0"}))
    assert not bad.ok and "without the dot" in checks(bad)["GPU"].detail


def test_main_prints_one_line_per_check_and_the_args_alone_on_stdout():
    out, err = io.StringIO(), io.StringIO()
    assert gpu_check.main(["cuda", "--cmake-args"], out, err, **Machine().probes()) == 0
    assert out.getvalue() == "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90\n"
    assert [line.split()[2] for line in err.getvalue().splitlines()] == ["nvcc", "cuBLAS", "driver", "GPU"]

    out, err = io.StringIO(), io.StringIO()
    assert gpu_check.main(["cuda", "--cmake-args"], out, err, **Machine(files=()).probes()) == 1
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert lines[1].startswith("gpu check: cuBLAS  MISSING  ")
    assert lines[-1].startswith("gpu check: 1 prerequisite missing for the CUDA build; nothing was built")


@pytest.mark.parametrize("argv", [[], ["rocm"], ["cuda", "--nope"]])
def test_main_usage(argv):
    err = io.StringIO()
    assert gpu_check.main(argv, io.StringIO(), err, **Machine().probes()) == 2
    assert err.getvalue().startswith("usage: python -m rag.gpu_check cuda")


# ---------------------------------------------------------------- the scripts, with fake programs

FAKE_PYTHON = r"""#!/usr/bin/env bash
# A stand-in for the environment's python: records each call (with CMAKE_ARGS), fakes a wheel build.
echo "python $* | CMAKE_ARGS=${CMAKE_ARGS:-}" >> "$FAKE_LOG"
if [ "$1 $2 $3" = "-m pip wheel" ]; then
  out=""; prev=""
  for arg in "$@"; do [ "$prev" = "-w" ] && out=$arg; prev=$arg; done
  for step in 1 120 339; do echo "[$step/339] Building CUDA object ggml-cuda.cu.o"; sleep "${FAKE_STEP_S:-0}"; done
  if [ -n "${FAKE_BUILD_FAILS:-}" ]; then
    echo 'CMake Error: Target "ggml-cuda" links to: CUDA::cublas but the target was not found.'
    exit 1
  fi
  touch "$out/llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl"
fi
exit 0
"""

FAKE_NVCC = r"""#!/usr/bin/env bash
case "$1" in
  --version) echo "Cuda compilation tools, release 13.0, V13.0.88" ;;
  --dryrun) echo "#\$ TOP=$(dirname "$(readlink -f "$0")")/.." ;;
  --list-gpu-arch) printf 'compute_%s\n' 75 80 86 89 90 100 120 ;;
esac
"""


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def project(tmp_path):
    """A copy of the project's scripts and what they read, a fake environment already made (so
    the install does not create a real one), fake CUDA tools, and a PATH holding only those and
    the basic system tools."""
    root = tmp_path / "project"
    (root / "rag").mkdir(parents=True)
    shutil.copytree(ROOT / "scripts", root / "scripts")
    shutil.copy(ROOT / "pyproject.toml", root)
    for name in ("__init__.py", "gpu_check.py"):
        shutil.copy(ROOT / "rag" / name, root / "rag" / name)
    venv = root / ".venv" / "bin"
    executable(venv / "python", FAKE_PYTHON)
    executable(venv / "rag", '#!/usr/bin/env bash\necho "rag $*" >> "$FAKE_LOG"\n')
    (venv / "activate").write_text(f'export PATH="{venv}:$PATH"\n')
    tools = tmp_path / "tools"
    executable(tools / "cuda" / "bin" / "nvcc", FAKE_NVCC)
    (tools / "cuda" / "lib64").mkdir(parents=True)
    (tools / "cuda" / "lib64" / "libcublas.so").write_bytes(b"")
    executable(tools / "bin" / "nvidia-smi", f'#!/usr/bin/env bash\necho "{H100.strip()}"\n')
    os.symlink(tools / "cuda" / "bin" / "nvcc", tools / "bin" / "nvcc")
    return root, tools


def install(project, gpu: str | None, **env) -> tuple[subprocess.CompletedProcess, str]:
    root, tools = project
    log = root.parent / "calls.log"
    log.write_text("")
    full = {"PATH": f"{tools / 'bin'}:/usr/bin:/bin", "HOME": str(root.parent), "XDG_CACHE_HOME": str(root.parent / "cache"),
            "FAKE_LOG": str(log), "PYTHON": sys.executable, "RAG_LLAMA_PROGRESS_S": "1", **env}
    if gpu is not None:
        full["RAG_GPU"] = gpu
    done = subprocess.run(["bash", str(root / "scripts" / "install")], capture_output=True, text=True, env=full,
                          timeout=120)
    return done, log.read_text()


def test_gpu_install_checks_then_builds_the_pinned_version_for_the_gpu(project):
    done, calls = install(project, "cuda", FAKE_STEP_S="0.8")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "gpu check: cuBLAS  ok" in done.stderr
    wheel = next(line for line in calls.splitlines() if " pip wheel " in line)
    assert "-v " in wheel and "--no-deps" in wheel and "llama-cpp-python==0.3.36" in wheel  # pinned, shown, no deps
    assert "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90" in wheel
    assert "-DGGML_NATIVE=OFF" in wheel and "-DGGML_AVX512=OFF" in wheel  # the CPU side stays portable
    assert "still building" in done.stdout and "step [" in done.stdout  # progress while it builds
    assert any("--force-reinstall --no-deps" in line and ".whl" in line for line in calls.splitlines())
    assert "python -m rag.llama_build --check portable --gpu" in calls
    assert "download.pytorch.org" not in calls and "torch==2.13.0" in calls  # torch as for the CPU
    assert calls.splitlines()[-1].startswith("rag models check")
    cached = list((project[0].parent / "cache" / "rag" / "wheels").iterdir())
    assert [p.name.startswith("llama-cpp-python-0.3.36-portable-gpu-") for p in cached] == [True]


def test_gpu_install_stops_before_installing_anything_when_cublas_is_missing(project):
    (project[1] / "cuda" / "lib64" / "libcublas.so").unlink()
    done, calls = install(project, "cuda")
    assert done.returncode == 1
    assert "gpu check: cuBLAS  MISSING  no libcublas.so" in done.stderr
    assert "nothing was built" in done.stderr and "Traceback" not in done.stderr
    assert calls == ""  # not a pip call, not a build


def test_gpu_install_names_a_missing_driver(project):
    (project[1] / "bin" / "nvidia-smi").unlink()
    done, calls = install(project, "cuda")
    assert done.returncode == 1 and calls == ""
    assert "gpu check: driver  MISSING" in done.stderr


def test_a_failed_gpu_build_shows_the_end_of_its_log(project):
    done, _ = install(project, "cuda", FAKE_BUILD_FAILS="1")
    assert done.returncode == 1
    assert "the build failed" in done.stderr and "CUDA::cublas but the target was not found" in done.stderr
    kept = [p.name for p in (project[0].parent / "cache" / "rag" / "wheels").iterdir()]
    assert kept and all(name.endswith(".partial") for name in kept)  # a failed build is never reused


def test_without_rag_gpu_the_install_is_the_cpu_one(project):
    done, calls = install(project, None)
    assert done.returncode == 0, done.stderr
    assert "gpu check" not in done.stderr + done.stdout
    wheel = next(line for line in calls.splitlines() if " pip wheel " in line)
    assert "--quiet" in wheel and "GGML_CUDA" not in wheel
    assert "python -m rag.llama_build --check portable | " in calls  # no --gpu
    cached = [p.name for p in (project[0].parent / "cache" / "rag" / "wheels").iterdir()]
    assert len(cached) == 1 and cached[0].startswith("llama-cpp-python-0.3.36-portable-") and "-gpu-" not in cached[0]


def test_an_unknown_rag_gpu_is_one_line(project):
    done, calls = install(project, "rocm")
    assert done.returncode == 2 and calls == ""
    assert done.stderr.strip() == "install: RAG_GPU must be 'cuda' (or unset for the CPU build), not 'rocm'"



CUDA_INFO = ("CUDA : ARCHS = 900 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | "
             "AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")


def test_the_build_check_requires_the_gpu_backend_when_asked(monkeypatch, capsys):
    """After a GPU build, build-llama runs `--check portable --gpu`: a CUDA build that came out
    CPU-only fails it; a portable CUDA build passes and says which architectures it holds."""
    from rag import llama_build

    monkeypatch.setattr(llama_build, "system_info", lambda: CUDA_INFO)
    assert llama_build.main(["--check", "portable", "--gpu"]) == 0
    assert capsys.readouterr().out.strip() == \
        "llama.cpp (portable build): SSE3 SSSE3 AVX AVX2 F16C FMA BMI2; GPU backend CUDA (ARCHS 900)"
    monkeypatch.setattr(llama_build, "system_info", lambda: "CPU : SSE3 = 1 | AVX2 = 1 | FMA = 1 | ")
    assert llama_build.main(["--check", "portable", "--gpu"]) == 1
    assert "built without a GPU backend (it has: CPU)" in capsys.readouterr().err
    assert llama_build.main(["--check", "portable"]) == 0
    assert llama_build.main(["--check", "portable", "--cuda"]) == 2
