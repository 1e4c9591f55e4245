"""`answer()`: the one path from a question to a checked, cited answer. The CLI, the web page and
the evaluation harness all call it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag import answer_type, languages, models, policy, store
from rag.citations import CheckedSentence, Citation, check, citation_for
from rag.compute import Compute, gpu_layers
from rag.disagreement import conflicting_figures
from rag.embedders import Embedder, load_embedder
from rag.errors import IndexMismatch
from rag.evidence import Evidence, select_evidence
from rag.policy import Decision, decide
from rag.generation import Generator, LlamaGenerator
from rag.llama_probe import choose_load
from rag.prompting import build_prompt, build_span_prompt
from rag.retrieval import Hit, QueryTerms, RetrievalConfig, Retriever
from rag.query import Query, analyse, with_corpus_names
from rag.settings import DEFAULT_EMBEDDER, Settings, validate_question
from rag.span import CONFIDENT, Span, pick_span

log = logging.getLogger("rag")



def refusal(language: str) -> str:
    """What a refusal says, in the language of the question."""
    return languages.pack(language).text("refusal")


def unsupported(corpus_language: str) -> str:
    """What the answer to a question in a language no pack covers says (in the corpus's language)."""
    names = ", ".join(p.name for p in languages.packs())
    return languages.pack(corpus_language).text("unsupported").format(languages=names)


@dataclass
class Answer:
    question: str
    language: str
    text: str  # with [n] markers that index `citations`
    citations: list[Citation]
    hits: list[Hit]
    evidence: list[Evidence]
    refused: bool
    mode: str  # "span", "llm", "extractive" or "refused"
    timings: dict[str, float]  # milliseconds: retrieve, first_token, total
    draft: str = ""  # what the model wrote, before checking
    removed: list[str] = field(default_factory=list)  # draft sentences nothing supports
    tokens_per_s: float | None = None
    score: float = 0.0  # the answer policy's score, compared with the refusal threshold
    refusal_reason: str = ""  # why the policy refused: "weak-match", "negation", "unknown-terms"...
    span: Span | None = None  # the words the model copied (span mode), shown when confident enough

    @property
    def span_offsets(self) -> tuple[str, int, int] | None:
        """Where the answer's words are in their file: (source, start, end), in span mode."""
        if self.mode != "span" or self.span is None:
            return None
        return self.span.evidence.source, self.span.source_start, self.span.source_end


@dataclass
class Engine:
    """Everything loaded once: index, embedder, retriever and (lazily) the generator."""

    settings: Settings
    index: store.Index
    embedder: Embedder | None
    retriever: Retriever
    _generator: Generator | None = None

    @classmethod
    def load(cls, settings: Settings, generator: Generator | None = None,
             embedder: Embedder | None = None) -> "Engine":
        """Load the index; `embedder` (one already loaded, shared between collections) is used when
        it is the one the index was built with."""
        index = store.load(settings.index_dir, expected_embedder=settings.embedder)
        if embedder is None or embedder.name != index.manifest["embedder"]["name"]:
            embedder = load_configured_embedder(settings, index.manifest["embedder"]["name"])
        if embedder.dim != index.manifest["embedder"]["dim"]:
            raise IndexMismatch(
                f"embedder {embedder.name!r} now gives {embedder.dim}-d vectors but the index holds "
                f"{index.manifest['embedder']['dim']}-d ones; rebuild it with: rag index"
            )
        embedder.embed(["warm-up"])  # some embedders load their weights on first use
        config = RetrievalConfig(settings.retrieval, settings.fusion, settings.rrf_k, settings.lexical_weight,
                                 settings.dense_weight, bridge_similarity=settings.bridge_similarity)
        return cls(settings, index, embedder, Retriever(index, embedder, config), generator)

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = load_configured_generator(self.settings)
        return self._generator

    @property
    def compute(self) -> Compute:
        """What the generator runs on (CPU, or GPU with the layers offloaded); "not loaded" until
        a question needed it (a refusal, `--no-llm`), so reporting it never loads a model."""
        found = getattr(self._generator, "compute", None)
        return found if isinstance(found, Compute) else Compute("", self.settings.n_gpu_layers)

    def warm_up(self) -> None:
        """Load the generator and run it once now (when answers use it): the first generation
        after loading is slow, and it should not be the first user's wait. The answer policy's
        word tables (antonyms) are read now too."""
        policy.prepare(self.index.languages)
        if not self.settings.use_llm:
            return
        pack = languages.pack(self.index.language)
        read = getattr(self.generator, "read", None)
        if self.settings.answer_mode == "span" and read is not None:
            # the fixed start of the span prompt (its solved examples) of every language a question
            # may be asked in: the other ones are kept beside llama.cpp's cache (rag/prefix_cache.py)
            # as the next replaces them, the corpus's own is left in the cache
            for code in sorted(languages.codes(), key=lambda c: c == self.index.language):
                read(build_span_prompt("?", ["-"], languages.pack(code).span))
            return
        prompt = build_span_prompt("?", ["-"], pack.span) if self.settings.answer_mode == "span" \
            else pack.text("warm_up")
        for _ in self.generator.stream(prompt, 1, 0.0):
            pass


def load_configured_embedder(settings: Settings, name: str | None = None) -> Embedder:
    entries = models.read_manifest(settings.manifest_path)
    entry = models.find_entry(entries, name or settings.embedder or DEFAULT_EMBEDDER, "embedder")
    path = models.resolve(entry, settings.manifest_path.parent, settings.models_dir)
    return load_embedder(entry.name, entry.options.get("loader", "sentence-transformers"), path, settings.embed_device)


def load_configured_generator(settings: Settings) -> Generator:
    """The generator the settings name: a model served by an OpenAI-compatible server when its
    manifest source is `openai:URL` (rag/backends/openai_server.py), else a local GGUF model."""
    entries = models.read_manifest(settings.manifest_path)
    entry = models.find_entry(entries, settings.generator, "generator")
    if entry.served_url is not None:
        from rag.backends.openai_server import OpenAIServerGenerator

        return OpenAIServerGenerator.from_entry(entry)
    path = Path(models.resolve(entry, settings.manifest_path.parent, settings.models_dir))
    # A crash inside llama.cpp cannot be caught here: a child process tries the model first (once
    # per library build, model and CPU) and says which configuration is safe.
    choice = choose_load(path, gpu_layers(settings.n_gpu_layers), settings.models_dir)
    if choice.notice:
        log.warning(choice.notice)
    return LlamaGenerator(entry.name, path, settings.n_ctx, settings.n_threads, settings.n_gpu_layers,
                          use_extra_bufts=choice.use_extra_bufts, chat=entry.flag("chat"))


def gather_evidence(question: str | Query, engine: Engine, k: int,
                    mode: str | None = None) -> tuple[list[Hit], list[Evidence]]:
    """The k passages shown and the evidence pool, best first."""
    hits, pool, _, _ = gather(question, engine, k, mode)
    return hits, pool


def gather(question: str | Query, engine: Engine, k: int,
           mode: str | None = None) -> tuple[list[Hit], list[Evidence], QueryTerms, Query]:
    """The k passages shown, the evidence pool, best first, the query's terms, and the query as
    the passages read it (a question typed without capitals gets the names they write:
    `with_corpus_names`). Evidence comes from twice as many passages as are shown, and the pool is
    twice what the prompt gets: the answering sentence, or a source that disagrees, may rank just
    below."""
    query = question if isinstance(question, Query) else analyse(question, engine.index.language, engine.index.languages)
    terms = engine.retriever.query_terms(query)
    deep_hits = engine.retriever.search(query.text, 2 * k, mode, terms)
    named = with_corpus_names(query, [hit.chunk.text for hit in deep_hits])
    if named is not query:
        query, terms = named, QueryTerms({t: named.weights.get(t, w) for t, w in terms.weights.items()}, terms.stand_ins, terms.reach)
    pool = select_evidence(query, deep_hits, engine.index.lexical, engine.embedder,
                           2 * engine.settings.evidence_sentences, terms, engine.index.texts)
    return deep_hits[:k], pool, terms, query


def decision_for(question: str, engine: Engine, k: int) -> Decision:
    """The answer policy's decision for a question, without answering it (for `rag eval`)."""
    query = analyse(question, engine.index.language, engine.index.languages)
    if not query.supported:
        return Decision(0.0, "unsupported-language")
    _, pool, terms, query = gather(query, engine, k)
    return decide(query, pool[: engine.settings.evidence_sentences], terms, engine.index.lexical,
                  len(engine.index.languages))


def answer(
    question: str,
    engine: Engine,
    *,
    k: int | None = None,
    mode: str | None = None,
    use_llm: bool | None = None,
    temperature: float | None = None,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Retrieve, select evidence, refuse or answer, cite.

    How an answer is made (`settings.answer_mode`, with the model): "span", the model copies the
    few words of the best evidence sentence that answer (rag/span.py), shown alone when it is
    confident enough (CONFIDENT), else the sentence is quoted; "generate", the model writes a
    sentence and each one is checked against the evidence (rag/citations.py), the sentence is
    quoted when none holds. Without the model (`use_llm=False`), the sentence is quoted.

    `on_token` receives the model's draft as it is written, in "generate" mode (nothing when there
    is no draft: a refusal, a span of a few words, a quote); the returned `Answer` is the checked text."""
    settings = engine.settings
    started = time.perf_counter()
    question = validate_question(question, settings)
    query = analyse(question, engine.index.language, engine.index.languages)
    language = query.language
    use_llm = settings.use_llm if use_llm is None else use_llm
    temperature = settings.temperature if temperature is None else temperature
    k = k or settings.k
    if not query.supported:  # an unrelated quote would look like an answer: say what can be asked
        return Answer(question, language, unsupported(language), [], [], [], True, "refused",
                      {"retrieve": 0.0, "first_token": 0.0, "total": round((time.perf_counter() - started) * 1000, 1)},
                      refusal_reason="unsupported-language")
    hits, pool, terms, query = gather(query, engine, k, mode)
    evidence = pool[: settings.evidence_sentences]
    retrieved = time.perf_counter()

    def timings(first: float | None) -> dict[str, float]:
        now = time.perf_counter()
        return {key: round((t - started) * 1000, 1) for key, t in
                (("retrieve", retrieved), ("first_token", first or now), ("total", now))}

    decision = decide(query, evidence, terms, engine.index.lexical, len(engine.index.languages))
    if decision.refuse(settings.refusal_threshold):
        return Answer(question, language, refusal(language), [], hits, evidence, True, "refused", timings(None),
                      score=decision.score, refusal_reason=decision.reason or "weak-match")

    draft, first, rate, checked, removed, span = "", None, None, [], [], None
    if use_llm and settings.answer_mode == "generate":
        draft, first, rate = _generate(engine, build_prompt(question, evidence, language), temperature, on_token)
        checked, removed = _check(draft, evidence, query, settings.agreement_ratio)
    elif use_llm:
        span, first = _pick_span(engine, query, evidence)
    sentences = [[(s.text, s.cites)] for s in checked]
    if _confident(span):
        sentences = [[(span.text, (span.evidence.n,))]]
    if not sentences:
        quoted = _quotes(evidence, settings.quote_margin)
        sentences = [[(query.pack.text("according") + "« " + quoted[0].text + " »", (quoted[0].n,))],
                     *[[("« " + e.text + " »", (e.n,))] for e in quoted[1:]]]
    mode = "span" if _confident(span) else "llm" if checked else "extractive"
    _add_disagreement(sentences, query, pool)
    text, citations = _render(sentences, {e.n: e for e in pool}, engine.index.texts)
    return Answer(question, language, text, citations, hits, evidence, False, mode,
                  timings(first), draft, removed, rate, score=decision.score, span=span)


def _quotes(evidence: list[Evidence], margin: float) -> list[Evidence]:
    """The evidence sentences a quoted answer gives: the best, and the second when it scores
    within `margin` of it and holds an answer of the asked kind as well: scores that close do not
    tell which sentence answers. Measured with `rag eval --no-llm` (accuracy / SQuAD F1), no answer
    lost on any set: margin 0 (one quote) squad2-en 0.704 / 0.132, cnil-fr 0.805 / 0.066; 0.05:
    0.738 / 0.130, 0.829 / 0.059; 0.1: 0.758 / 0.125, 0.829 / 0.058; 0.2: 0.783 / 0.114, 0.854 /
    0.054; seeds and realdocs kept their accuracy at every margin. 0.1 is the middle of that dial
    between finding the answer and saying it in few words.

    >>> from rag.chunking import Chunk
    >>> c = Chunk("c", "f.txt", 0, 1, 1, "x")
    >>> e = [Evidence(n, c, 0, 1, t, s, 0.5, 0.5) for n, t, s in ((1, "A.", 1.0), (2, "B.", 0.95), (3, "C.", 0.9))]
    >>> [x.text for x in _quotes(e, 0.1)], [x.text for x in _quotes(e, 0.01)], [x.text for x in _quotes(e, -1)]
    (['A.', 'B.'], ['A.'], ['A.'])
    """
    quoted = evidence[:1]
    if margin >= 0 and len(evidence) > 1 and evidence[1].score >= evidence[0].score - margin and \
            (evidence[1].fits or not evidence[0].fits):
        quoted.append(evidence[1])
    return quoted


def _pick_span(engine: Engine, query: Query, evidence: list[Evidence]) -> tuple[Span | None, float | None]:
    """The model's span of the best evidence sentence(s), and when it came."""
    span = pick_span(engine.generator, query, evidence, sentences=engine.settings.span_sentences)
    return span, time.perf_counter()


def _confident(span: Span | None) -> bool:
    """Whether the model's span may be the answer on its own: a generator that does not tell its
    confidence (or ignores the constraint) gets the quoted sentence instead."""
    return span is not None and span.confidence is not None and span.confidence >= CONFIDENT


def _generate(engine: Engine, prompt: str, temperature: float,
              on_token: Callable[[str], None] | None) -> tuple[str, float | None, float | None]:
    """Stream the model's draft; returns it with the time of its first token and tokens/s."""
    started, first, pieces = time.perf_counter(), None, []
    for piece in engine.generator.stream(prompt, engine.settings.max_answer_tokens, temperature):
        first = first or time.perf_counter()
        pieces.append(piece)
        if on_token:
            on_token(piece)
    spent = time.perf_counter() - started
    tokens = getattr(engine.generator, "last_usage", {}).get("completion_tokens")
    return "".join(pieces).strip(), first, (round(tokens / spent, 1) if tokens and spent > 0 else None)


def _check(draft: str, evidence: list[Evidence], query: Query,
           agreement_ratio: float) -> tuple[list[CheckedSentence], list[str]]:
    """Supported sentences of the draft that answer the question, and the removed ones. A true
    but off-topic sentence is no answer: its evidence must score at least `agreement_ratio` x the
    best; and a sentence without an answer of the asked kind (a figure for 'combien', a name for
    'qui'...) answers nothing."""
    if not draft:
        return [], []
    checked, removed = check(draft, evidence, query.text)
    score = {e.n: e.score for e in evidence}
    floor = agreement_ratio * evidence[0].score
    answers = [s for s in checked
               if max(score[n] for n in s.cites) >= floor and answer_type.fits(query.kind, s.text, query.text, query.pack)]
    return answers, removed + [s.text for s in checked if s not in answers]


def _add_disagreement(sentences: list[list[Segment]], query: Query, pool: list[Evidence]) -> None:
    """Append 'the sources disagree: A [1], B [2]' when the answer states a figure that other
    sources give differently; each figure carries its own citation."""
    stated = " ".join(text for sentence in sentences for text, _ in sentence)
    conflict = conflicting_figures(query.text, stated, pool, query.pack)
    cited = {n for sentence in sentences for _, cites in sentence for n in cites}
    if conflict and {f.evidence.n for f in conflict} - cited:
        items = [(f.value, (f.evidence.n,)) for f in conflict]
        sentences.append([(query.pack.text("disagree") + items[0][0], items[0][1]), *items[1:]])


Segment = tuple[str, tuple[int, ...]]  # a piece of text and the evidence numbers backing it


def _render(sentences: list[list[Segment]], by_n: dict[int, Evidence],
            documents: dict | None = None) -> tuple[str, list[Citation]]:
    """Join sentences (each a list of cited segments) with markers renumbered 1..m in order of use.

    [[("A", (3,))], [("B", (1,)), ("C", (3,))]] -> "A [1]. B [2], C [1]."
    """
    numbers: dict[int, int] = {}
    parts = []
    for sentence in sentences:
        pieces = []
        for text, cites in sentence:
            marks = "".join(f"[{numbers.setdefault(n, len(numbers) + 1)}]" for n in cites)
            pieces.append(f"{text.rstrip(' .')} {marks}")
        parts.append(", ".join(pieces) + ".")
    citations = [citation_for(by_n[n], m, (documents or {}).get(by_n[n].source)) for n, m in numbers.items()]
    return " ".join(parts), citations
