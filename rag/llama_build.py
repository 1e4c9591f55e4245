"""What the installed llama.cpp library was compiled for, read from the library itself.

`python -m rag.llama_build --check portable` is run by scripts/build-llama after installing: it fails
unless the library holds exactly the portable instruction set (AVX2, no AVX-512, no AMX), so a
wheel built for the build machine's CPU can never pass for a portable one.
"""

from __future__ import annotations

import platform
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


def installed_features() -> dict[str, str]:
    import llama_cpp

    raw = llama_cpp.llama_print_system_info()
    return parse_system_info(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))


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
    if len(argv) != 2 or argv[0] != "--check" or argv[1] not in ("portable", "native", "custom"):
        print("usage: python -m rag.llama_build --check portable|native|custom", file=sys.stderr)
        return 2
    try:
        features = installed_features()
    except Exception as exc:  # an import failure of the compiled library is the thing being checked
        print(f"llama-cpp-python does not load: {exc}", file=sys.stderr)
        return 1
    problems = portability_problems(features) if argv[1] == "portable" else []
    if problems:
        print(f"llama.cpp is not the portable build: {', '.join(problems)}", file=sys.stderr)
        return 1
    print(f"llama.cpp ({argv[1]} build): {describe(features)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
