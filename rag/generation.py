"""Local GGUF models through llama-cpp-python, behind a tiny streaming interface."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from rag.errors import ModelError


class Generator(Protocol):
    name: str

    def stream(self, prompt: str, max_tokens: int, temperature: float) -> Iterator[str]: ...


# The answer is one line: generation ends at the first line break after some text (a leading line
# break is skipped: stopping on it, as a plain "\n" stop sequence does, left most drafts empty).
STOP = ["Question", "Extraits", "Excerpts", "\n\n\n"]


class LlamaGenerator:
    """A GGUF model loaded once. llama.cpp contexts are not thread-safe, so calls are serialised."""

    def __init__(self, name: str, path: Path, n_ctx: int = 2048, n_threads: int = 0, n_gpu_layers: int = 0,
                 use_extra_bufts: bool = True):
        try:
            with _quiet_stderr():  # llama.cpp prints notices (sliding-window cache...) not meant for users
                self._llm = open_llama(path, n_ctx, n_threads, n_gpu_layers, use_extra_bufts)
        except ModelError:
            raise
        except Exception as exc:  # llama.cpp reports a bad file as ValueError or RuntimeError
            raise ModelError(f"could not load GGUF model {path}: {exc}") from None
        self.name = name
        self.lock = threading.Lock()
        self.last_usage: dict[str, int] = {}

    def stream(self, prompt: str, max_tokens: int = 96, temperature: float = 0.0) -> Iterator[str]:
        with self.lock:
            tokens, text = 0, ""
            prompt_tokens = len(self._llm.tokenize(prompt.encode("utf-8")))
            for part in self._llm.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.95,
                repeat_penalty=1.1,
                stop=STOP,
                stream=True,
            ):
                tokens += 1
                piece = part["choices"][0]["text"]
                if not text:
                    piece = piece.lstrip()
                line_ends = "\n" in piece
                piece = piece.split("\n", 1)[0]
                text += piece
                if piece:
                    yield piece
                if line_ends:
                    break  # leaving the stream stops llama.cpp
            self.last_usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens}


_PARAMS_LOCK = threading.Lock()


def open_llama(path: Path, n_ctx: int = 2048, n_threads: int = 0, n_gpu_layers: int = 0,
               use_extra_bufts: bool = True):
    """A `llama_cpp.Llama` for the GGUF at `path`.

    `use_extra_bufts=False` is llama.cpp's safe configuration: weights stay in plain CPU buffers, so
    the AMX and repacked matrix kernels are never used. `Llama()` has no argument for it, so the
    model parameters it starts from are adjusted while it is built (under a lock: the default-params
    function is shared by the whole process)."""
    try:
        import llama_cpp
        from llama_cpp import Llama
    except ImportError:
        raise ModelError("llama-cpp-python is not installed; run: bash scripts/install") from None
    kwargs = dict(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or None, n_gpu_layers=n_gpu_layers,
                  verbose=False)
    if use_extra_bufts:
        return Llama(**kwargs)
    low = llama_cpp.llama_cpp
    with _PARAMS_LOCK:
        original = low.llama_model_default_params

        def safe_params():
            params = original()
            params.use_extra_bufts = False
            return params

        low.llama_model_default_params = safe_params
        try:
            return Llama(**kwargs)
        finally:
            low.llama_model_default_params = original


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C library's writes to file descriptor 2 for the duration of the block."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (some test runners): nothing to silence
        yield
        return
    try:
        sys.stderr.flush()
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
