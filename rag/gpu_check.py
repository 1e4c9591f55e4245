"""What a CUDA build of llama.cpp needs, checked before anything is built.

`RAG_GPU=cuda bash scripts/install` runs `python -m rag.gpu_check cuda --cmake-args` first: one
line per prerequisite on stderr (the CUDA toolkit's nvcc and its version, cuBLAS, the NVIDIA driver,
each GPU's compute capability), and on stdout the CMake flags for the visible GPUs
(`-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90`). Without every prerequisite it names what is
missing and exits 1, so the 5-minute build never starts only to fail at link time
(`Target "ggml-cuda" links to: CUDA::cublas but the target was not found`).

Standard library only: it runs with the system Python before the virtual environment exists.
Every probe of the machine (`which`, running a command, listing files, finding a library) is a
parameter, so the tests run it on fakes.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TURING = (7, 5)  # CUDA 13 builds for compute capability 7.5 and newer only
# The oldest driver each CUDA major version runs on (NVIDIA's minor-version compatibility):
# a library built with CUDA 13 on a 570 driver compiles, then finds no GPU at run time.
MIN_DRIVER = {12: 525, 13: 580}
DRIVER_QUERY = ["--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"]

Which = Callable[[str], "str | None"]
Run = Callable[[Sequence[str]], "tuple[int, str]"]  # (exit status, stdout + stderr)
Glob = Callable[[str], "list[str]"]
FindLibrary = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Check:
    name: str  # "nvcc", "cuBLAS", "driver", "GPU"
    ok: bool
    detail: str

    def line(self) -> str:
        return f"gpu check: {self.name:<7} {'ok' if self.ok else 'MISSING':<8} {self.detail}"


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    nvcc: str | None = None
    cuda_version: tuple[int, int] | None = None
    architectures: list[str] = field(default_factory=list)  # "90", "86"
    nvcc_on_path: bool = True

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def cmake_args(self) -> str:
        """The flags for scripts/build-llama (RAG_LLAMA_GPU_ARGS).

        >>> Report(architectures=["86", "90"]).cmake_args()
        '-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=86;90'
        """
        args = ["-DGGML_CUDA=on", f"-DCMAKE_CUDA_ARCHITECTURES={';'.join(self.architectures)}"]
        if self.nvcc and not self.nvcc_on_path:  # CMake looks for nvcc on PATH only
            args.append(f"-DCMAKE_CUDA_COMPILER={self.nvcc}")
        return " ".join(args)


def run_command(command: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return done.returncode, done.stdout + done.stderr


def find_nvcc(which: Which, environ: Mapping[str, str], exists: Callable[[str], bool]) -> tuple[str | None, bool]:
    """nvcc, and whether it is on PATH: PATH first, then $CUDA_HOME, $CUDA_PATH, /usr/local/cuda."""
    found = which("nvcc")
    if found:
        return found, True
    for root in (environ.get("CUDA_HOME"), environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and exists(os.path.join(root, "bin", "nvcc")):
            return os.path.join(root, "bin", "nvcc"), False
    return None, False


def parse_nvcc_version(text: str) -> tuple[int, int] | None:
    """The CUDA version in `nvcc --version`.

    >>> parse_nvcc_version("Cuda compilation tools, release 13.0, V13.0.88")
    (13, 0)
    """
    match = re.search(r"release (\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def toolkit_root(nvcc: str, run: Run) -> str:
    """The toolkit `nvcc` belongs to, as nvcc itself reports it (`#$ TOP=...` of a dry run: it
    sees through a wrapper script such as /usr/local/bin/nvcc); else the folder above its bin/."""
    status, out = run([nvcc, "--dryrun", "-E", "-x", "cu", os.devnull])
    match = re.search(r"^#\$ TOP=(.+)$", out, re.MULTILINE) if status == 0 else None
    if match:
        return os.path.normpath(match.group(1).strip())
    return str(Path(nvcc).resolve().parent.parent)


def toolkit_lib_patterns(root: str) -> list[str]:
    """Where a toolkit keeps libcublas.so (NVIDIA's layout, /usr/local/cuda/lib64 ->
    targets/<arch>/lib, or a distribution's, /usr/lib/<multiarch>).

    >>> toolkit_lib_patterns("/usr/local/cuda")[0]
    '/usr/local/cuda/lib64/libcublas.so*'
    """
    return [os.path.join(root, "lib64", "libcublas.so*"), os.path.join(root, "lib", "libcublas.so*"),
            os.path.join(root, "targets", "*", "lib", "libcublas.so*"),
            os.path.join(root, "lib", "*-linux-gnu", "libcublas.so*")]


def check_cublas(root: str, find: Glob) -> Check:
    """The unversioned libcublas.so is the one the build links against (CMake's CUDA::cublas);
    a runtime-only install has just libcublas.so.13."""
    found = sorted({path for pattern in toolkit_lib_patterns(root) for path in find(pattern)})
    link = [p for p in found if p.endswith("libcublas.so")]
    if link:
        return Check("cuBLAS", True, link[0])
    if found:
        return Check("cuBLAS", False, f"only {Path(found[0]).name} (the runtime) in {Path(found[0]).parent}; the build "
                                      "links against libcublas.so: install the toolkit's cuBLAS development package "
                                      "(libcublas-dev)")
    return Check("cuBLAS", False, f"no libcublas.so in the toolkit at {root} (lib64, targets/*/lib): install cuBLAS "
                                  "with the CUDA toolkit (the full toolkit, not only nvcc)")


@dataclass(frozen=True)
class Gpu:
    name: str
    capability: tuple[int, int]
    driver: str

    @property
    def architecture(self) -> str:
        """The compute capability as CMake spells it.

        >>> Gpu("H100", (9, 0), "580").architecture
        '90'
        """
        return f"{self.capability[0]}{self.capability[1]}"


def parse_gpus(text: str) -> list[Gpu]:
    """The lines of `nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader`.

    >>> parse_gpus("NVIDIA H100 80GB HBM3, 9.0, 580.65.06\\n")
    [Gpu(name='NVIDIA H100 80GB HBM3', capability=(9, 0), driver='580.65.06')]
    """
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue
        match = re.fullmatch(r"(\d+)\.(\d+)", parts[1])
        if match:
            gpus.append(Gpu(parts[0], (int(match.group(1)), int(match.group(2))), parts[2]))
    return gpus


def check_driver(which: Which, run: Run, find_library: FindLibrary) -> tuple[Check, list[Gpu]]:
    """The NVIDIA driver: nvidia-smi lists the GPUs (with their compute capability); without it,
    libcuda alone says a driver is there but not which GPUs."""
    smi = which("nvidia-smi")
    if smi:
        status, out = run([smi, *DRIVER_QUERY])
        gpus = parse_gpus(out) if status == 0 else []
        if gpus:
            return Check("driver", True, f"NVIDIA driver {gpus[0].driver} (nvidia-smi)"), gpus
        reason = (out.strip().splitlines() or ["no GPU listed"])[-1][:160]
        if "compute_cap" in out:  # the field came with driver 510
            return Check("driver", False, f"this driver's nvidia-smi cannot report the compute capability ({reason}): "
                                          "the driver is older than CUDA 12 needs (525 or newer); update it, or "
                                          "set RAG_CUDA_ARCHITECTURES"), []
        return Check("driver", False, f"nvidia-smi found no usable GPU ({reason}): is the NVIDIA driver loaded, "
                                      "and the GPU visible to this machine or container?"), []
    if find_library("cuda"):
        return Check("driver", False, "libcuda is there but not nvidia-smi, so the GPUs and their compute "
                                      "capability cannot be read: install the driver's utilities "
                                      "(nvidia-utils), or set RAG_CUDA_ARCHITECTURES (e.g. 90)"), []
    return Check("driver", False, "no NVIDIA driver: nvidia-smi not found and libcuda not loadable; install the "
                                  "NVIDIA driver for this GPU"), []


def driver_too_old(driver: str, cuda: tuple[int, int] | None) -> str:
    """Why this driver cannot run what this toolkit builds ('' when it can, or when unknown).

    >>> driver_too_old("570.86.10", (13, 0))
    'NVIDIA driver 570.86.10 is older than CUDA 13.0 needs (580 or newer): update the driver, or build with a CUDA 12 toolkit'
    >>> driver_too_old("580.65.06", (13, 0)), driver_too_old("550.1", (12, 4))
    ('', '')
    """
    match = re.match(r"(\d+)", driver)
    least = MIN_DRIVER.get(cuda[0]) if cuda else None
    if not match or least is None or int(match.group(1)) >= least:
        return ""
    older = " or build with a CUDA 12 toolkit" if cuda[0] >= 13 else ""
    return (f"NVIDIA driver {driver} is older than CUDA {cuda[0]}.{cuda[1]} needs ({least} or newer): "
            f"update the driver,{older}").rstrip(",")


def check_gpus(gpus: list[Gpu], cuda: tuple[int, int] | None, known_archs: set[str] | None) -> tuple[Check, list[str]]:
    """Each GPU's compute capability against what this toolkit can build for."""
    problems = []
    for gpu in gpus:
        if cuda is not None and cuda[0] >= 13 and gpu.capability < TURING:
            problems.append(f"{gpu.name} has compute capability {gpu.capability[0]}.{gpu.capability[1]}: CUDA 13 "
                            "dropped GPUs older than Turing (7.5); install a CUDA 12 toolkit for it")
        elif known_archs is not None and gpu.architecture not in known_archs:
            problems.append(f"{gpu.name} has compute capability {gpu.capability[0]}.{gpu.capability[1]}, which "
                            f"nvcc {cuda[0] if cuda else '?'}.{cuda[1] if cuda else '?'} cannot compile for: "
                            "install a newer CUDA toolkit")
    archs = sorted({g.architecture for g in gpus}, key=int)
    names = "; ".join(f"{g.name}, compute capability {g.capability[0]}.{g.capability[1]}" for g in gpus)
    if problems:
        return Check("GPU", False, " / ".join(problems)), archs
    return Check("GPU", True, f"{names} -> -DCMAKE_CUDA_ARCHITECTURES={';'.join(archs)}"), archs


def nvcc_architectures(nvcc: str, run: Run) -> set[str] | None:
    """The compute capabilities nvcc can build for ("compute_90" -> "90"); None when it does not say."""
    status, out = run([nvcc, "--list-gpu-arch"])
    found = set(re.findall(r"compute_(\d+)", out)) if status == 0 else set()
    return found or None


def check_cuda(which: Which = shutil.which, run: Run = run_command, find: Glob = glob.glob,
               find_library: FindLibrary = ctypes.util.find_library,
               environ: Mapping[str, str] | None = None, exists: Callable[[str], bool] = os.path.exists) -> Report:
    """Every prerequisite of the CUDA build, each one checked even when an earlier one is missing,
    so the user sees all that is missing at once."""
    environ = os.environ if environ is None else environ
    report = Report()
    nvcc, on_path = find_nvcc(which, environ, exists)
    if nvcc is None:
        report.checks.append(Check("nvcc", False, "no nvcc on PATH, in $CUDA_HOME/bin nor in /usr/local/cuda/bin: "
                                                  "install the CUDA toolkit (12.x or 13.x) and put its bin folder on PATH"))
        report.checks.append(Check("cuBLAS", False, "not checked: it comes with the CUDA toolkit"))
    else:
        status, out = run([nvcc, "--version"])
        version = parse_nvcc_version(out) if status == 0 else None
        report.nvcc, report.nvcc_on_path, report.cuda_version = nvcc, on_path, version
        shown = f"CUDA {version[0]}.{version[1]}" if version else "version unknown"
        report.checks.append(Check("nvcc", version is not None, f"{nvcc} ({shown})" if version else
                                   f"{nvcc} does not run ({(out.strip().splitlines() or ['?'])[-1][:120]})"))
        report.checks.append(check_cublas(toolkit_root(nvcc, run), find))
    forced = environ.get("RAG_CUDA_ARCHITECTURES", "").strip()
    if forced:
        if not re.fullmatch(r"\d{2,3}(;\d{2,3})*", forced):
            report.checks.append(Check("GPU", False, f"RAG_CUDA_ARCHITECTURES={forced!r}: give compute capabilities "
                                                     "without the dot, e.g. 90 or 86;90"))
        else:
            report.architectures = forced.split(";")
            report.checks.append(Check("GPU", True, f"RAG_CUDA_ARCHITECTURES={forced} (as given; not read from a GPU)"))
        return report
    driver, gpus = check_driver(which, run, find_library)
    too_old = driver_too_old(gpus[0].driver, report.cuda_version) if gpus else ""
    report.checks.append(Check("driver", False, too_old) if too_old else driver)
    if gpus:
        known = nvcc_architectures(nvcc, run) if nvcc else None
        gpu_check, report.architectures = check_gpus(gpus, report.cuda_version, known)
        report.checks.append(gpu_check)
    else:
        report.checks.append(Check("GPU", False, "no GPU to read a compute capability from (see the driver line)"))
    return report


def main(argv: list[str], out=sys.stdout, err=sys.stderr, **probes) -> int:
    """`python -m rag.gpu_check cuda [--cmake-args]`: the checks on stderr; with --cmake-args,
    the CMake flags on stdout when everything is there."""
    if not argv or argv[0] != "cuda" or argv[1:] not in ([], ["--cmake-args"]):
        print("usage: python -m rag.gpu_check cuda [--cmake-args]   (cuda is the one GPU backend the install builds)",
              file=err)
        return 2
    report = check_cuda(**probes)
    for check in report.checks:
        print(check.line(), file=err)
    if not report.ok:
        missing = sum(not c.ok for c in report.checks)
        print(f"gpu check: {missing} prerequisite{'s' if missing != 1 else ''} missing for the CUDA build; nothing "
              "was built (the CPU install is: bash scripts/install)", file=err)
        return 1
    if argv[1:] == ["--cmake-args"]:
        print(report.cmake_args(), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
