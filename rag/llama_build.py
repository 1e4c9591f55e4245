"""What the installed llama.cpp library was compiled for, read from the library itself.

`python -m rag.llama_build --check portable` is run by scripts/build-llama after installing: it fails
unless the library holds exactly the portable instruction set (AVX2, no AVX-512, no AMX), so a
wheel built for the build machine's CPU can never pass for a portable one.
"""

from __future__ import annotations

import platform
import re
import sys

# Compiled in by a native build on a recent Xeon or EPYC; any of them can fault on another CPU, and
# AMX faults even on a CPU that advertises it when the sandbox does not grant the AMX state.
NOT_PORTABLE = ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AMX_INT8")


def parse_system_info(info: str) -> dict[str, str]:
    """The feature flags of `llama_print_system_info()`, across all backends.

    >>> parse_system_info("CPU : SSE3 = 1 | AVX2 = 1 | REPACK = 1 | ")
    {'SSE3': '1', 'AVX2': '1', 'REPACK': '1'}
    """
    features: dict[str, str] = {}
    for line in info.splitlines():
        _, _, flags = line.rpartition(" : ") if " : " in line else ("", "", line)
        for item in flags.split("|"):
            name, sep, value = item.partition("=")
            if sep and name.strip():
                features[name.strip()] = value.strip()
    return features


def parse_backends(info: str) -> dict[str, dict[str, str]]:
    """The feature flags of `llama_print_system_info()` by backend: it writes every backend's
    name and flags on one line ("CUDA : ARCHS = 900 | ... | CPU : SSE3 = 1 | ...").

    >>> parse_backends("CUDA : ARCHS = 900 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | AVX2 = 1 | ")
    {'CUDA': {'ARCHS': '900', 'USE_GRAPHS': '1'}, 'CPU': {'SSE3': '1', 'AVX2': '1'}}
    """
    found: dict[str, dict[str, str]] = {}
    for name, flags in re.findall(r"(\w+) : (.*?)(?=\s*\w+ : |$)", info.replace("\n", " ")):
        found[name] = parse_system_info(flags)
    return found


def system_info() -> str:
    import llama_cpp

    raw = llama_cpp.llama_print_system_info()
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def installed_features() -> dict[str, str]:
    return parse_system_info(system_info())


def gpu_backends(backends: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The backends other than the CPU's (and the CPU-side accelerators BLAS and AMX).

    >>> list(gpu_backends({"CUDA": {"ARCHS": "900"}, "CPU": {"AVX2": "1"}, "BLAS": {}}))
    ['CUDA']
    """
    return {name: flags for name, flags in backends.items() if name not in ("CPU", "BLAS", "AMX", "RPC")}


def describe_gpu(backends: dict[str, dict[str, str]]) -> str:
    """The GPU backends compiled in, for `rag models` (empty: none).

    >>> describe_gpu({"CUDA": {"ARCHS": "900", "USE_GRAPHS": "1"}, "CPU": {}})
    'CUDA (ARCHS 900)'
    """
    parts = []
    for name, flags in gpu_backends(backends).items():
        parts.append(f"{name} (ARCHS {flags['ARCHS']})" if "ARCHS" in flags else name)
    return ", ".join(parts)


def portability_problems(features: dict[str, str], machine: str | None = None) -> list[str]:
    """Why a library with these features is not the portable build (empty: it is).

    >>> portability_problems({"AVX2": "1", "FMA": "1"}, "x86_64")
    []
    >>> portability_problems({"AVX2": "1", "AVX512": "1", "AMX_INT8": "1"}, "x86_64")
    ['compiled with AVX512', 'compiled with AMX_INT8']
    """
    machine = machine or platform.machine()
    if machine not in ("x86_64", "AMD64"):
        return []
    problems = [f"compiled with {name}" for name in NOT_PORTABLE if features.get(name) == "1"]
    if features.get("AVX2") != "1":
        problems.insert(0, "compiled without AVX2")
    return problems


def describe(features: dict[str, str]) -> str:
    """One line for `rag models`: the instruction set of the library.

    >>> describe({"SSE3": "1", "AVX2": "1", "FMA": "1", "OPENMP": "1"})
    'SSE3 AVX2 FMA'
    """
    isa = [name for name, value in features.items()
           if value == "1" and name not in ("OPENMP", "REPACK", "LLAMAFILE", "CPU_HBM", "KLEIDIAI", "ACCELERATE")]
    return " ".join(isa) or "unknown"


def main(argv: list[str]) -> int:
    """`--check KIND [--gpu]`: the installed library is the KIND build (and, with --gpu, holds a
    GPU backend such as CUDA: a CUDA build that quietly came out CPU-only is caught here)."""
    if len(argv) not in (2, 3) or argv[0] != "--check" or argv[1] not in ("portable", "native", "custom") \
            or argv[2:] not in ([], ["--gpu"]):
        print("usage: python -m rag.llama_build --check portable|native|custom [--gpu]", file=sys.stderr)
        return 2
    try:
        info = system_info()
    except Exception as exc:  # an import failure of the compiled library is the thing being checked
        print(f"llama-cpp-python does not load: {exc}", file=sys.stderr)
        return 1
    features, backends = parse_system_info(info), parse_backends(info)
    problems = portability_problems(features) if argv[1] == "portable" else []
    if problems:
        print(f"llama.cpp is not the portable build: {', '.join(problems)}", file=sys.stderr)
        return 1
    gpu = describe_gpu(backends)
    if argv[2:] == ["--gpu"] and not gpu:
        print(f"llama.cpp was built without a GPU backend (it has: {', '.join(backends) or 'none'}); "
              "see the build log named above", file=sys.stderr)
        return 1
    print(f"llama.cpp ({argv[1]} build): {describe(features)}" + (f"; GPU backend {gpu}" if gpu else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
