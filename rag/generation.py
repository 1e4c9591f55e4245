"""Local GGUF models through llama-cpp-python, behind a tiny streaming interface."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from rag import prefix_cache
from rag.errors import ModelError


class Constraint(Protocol):
    """The outputs a model may write: a finite set of strings, each ending with a line break,
    listed by `outputs()` and written as a llama.cpp grammar by `gbnf()`."""

    def outputs(self) -> list[str]: ...

    def gbnf(self) -> str: ...


class Generator(Protocol):
    """`constraint` (optional) restricts what the model may write; a generator that cannot enforce
    one may ignore it, so callers check the output against what they allowed."""

    name: str

    def stream(self, prompt: str, max_tokens: int, temperature: float,
               constraint: Constraint | None = None) -> Iterator[str]: ...


# The answer is one line: generation ends at the first line break after some text (a leading line
# break is skipped: stopping on it, as a plain "\n" stop sequence does, left most drafts empty).
STOP = ["Question", "Extraits", "Excerpts", "\n\n\n"]


class LlamaGenerator:
    """A GGUF model loaded once. llama.cpp contexts are not thread-safe, so calls are serialised.

    A constraint is enforced greedily by `_copy` (`constrain_with="scan"`): the most likely token
    that continues an allowed output as the tokenizer spells it. llama.cpp's own grammar sampler
    (`"grammar"`) checks every token of the vocabulary at every step (262k for Gemma 3): 2 times
    slower per token on an idle CPU here, 3 to 5 times on a busy one, and it lets the model spell
    words in pieces (see `_copy`); benchmarks/span_benchmark.py measures both.

    With `chat=True` (`chat=true` on the model's line of models.txt, for an instruct model), plain
    generation (`--answer-mode generate`) sends the prompt as one user message through the GGUF's
    own chat template (`create_chat_completion`); the span task stays a raw completion prompt of
    solved examples, which the scan needs (it constrains what follows "Answer:"). Off by default:
    the measured answers were made without it.

    `n_gpu_layers` None (the default, auto) puts every layer on the GPU when llama.cpp can
    offload and none otherwise (rag/compute.py); `compute` then says what it got."""

    def __init__(self, name: str, path: Path, n_ctx: int = 2048, n_threads: int = 0, n_gpu_layers: int | None = None,
                 use_extra_bufts: bool = True, constrain_with: str = "scan", chat: bool = False):
        from rag import compute

        layers = compute.gpu_layers(n_gpu_layers)  # None (auto): all of them where llama.cpp can offload
        try:
            with _quiet_stderr():  # llama.cpp prints notices (sliding-window cache...) not meant for users
                self._llm = open_llama(path, n_ctx, n_threads, layers, use_extra_bufts)
        except ModelError:
            raise
        except Exception as exc:  # llama.cpp reports a bad file as ValueError or RuntimeError
            on_gpu = "every layer" if layers < 0 else f"{layers} layers"
            hint = f" ({on_gpu} on the GPU: if the model does not fit in its memory, set RAG_N_GPU_LAYERS to fewer)" \
                if layers != 0 and compute.offload_supported() else ""
            raise ModelError(f"could not load GGUF model {path}: {exc}{hint}") from None
        # what it runs on, for `rag models check` and `rag ask --json`
        supported = compute.offload_supported()
        self.compute = compute.describe(n_gpu_layers, layers, supported, compute.devices(supported),
                                        _model_layers(self._llm))
        if constrain_with not in ("scan", "grammar"):
            raise ValueError(f"constrain_with must be 'scan' or 'grammar', not {constrain_with!r}")
        self.name = name
        self.constrain_with = constrain_with
        self.chat = chat
        self.lock = threading.Lock()
        self.last_usage: dict[str, int] = {}
        self.last_logprobs: list[float] | None = None  # of each token written under a constraint (scan)
        self._kept = prefix_cache.KeptPrefixes()  # prompt starts the cache no longer holds

    def stream(self, prompt: str, max_tokens: int = 96, temperature: float = 0.0,
               constraint: Constraint | None = None) -> Iterator[str]:
        """The model's words as they come, up to the end of the first line.

        Under a `constraint` the output is one the constraint allows, so no stop words (a copied
        span may contain "Question") and no repeat penalty (copying words of the prompt is the
        task); generation is greedy whatever the temperature."""
        options: dict = dict(temperature=temperature, repeat_penalty=1.1, stop=STOP)
        logprobs: list[float] | None = None
        if constraint is not None:
            options.update(temperature=0.0, repeat_penalty=1.0, stop=[])
            if self.constrain_with == "grammar":
                options["grammar"] = self._grammar(constraint.gbnf())
            else:
                logprobs = []
        with self.lock:
            self.last_logprobs = logprobs
            tokens, text = 0, ""
            prompt_tokens = len(self._llm.tokenize(prompt.encode("utf-8")))
            pieces = self._copy(prompt, max_tokens, constraint, logprobs) if logprobs is not None else \
                self._pieces(prompt, max_tokens, options, chat=self.chat and constraint is None)
            for piece in pieces:
                tokens += 1
                piece, line_ends = line_piece(piece, text)
                text += piece
                if piece:
                    yield piece
                if line_ends:
                    break  # leaving the stream stops llama.cpp
            self.last_usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens}

    def _pieces(self, prompt: str, max_tokens: int, options: dict, chat: bool) -> Iterator[str]:
        """The text of each token llama.cpp writes: after the raw `prompt`, or with `chat` after
        the prompt as a user message in the model's chat template."""
        if not chat:
            for part in self._llm.create_completion(prompt, max_tokens=max_tokens, top_p=0.95, stream=True,
                                                    **options):
                yield part["choices"][0]["text"]
            return
        for part in self._llm.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                                     top_p=0.95, stream=True, **options):
            delta = part["choices"][0].get("delta") or {}
            if delta.get("content") is not None:  # the first chunk only names the role
                yield delta["content"]

    def _copy(self, prompt: str, max_tokens: int, constraint: Constraint, logprobs: list[float]) -> Iterator[str]:
        """The text of each token written under `constraint` (`constrain_with="scan"`): at each step
        the most likely token that continues one of its outputs as the tokenizer spells them
        (`_outputs_tree`), its log-probability over the whole vocabulary (how likely the model was
        to write it unconstrained) appended to `logprobs`. Only the tokenizer's own spelling of an
        output is allowed: Gemma writes " deux" as one token but " 1724" as " " then digits, so
        after "Answer:" a bare space is its favourite first token; allowing any spelling of the
        allowed bytes let it write " " and then "d", "e", "ux" (a word it never saw spelled so),
        and what followed went astray. llama.cpp's grammar sampler allows any spelling
        (`constrain_with="grammar"`).

        llama.cpp reads the prompt past what its cache already holds, then each token written that
        the next step needs; the logits are read directly. The same tokens and log-probabilities
        as llama-cpp-python's completion with this choice as a logits processor, without the
        sampler chain over the whole vocabulary and the stop-word scan at every step: 16 ms an
        answer (of 296) on squad2-en."""
        import codecs

        llm = self._llm
        node = _outputs_tree(llm, constraint)
        prompt_tokens = llm.tokenize(prompt.encode("utf-8"), special=True)
        if len(prompt_tokens) >= llm.n_ctx():  # as llama-cpp-python's completion says it
            raise ValueError(f"Requested tokens ({len(prompt_tokens)}) exceed context window of {llm.n_ctx()}")
        max_tokens = min(max_tokens, llm.n_ctx() - len(prompt_tokens))
        self._read(prompt_tokens)
        end = llm.token_eos()
        decoder = codecs.getincrementaldecoder("utf-8")("ignore")
        written: list[int] = []

        def piece(token: int) -> str:
            text = decoder.decode(llm.detokenize([token], prev_tokens=prompt_tokens + written))
            written.append(token)
            return text

        scores = self._last_logits()
        while len(written) < max_tokens:
            chosen, logprob = _choose(node, scores, end)
            logprobs.append(logprob)
            if chosen == end:
                return
            node = node.get(chosen, {})
            yield piece(chosen)  # the caller leaves at the line's end: that token is never evaluated
            if len(written) >= max_tokens:
                return
            # the tokens the constraint then leaves no choice about (the rest of a name or a number
            # that the tokenizer spells in pieces: half the steps) are read in the same batch as the
            # chosen one, each with its logits; the line's end is chosen like any other token
            forced: list[int] = []
            while len(node) == 1 and len(written) + len(forced) < max_tokens:
                (only, after), = node.items()
                if not after:
                    break
                forced.append(only)
                node = after
            rows = self._evaluate([chosen, *forced])
            for token, row in zip(forced, rows):
                logprobs.append(_logprob(row, token))
                yield piece(token)
            scores = rows[len(forced)]

    def read(self, prompt: str) -> None:
        """Have the model read `prompt` now, as the start of prompts to come (`Engine.warm_up`)."""
        with self.lock:
            self._read(self._llm.tokenize(prompt.encode("utf-8"), special=True))

    def _evaluate(self, tokens: list[int]) -> list:
        """Have llama.cpp read `tokens` after what its cache holds, in one batch, and return the
        logits it computed at each of them (views, valid until the next evaluation)."""
        import llama_cpp
        import numpy as np

        llm = self._llm
        n_past = llm.n_tokens
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past : n_past + len(tokens)] = tokens
        llm.n_tokens = n_past + len(tokens)
        return [np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i), shape=(llm.n_vocab(),))
                for i in range(len(tokens))]

    def _last_logits(self):
        """The logits llama.cpp computed for the last token it evaluated (a view, valid until the next)."""
        import llama_cpp
        import numpy as np

        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._llm.ctx, -1), shape=(self._llm.n_vocab(),))

    def _read(self, tokens: list[int]) -> None:
        """Have llama.cpp evaluate `tokens`, keeping the part of its cache they begin with (the
        solved examples of the span prompt), as llama-cpp-python's own generation does, or the
        longer start of an earlier prompt that `KeptPrefixes` holds (the examples of the other
        language); the last token is always evaluated again, for its logits."""
        llm = self._llm
        cached = llm.input_ids[: llm.n_tokens]
        common = prefix_cache.shared(cached, tokens)
        if common < self._kept.min_tokens <= len(cached):  # a prompt that begins otherwise replaces it
            self._kept.keep(cached, prefix_cache.save(llm))
        # a prompt kept earlier (a question in the other language) may share more with this one
        found = self._kept.best(tokens, common)
        if found is not None:  # (a state llama.cpp refuses leaves the cache empty)
            common = found[1] if prefix_cache.restore(llm, found[0], self._kept.state(found[0])) else 0
        keep = min(common, len(tokens) - 1)
        if keep > 0 and llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            llm.n_tokens = keep
        else:
            llm.reset()
        llm.eval(tokens[llm.n_tokens:])

    def _grammar(self, text: str):
        """A `LlamaGrammar` for GBNF `text`, parsed once here first: llama-cpp-python hands the text
        to llama.cpp only when sampling starts, and a grammar llama.cpp cannot parse then gives a
        null sampler that crashes the process instead of raising."""
        from llama_cpp import LlamaGrammar

        check_grammar(text, self._llm)
        return LlamaGrammar.from_string(text, verbose=False)


def _model_layers(llm) -> int | None:
    """The loaded model's repeating layers (llama.cpp offloads these plus the output layer)."""
    try:
        import llama_cpp

        return int(llama_cpp.llama_model_n_layer(llm.model))
    except Exception:  # a library without the call: the count is only reported
        return None


def line_piece(piece: str, so_far: str) -> tuple[str, bool]:
    """The part of a streamed piece that belongs to the answer's one line (a leading line break
    skipped), and whether the line ends in it.

    >>> line_piece("\\n Paris", ""), line_piece(" est.\\nQuestion", "Paris")
    (('Paris', False), (' est.', True))
    """
    if not so_far:
        piece = piece.lstrip()
    return piece.split("\n", 1)[0], "\n" in piece


def _outputs_tree(llm, constraint: Constraint) -> dict[int, dict]:
    """The constraint's outputs as the model's tokenizer writes them, as a tree: token -> the
    tokens that may follow it."""
    tree: dict[int, dict] = {}
    for text in constraint.outputs():
        node = tree
        for token in llm.tokenize(text.encode("utf-8"), add_bos=False, special=False):
            node = node.setdefault(token, {})
    return tree


def _choose(node: dict[int, dict], scores, end: int) -> tuple[int, float]:
    """The most likely of the tokens `node` allows (`end` when it allows none: an output is
    complete) and its log-probability over the whole vocabulary (`scores`, the model's logits)."""
    import numpy as np

    if node:
        candidates = np.fromiter(node, dtype=np.int64, count=len(node))
        chosen = int(candidates[np.argmax(scores[candidates])])
    else:
        chosen = end
    return chosen, _logprob(scores, chosen)


def _logprob(scores, token: int) -> float:
    """The log-probability of `token` over the whole vocabulary, from the model's logits."""
    import numpy as np

    top = float(scores.max())
    return float(scores[token]) - top - float(np.log(np.exp(scores - top).sum()))


def check_grammar(text: str, llm=None) -> None:
    """Raise ValueError when llama.cpp cannot parse the GBNF `text`, for the vocabulary of the
    `llama_cpp.Llama` `llm` or, without one, for none (parsing needs no model)."""
    import llama_cpp

    vocab = llm._model.vocab if llm is not None else None
    with _quiet_stderr():  # llama.cpp prints its parse error on stderr
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
    if not sampler:
        raise ValueError("llama.cpp could not parse the grammar")
    llama_cpp.llama_sampler_free(sampler)


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
    kwargs = dict(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or physical_cores(), n_gpu_layers=n_gpu_layers,
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


def physical_cores(cpus: set[int] | None = None, topology: Path = Path("/sys/devices/system/cpu")) -> int:
    """The physical cores this process may run on: the threads that write tokens one at a time.

    llama-cpp-python's default, half the logical CPUs, guesses two hardware threads per core; on a
    machine without them (a 2-core VM) it leaves one core idle while each token is written (29 ms
    a token for Gemma 270M against 19 ms with both). Cores are counted from the sibling lists in
    `topology` for the CPUs the process may use; that guess when they cannot be read.

    >>> import tempfile; root = Path(tempfile.mkdtemp())
    >>> for cpu, siblings in ((0, "0,2"), (1, "1,3"), (2, "0,2"), (3, "1,3")):
    ...     (root / f"cpu{cpu}/topology").mkdir(parents=True)
    ...     _ = (root / f"cpu{cpu}/topology/thread_siblings_list").write_text(siblings + "\\n")
    >>> physical_cores({0, 1, 2, 3}, root), physical_cores({0, 2}, root), physical_cores({0, 1, 9}, root)
    (2, 1, 1)
    """
    if cpus is None:
        try:
            cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # no affinity on this OS
            return max((os.cpu_count() or 2) // 2, 1)
    try:
        cores = {(topology / f"cpu{cpu}/topology/thread_siblings_list").read_text().strip() for cpu in cpus}
    except OSError:
        return max(len(cpus) // 2, 1)
    return max(len(cores), 1)


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
