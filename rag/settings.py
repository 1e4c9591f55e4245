"""One typed settings object with defaults. Environment variables (RAG_*) and CLI flags override
it in one place: `Settings.from_env()` then `dataclasses.replace(settings, **flags)`."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

RETRIEVAL_MODES = ("hybrid", "lexical", "dense")
# How the model answers (with use_llm): "span" copies the few words of the best evidence sentence
# that answer (rag/span.py), "generate" writes a free sentence that is then checked (rag/citations.py).
ANSWER_MODES = ("span", "generate")
EMBED_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
DEFAULT_EMBEDDER = "e5-use-multilingual"  # E5 searches, USE compares (rag/embedders.py SearchPair)


def _default_models_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag" / "models"


def _default_manifest() -> Path:
    """`--models` / RAG_MANIFEST_PATH when given (they replace this); else ./models.txt when the
    current folder has one (the project's, which users edit); else the manifest shipped inside the
    package, so `rag` works from any folder. The user's ~/.config/rag/models.txt extends either
    default (see rag.models.read_manifest)."""
    from rag.models import PACKAGED_MANIFEST

    local = Path("models.txt")
    return local if local.is_file() else PACKAGED_MANIFEST


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("seeds")
    index_dir: Path = Path("index")  # the index of the collection named "default"
    collections_dir: Path = Path("collections")  # one folder per named collection
    manifest_path: Path = field(default_factory=_default_manifest)
    models_dir: Path = field(default_factory=_default_models_dir)
    embedder: str | None = None  # None: the index's own embedder (and DEFAULT_EMBEDDER to build one)
    generator: str = "gemma3-270m"
    # chunking
    chunk_chars: int = 900
    # retrieval
    k: int = 5
    retrieval: str = "hybrid"
    fusion: str = "score"
    bridge_similarity: float = 0.75  # cross-language word matches need this similarity; > 1 turns them off
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    # answering
    use_llm: bool = True
    answer_mode: str = "span"  # one of ANSWER_MODES; measured with `rag eval` on 4 sets (README)
    span_sentences: int = 1  # evidence sentences the model may copy its span from
    evidence_sentences: int = 4
    temperature: float = 0.0
    max_answer_tokens: int = 96
    max_question_chars: int = 2000
    refusal_threshold: float = 0.5  # on the answer policy's score (rag/policy.py), calibrated with `rag eval` on 4 sets
    # a quoted answer also quotes the second evidence sentence when it scores within this of the
    # best (the two are too close to tell apart); below 0, never (rag/pipeline.py, `_quotes`)
    quote_margin: float = 0.1
    agreement_ratio: float = 0.8  # model claims must cite evidence scoring >= this x the best (0.9: Gemma 0.933, 0.8: 0.950 accuracy)
    # llama.cpp
    n_ctx: int = 2048
    n_threads: int = 0  # threads writing tokens; 0: the physical cores the process may use
    # None ("auto", RAG_N_GPU_LAYERS=auto): every layer on the GPU when the installed llama.cpp can
    # offload, none otherwise; 0 keeps the CPU, -1 offloads all, N offloads N (rag/compute.py)
    n_gpu_layers: int | None = None
    # where a sentence-transformers embedder runs: "auto" (cuda when torch sees a GPU), "cpu",
    # "cuda", "cuda:N"; the bundled default embedders are numpy engines and always run on the CPU
    embed_device: str = "auto"
    # `rag ask` hands its question to a background process that keeps the models loaded (rag/warm.py)
    warm: bool = True
    warm_idle: float = 600.0  # seconds without a question after which that process exits

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Defaults overridden by RAG_<FIELD> variables, e.g. RAG_GENERATOR=smollm2-135m."""
        environ = os.environ if environ is None else environ
        overrides: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"RAG_{f.name.upper()}")
            if raw is None:
                continue
            overrides[f.name] = _parse(f.name, raw, cls.__dataclass_fields__[f.name].type)
        return cls(**overrides).validated()

    def with_overrides(self, **values: object) -> "Settings":
        """Apply CLI flags; `None` means 'flag not given'."""
        given = {k: v for k, v in values.items() if v is not None}
        return dataclasses.replace(self, **given).validated()

    def validated(self) -> "Settings":
        from rag.errors import UsageError

        if self.retrieval not in RETRIEVAL_MODES:
            raise UsageError(f"retrieval mode must be one of {', '.join(RETRIEVAL_MODES)}, not {self.retrieval!r}")
        if self.answer_mode not in ANSWER_MODES:
            raise UsageError(f"answer mode must be one of {', '.join(ANSWER_MODES)}, not {self.answer_mode!r}")
        if self.fusion not in ("score", "rrf"):
            raise UsageError(f"fusion must be 'score' or 'rrf', not {self.fusion!r}")
        if not 1 <= self.k <= 50:
            raise UsageError(f"k must be between 1 and 50, not {self.k}")
        if not 0.0 <= self.temperature <= 2.0:
            raise UsageError(f"temperature must be between 0 and 2, not {self.temperature}")
        if self.chunk_chars < 100:
            raise UsageError(f"chunk size must be at least 100 characters, not {self.chunk_chars}")
        # A NaN or infinite weight, threshold or ratio compares false with everything: scores
        # would print as "nan" and refusals or checks would silently never (or always) happen.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"{f.name} must be a finite number, not {value}")
        for name, least in (("evidence_sentences", 1), ("span_sentences", 1), ("max_answer_tokens", 1), ("max_question_chars", 1),
                            ("rrf_k", 0), ("n_threads", 0), ("n_gpu_layers", -1)):
            if getattr(self, name) is not None and getattr(self, name) < least:
                raise UsageError(f"{name} must be at least {least}, not {getattr(self, name)}")
        if self.n_ctx != 0 and self.n_ctx < 512:
            raise UsageError(f"n_ctx must be 0 (the model's own) or at least 512 tokens, not {self.n_ctx}")
        if not EMBED_DEVICE.fullmatch(self.embed_device):
            raise UsageError(f"embed device must be auto, cpu, cuda or cuda:N, not {self.embed_device!r}")
        if not 1.0 <= self.warm_idle <= 7 * 24 * 3600:
            raise UsageError(f"warm_idle must be between 1 and 604800 seconds, not {self.warm_idle}")
        if self.dense_weight < 0 or self.lexical_weight < 0 or self.dense_weight + self.lexical_weight == 0:
            raise UsageError(f"dense and lexical weights must be >= 0 and not both 0, not {self.dense_weight} "
                             f"and {self.lexical_weight}")
        if not 0.0 <= self.agreement_ratio <= 1.0:
            raise UsageError(f"agreement ratio must be between 0 and 1, not {self.agreement_ratio}")
        # A folder option naming a file would read as "no index here, build one" and then fail to build.
        for name, what in (("index_dir", "index folder (--index, RAG_INDEX_DIR)"),
                           ("collections_dir", "collections folder (RAG_COLLECTIONS_DIR)"),
                           ("models_dir", "models folder (RAG_MODELS_DIR)")):
            folder: Path = getattr(self, name)
            if folder.exists() and not folder.is_dir():
                raise UsageError(f"the {what} {folder} is a file; give a folder")
        return self


def validate_question(question: str, settings: Settings) -> str:
    """The question, stripped; a UsageError when it is empty or longer than the limit."""
    from rag.errors import UsageError

    question = (question or "").strip()
    if not question or all(not c.isprintable() or c.isspace() for c in question):
        raise UsageError("the question is empty; ask something about the documents")
    if len(question) > settings.max_question_chars:
        raise UsageError(
            f"the question is {len(question)} characters long; the limit is {settings.max_question_chars}"
        )
    return question


def _parse(name: str, raw: str, type_name: object) -> object:
    from rag.errors import UsageError

    type_name = str(type_name)
    if type_name == "int | None":  # an optional number whose default, None, means "decide for me"
        if raw.strip().lower() == "auto":
            return None
        type_name = "whole number or 'auto'"
    try:
        if "str" in type_name:
            return raw
        if "Path" in type_name:
            if not raw.strip():  # Path("") is the current folder: an index or manifest would land there
                raise ValueError(raw)
            return Path(raw)
        if "bool" in type_name:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if "int" in type_name or "whole number" in type_name:
            return int(raw)
        if "float" in type_name:
            return float(raw)
    except ValueError:
        raise UsageError(f"RAG_{name.upper()}={raw!r} is not a valid {type_name}") from None
    return raw
