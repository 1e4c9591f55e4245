"""Loading a GGUF model must never take the process down.

A llama.cpp library can die with SIGSEGV or SIGILL inside kernels that the CPU advertises but may
not run: AMX in a sandbox that does not grant the AMX state (`ldtilecfg` in
`ggml_backend_amx_mul_mat`), or a library compiled for another machine's CPU. A crash in C cannot
be caught in Python, so the first time a (library build, model, CPU) is used, a child process loads
the model and generates a few tokens, first in llama.cpp's default configuration and, if that child
dies, in the safe one (no extra buffer types: the AMX and repacked weight kernels are off). The
outcome is remembered in a small JSON file next to the models, so later loads start at once.

`python -m rag.llama_probe MODEL [--safe] [--n-gpu-layers N]` is the child.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelError

PROBE_TIMEOUT_S = 300
PROBE_FILE = "llama-probes.json"


@dataclass(frozen=True)
class LoadChoice:
    use_extra_bufts: bool  # False: llama.cpp's safe configuration
    notice: str = ""  # said to the user when the default configuration had to be given up


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "ok", "killed by SIGSEGV", "exit 1: ...", "timed out"

    @property
    def crashed(self) -> bool:
        return not self.ok and self.detail.startswith("killed by")


def probe_command(model: Path, safe: bool, n_gpu_layers: int) -> list[str]:
    command = [sys.executable, "-m", "rag.llama_probe", str(model), "--n-gpu-layers", str(n_gpu_layers)]
    return command + ["--safe"] if safe else command


def run_probe(command: Sequence[str], timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Run one child; a negative return code is the signal that killed it."""
    root = Path(__file__).resolve().parent.parent  # so that `-m rag.llama_probe` resolves to this package
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, "timed out")
    if done.returncode == 0:
        return ProbeResult(True, "ok")
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return ProbeResult(False, f"killed by {name}")
    last = (done.stderr.strip().splitlines() or [""])[-1][:200]
    return ProbeResult(False, f"exit {done.returncode}: {last}")


def probe_key(model: Path, n_gpu_layers: int) -> str:
    """What the outcome depends on: the compiled library, the model file, the CPU, GPU offload."""
    parts = [str(model.resolve()), _identity(model), str(n_gpu_layers > 0 or n_gpu_layers < 0), _cpu_flags()]
    try:
        import llama_cpp

        parts.append(getattr(llama_cpp, "__version__", "?"))
        lib = Path(llama_cpp.__file__).parent / "lib"
        parts += [f"{p.name}:{_identity(p)}" for p in sorted(lib.glob("*")) if p.is_file()]
    except ImportError:
        parts.append("no llama_cpp")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def choose_load(model: Path, n_gpu_layers: int, cache_dir: Path,
                runner: Callable[[Sequence[str]], ProbeResult] | None = None,
                command: Callable[[Path, bool, int], list[str]] | None = None) -> LoadChoice:
    """The configuration to load `model` with in this process, probing in children the first time."""
    runner, command = runner or run_probe, command or probe_command
    store = cache_dir / PROBE_FILE
    key = probe_key(model, n_gpu_layers)
    known = _read(store).get(key)
    if known is not None:
        return LoadChoice(known["use_extra_bufts"], known.get("notice", ""))
    default = runner(command(model, False, n_gpu_layers))
    if not default.crashed:
        # A clean run, a timeout (a model too slow to load in PROBE_TIMEOUT_S: no crash was seen, and
        # waiting that long again on every command would be worse) or an ordinary error (a bad file:
        # the in-process load says why, and it is probed again once fixed, since the key changes).
        choice = LoadChoice(True)
        _remember(store, key, choice)
        return choice
    safe = runner(command(model, True, n_gpu_layers))
    if not safe.ok:
        raise ModelError(
            f"llama.cpp crashes on this CPU with {model.name} ({default.detail}; safe configuration: "
            f"{safe.detail}); rebuild it for this machine with: bash scripts/build-llama"
        )
    choice = LoadChoice(False, (
        f"llama.cpp crashed on this CPU with its default kernels ({default.detail}); using its safe "
        "configuration (no AMX or repacked weights), which is slower. A portable build avoids this: "
        "bash scripts/build-llama"
    ))
    _remember(store, key, choice)
    return choice


def _identity(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read(store: Path) -> dict:
    try:
        data = json.loads(store.read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or damaged: probe again


def _remember(store: Path, key: str, choice: LoadChoice) -> None:
    data = _read(store)
    data[key] = {"use_extra_bufts": choice.use_extra_bufts, "notice": choice.notice}
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), "utf-8")
        os.replace(tmp, store)
    except OSError:
        pass  # a read-only cache only costs a probe next time


def main(argv: list[str]) -> int:
    """The child: load the model and generate a few tokens; the parent reads how it ended."""
    import argparse

    from rag.generation import open_llama

    parser = argparse.ArgumentParser(prog="python -m rag.llama_probe")
    parser.add_argument("model", type=Path)
    parser.add_argument("--safe", action="store_true")
    parser.add_argument("--n-gpu-layers", type=int, default=0)
    args = parser.parse_args(argv)
    llm = open_llama(args.model, n_ctx=256, n_gpu_layers=args.n_gpu_layers, use_extra_bufts=not args.safe)
    llm.create_completion("Question: 2 + 2?\nAnswer:", max_tokens=4, temperature=0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
