"""The evaluation harness: every gold question goes through the same `answer()` as the CLI and
the web page, and is scored on retrieval, answers, citations, refusals and latency.

Answers are scored on their words: citation markers ("[1]", "[2][3]") and the wrapper of an
extractive answer ("D'après les sources : « … »") removed (`answer_text`).
- accuracy: the answer contains an acceptable answer after French-aware normalisation
  (`contains_answer`); f1: best token F1 after that same normalisation (`token_f1`).
- exact_match, squad_f1: SQuAD v2's EM and token F1 (`squad_normalize`: lower case, punctuation
  and articles removed, French articles too for a French question). A refusal scores 0 on an
  answerable question; squad_v2_exact_match / squad_v2_f1 average over all questions, where an
  unanswerable one scores 1 when refused and 0 otherwise (SQuAD v2's convention).
- source@1, source@5: share of answerable questions (that name a gold source file) whose first
  retrieved passage / one of the top 5 comes from a gold source file; hit@k asks instead for a
  passage containing an acceptable answer.
- citations: a citation is correct when its quoted sentence contains an acceptable answer, or when
  it comes from a gold source file and the passage (chunk) it quotes from contains one. Recall:
  share of answerable questions citing at least one passage that contains an acceptable answer.
  cites_source: share of answerable questions answered (not refused) citing a gold source file.
A question whose answering raised an error is recorded in `errors` and counts as wrong everywhere.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rag.errors import RagError, UsageError
from rag.text import detect_language, normalize, normalize_answer

log = logging.getLogger("rag")


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answers: list[str]
    sources: list[str]
    unanswerable: bool
    page: int | None = None  # 1-based physical PDF page stating the answer, where the gold file gives it


@dataclass(frozen=True)
class SkippedRow:
    """A gold row that was not used, and why."""

    line: int  # 1-based line number in the gold file
    reason: str


@dataclass
class GoldFile:
    questions: list[GoldQuestion]
    skipped: list[SkippedRow] = field(default_factory=list)


_GOLD_FIELDS = "expected one JSON object per line with id, question, answers, sources, unanswerable"


def parse_gold_row(line: str) -> GoldQuestion:
    """One line of a gold file as a question; ValueError says what is wrong with it."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise ValueError(f"not a JSON object; {_GOLD_FIELDS}")
    missing = [name for name in ("id", "question") if name not in row]
    if missing:
        raise ValueError(f"no {' nor '.join(missing)}; {_GOLD_FIELDS}")
    if not isinstance(row["question"], str):
        raise ValueError("the question is not a string")
    for name in ("answers", "sources"):
        value = row.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} is not a list of strings")
    if not isinstance(row.get("unanswerable", False), bool):
        raise ValueError("unanswerable is not true or false")
    page = row.get("page")
    if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
        raise ValueError("page is not a page number (1, 2, ...)")
    question = GoldQuestion(str(row["id"]), row["question"], list(row.get("answers", [])),
                            list(row.get("sources", [])), row.get("unanswerable", False), page)
    if not question.question.strip():
        raise ValueError("the question is empty")
    if not question.unanswerable and not any(a.strip() for a in question.answers):
        raise ValueError("an answerable question needs at least one acceptable answer")
    return question


def read_gold_file(path: Path) -> GoldFile:
    """The questions of a gold file, and the rows skipped with their reason. A bad row does not
    stop the others; a file that cannot be read, or holds no usable row, is a UsageError."""
    if path.is_dir():
        raise UsageError(f"gold file {path} is a folder; pass the .jsonl file itself")
    if not path.is_file():
        raise UsageError(f"gold file {path} not found")
    try:
        lines = path.read_text("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"gold file {path} is not UTF-8 text (byte {exc.start}); expected one JSON object per line") from None
    gold = GoldFile([])
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            gold.questions.append(parse_gold_row(line))
        except ValueError as exc:
            gold.skipped.append(SkippedRow(number, str(exc)))
    if not gold.questions:
        if not gold.skipped:
            raise UsageError(f"gold file {path} holds no question")
        shown = "; ".join(f"{path}:{row.line}: {row.reason}" for row in gold.skipped[:3])
        more = f"; and {len(gold.skipped) - 3} more" if len(gold.skipped) > 3 else ""
        raise UsageError(f"gold file {path} holds no usable question ({shown}{more})")
    return gold


def read_gold(path: Path) -> list[GoldQuestion]:
    """The usable questions of a gold file (bad rows skipped: `read_gold_file` says which)."""
    return read_gold_file(path).questions


def contains_answer(text: str, answers: Iterable[str], lang: str | None = None) -> bool:
    """Whether `text` holds one of the answers, compared after normalisation (by the conventions
    of `lang`, by default the text's language), on word boundaries.

    >>> contains_answer("Entraîné avec 2 000 GPU Nvidia H800", ["2000"])
    True
    >>> contains_answer("un coût de 5,5 millions de dollars", ["5.5 millions"])
    True
    >>> contains_answer("en 12000 heures", ["2000"]), contains_answer("about 2,400 settlers", ["2,400"])
    (False, True)
    """
    lang = lang or detect_language(text)
    haystack = f" {normalize_answer(text, lang)} "
    return any(f" {normalize_answer(a, lang)} " in haystack for a in answers if normalize_answer(a, lang))


def token_f1(prediction: str, answers: Iterable[str], lang: str | None = None) -> float:
    """Best token F1 of the prediction against the acceptable answers, on the French-aware
    tokens of `normalize_answer` (accents folded, elisions dropped, '2 000' = '2000'); the
    report's `f1`. `squad_f1` is the same measure on SQuAD's normalisation."""
    lang = lang or detect_language(prediction)
    pred = normalize_answer(prediction, lang).split()
    best = 0.0
    for answer in answers:
        gold = normalize_answer(answer, lang).split()
        common = sum(min(pred.count(t), gold.count(t)) for t in set(gold))
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


@lru_cache(maxsize=8)
def _article_patterns(language: str) -> tuple[re.Pattern | None, re.Pattern]:
    """The articles SQuAD's normalisation drops (the language packs' `articles`). The English ones
    are SQuAD v2's own and are dropped whatever the language (as its official script does); a
    French question drops the French ones too. An entry ending in an apostrophe is an elided
    article, dropped where it is glued to the next word ("l'entraînement" -> "entraînement")."""
    from rag import languages

    own = languages.pack(language).articles if language in languages.codes() else ()
    articles = dict.fromkeys(languages.pack("en").articles + own)
    elided = [a[:-1] for a in articles if a.endswith("'")]
    whole = [a for a in articles if not a.endswith("'")]
    return (re.compile(rf"\b(?:{'|'.join(map(re.escape, elided))})'") if elided else None,
            re.compile(rf"\b(?:{'|'.join(map(re.escape, whole))})\b"))


def _is_punctuation(char: str) -> bool:
    # string.punctuation is the official script's set (ASCII); Unicode punctuation (« » ’ …) too,
    # as MLQA's multilingual version of the script does.
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def squad_normalize(text: str, language: str = "en") -> str:
    """SQuAD v2's answer normalisation: lower case, punctuation removed, articles removed (the
    language packs' `articles`), whitespace collapsed. Accents and number forms are kept, as SQuAD
    keeps them.

    >>> squad_normalize("The Cat  sat, on a mat!")
    'cat sat on mat'
    >>> squad_normalize("L’entraînement de R1 a coûté « 5,5 millions » des dollars", "fr")
    'entraînement r1 coûté 55 millions dollars'
    """
    elided, whole = _article_patterns(language)
    text = normalize(text).lower()
    if elided is not None:
        text = elided.sub(" ", text)
    text = "".join(c for c in text if not _is_punctuation(c))
    return " ".join(whole.sub(" ", text).split())


def squad_exact_match(prediction: str, answers: Iterable[str], language: str = "en") -> float:
    """1.0 when the normalised prediction equals one normalised acceptable answer.

    >>> squad_exact_match("The 2 000 GPUs.", ["2 000 GPUs"])
    1.0
    """
    pred = squad_normalize(prediction, language)
    return float(any(pred == squad_normalize(a, language) for a in answers))


def squad_f1(prediction: str, answers: Iterable[str], language: str = "en") -> float:
    """Best token F1 against the acceptable answers, SQuAD v2's way (tokens of `squad_normalize`;
    when either side has no token, 1.0 if both have none).

    >>> squad_f1("Garry Tan, the CEO", ["Garry Tan"])
    0.8
    """
    pred = squad_normalize(prediction, language).split()
    best = 0.0
    for answer in answers:
        gold = squad_normalize(answer, language).split()
        if not gold or not pred:
            best = max(best, float(gold == pred))
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


_MARKERS = re.compile(r"\s*(?:\[\d+\])+")


@lru_cache(maxsize=1)
def _extractive_wrapper() -> re.Pattern:
    from rag import languages  # the wrapper `answer()` writes around a quoted sentence

    prefixes = "|".join(re.escape(p.text("according")) for p in languages.packs())
    # the closing » is the one followed by the quote's citation marker (the quote may hold « » too)
    return re.compile(rf"^\s*(?:{prefixes})«\s?(.*?)\s?»(?=\s*\[\d+\])", re.DOTALL)


def answer_text(text: str) -> str:
    """The words of an answer, as scored: without citation markers, and for an extractive answer
    without the "According to the sources: « … »" around the quote.

    >>> answer_text("D'après les sources : « Il a coûté 6 M$. » [1][2].")
    'Il a coûté 6 M$.'
    >>> answer_text("Garry Tan [1], PDG de Y Combinator [2].")
    'Garry Tan, PDG de Y Combinator.'
    """
    match = _extractive_wrapper().match(text)
    if match:
        quotes = [match.group(1)]
        rest = text[match.end():]
        while (more := _NEXT_QUOTE.match(rest)) is not None:  # "« A. » [1]. « B. » [2]."
            quotes.append(more.group(1))
            rest = rest[more.end():]
        rest = _MARKERS.sub("", rest)
        if quotes[-1][-1:] in ".!?…" and rest.lstrip().startswith("."):  # "« A. » [1]." -> "A."
            rest = rest.lstrip()[1:]
        text = " ".join(quotes) + rest
    return _MARKERS.sub("", text).strip()


# a further quote of an extractive answer, after the citation markers of the one before it
_NEXT_QUOTE = re.compile(r"(?:\s*\[\d+\])+\.?\s*«\s?(.*?)\s?»(?=\s*\[\d+\])", re.DOTALL)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 1)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def retrieval_record(gold: GoldQuestion, hits) -> dict:
    """Where the answer and the gold files come among the retrieved passages (ranks are 1-based;
    None: not among them)."""
    rank = next((h.rank for h in hits if contains_answer(h.chunk.text, gold.answers)), None)
    source_rank = next((h.rank for h in hits if h.chunk.source in gold.sources), None)
    top5 = {h.chunk.source for h in hits[:5]}
    recall = len(set(gold.sources) & top5) / len(gold.sources) if gold.sources else None
    return {"answer_rank": rank, "source_rank": source_rank,
            "source_recall@5": recall, "top_sources": [h.chunk.source for h in hits[:5]]}


def retrieval_metrics(records: list[dict]) -> dict:
    answerable = [r for r in records if not r["unanswerable"]]

    def summary(rows: list[dict]) -> dict:
        ranks = [r["retrieval"]["answer_rank"] for r in rows]
        with_sources = [r for r in rows if r["sources"]]
        source_ranks = [r["retrieval"]["source_rank"] for r in with_sources]
        recalls = [r["retrieval"]["source_recall@5"] for r in with_sources]
        return {
            "n": len(rows),
            "hit@1": _mean([float(x is not None and x <= 1) for x in ranks]),
            "hit@3": _mean([float(x is not None and x <= 3) for x in ranks]),
            "hit@5": _mean([float(x is not None and x <= 5) for x in ranks]),
            "mrr": _mean([1.0 / x if x else 0.0 for x in ranks]),
            "source@1": _mean([float(x is not None and x <= 1) for x in source_ranks]),
            "source@5": _mean([float(x is not None and x <= 5) for x in source_ranks]),
            "source_recall@5": _mean(recalls),
        }

    result = summary(answerable)
    result["by_language"] = {
        lang: summary([r for r in answerable if r["language"] == lang])
        for lang in sorted({r["language"] for r in answerable})
    }
    return result


def question_answerability(question: str, engine, k: int) -> float:
    """The score `answer()` compares with the refusal threshold, from the same evidence."""
    from rag.pipeline import decision_for

    return decision_for(question, engine, k).score


def refusal_calibration(records: list[dict], thresholds: Iterable[float] | None = None) -> list[dict]:
    """Refusal accuracy and false-refusal rate for a range of thresholds, from each question's
    answerability: the table to choose `refusal_threshold` from, without running the model."""
    thresholds = thresholds or [round(0.30 + 0.025 * i, 3) for i in range(17)]
    records = [r for r in records if r.get("answerability") is not None]  # not the questions that failed
    answerable = [r["answerability"] for r in records if not r["unanswerable"]]
    unanswerable = [r["answerability"] for r in records if r["unanswerable"]]
    return [
        {"threshold": t,
         "accuracy": _mean([float(a < t) for a in unanswerable]),
         "false_refusal_rate": _mean([float(a < t) for a in answerable])}
        for t in thresholds
    ]


def suggest_threshold(records: list[dict], max_false_refusals: float = 0.05) -> float | None:
    """The refusal threshold that refuses the most unanswerable questions while refusing at most
    `max_false_refusals` of the answerable ones, placed midway between the two answerability
    scores it separates (so neither sits on the edge).

    >>> suggest_threshold([{"answerability": a, "unanswerable": u} for a, u in
    ...                    [(0.2, True), (0.4, True), (0.5, False), (0.9, False)]], 0.0)
    0.45
    """
    records = [r for r in records if r.get("answerability") is not None]
    scores = sorted({r["answerability"] for r in records})
    answerable = [r["answerability"] for r in records if not r["unanswerable"]]
    unanswerable = [r["answerability"] for r in records if r["unanswerable"]]
    if not answerable or not unanswerable:
        return None
    best = None
    for low, high in zip(scores, scores[1:]):
        t = round((low + high) / 2, 3)
        refused = sum(a < t for a in unanswerable)
        if sum(a < t for a in answerable) <= max_false_refusals * len(answerable) and (best is None or refused > best[0]):
            best = (refused, t)
    return best[1] if best else None


def answer_record(gold: GoldQuestion, result, passage_of: Callable[[str, int, int], str]) -> dict:
    """Score one Answer against its gold question; `passage_of` gives the chunk text around a quote.

    `exact_match` and `squad_f1` are the question's SQuAD v2 scores: on an unanswerable question,
    1.0 when refused and 0.0 otherwise."""
    record = {
        "answer": result.text,
        "refused": result.refused,
        "mode": result.mode,
        "citations": [{"n": c.n, "source": c.source, "page": c.page, "start": c.start, "end": c.end, "quote": c.quote}
                      for c in result.citations],
        "timings": result.timings,
        "tokens_per_s": result.tokens_per_s,
        "draft": result.draft,
    }
    span = getattr(result, "span", None)
    if span is not None:  # the model's span, shown or not: thresholds can be compared from one run
        record["span"] = {"text": span.text, "confidence": span.confidence, "source": span.evidence.source,
                          "start": span.source_start, "end": span.source_end,
                          "logprobs": [round(x, 3) for x in span.logprobs]}
    problems = []
    if gold.unanswerable:
        if not result.refused:
            problems.append("answered an unanswerable question")
        record.update(correct=None, f1=None, exact_match=float(result.refused), squad_f1=float(result.refused),
                      citations_correct=[])
    else:
        words = "" if result.refused else answer_text(result.text)
        language = detect_language(gold.question)
        correct = not result.refused and contains_answer(words, gold.answers)
        good = []
        for c in result.citations:
            in_quote = contains_answer(c.quote, gold.answers)
            in_passage = contains_answer(passage_of(c.source, c.start, c.end), gold.answers)
            good.append(in_quote or (c.source in gold.sources and in_passage))
        record.update(
            correct=correct,
            f1=0.0 if result.refused else round(token_f1(words, gold.answers), 4),
            exact_match=0.0 if result.refused else squad_exact_match(words, gold.answers, language),
            squad_f1=0.0 if result.refused else round(squad_f1(words, gold.answers, language), 4),
            citations_correct=good,
            cites_answer=any(contains_answer(passage_of(c.source, c.start, c.end), gold.answers) for c in result.citations),
            # None where it does not apply: a refusal, a gold row naming no source file
            cites_source=(any(c.source in gold.sources for c in result.citations)
                          if gold.sources and not result.refused else None),
        )
        if gold.page is not None:  # a correct citation from the gold file must give the gold page
            pages = [c.page for c, ok in zip(result.citations, good) if ok and c.source in gold.sources]
            if pages:
                record["page_correct"] = pages[0] == gold.page
                if pages[0] != gold.page:
                    problems.append(f"cites page {pages[0]}, the answer is on page {gold.page}")
        if result.refused:
            problems.append("refused an answerable question")
        elif not correct:
            problems.append("no acceptable answer in the text")
        if result.citations and not all(good):
            problems.append(f"{good.count(False)} citation(s) do not support the answer")
        if not result.refused and not result.citations:
            problems.append("no citation")
    record["problems"] = problems
    return record


def error_record(gold: GoldQuestion, message: str) -> dict:
    """The record of a question whose answering raised an error: no answer, wrong on every count
    (not a refusal either: an unanswerable question that fails is not refused)."""
    answerable = not gold.unanswerable
    return {
        "answer": "", "refused": False, "mode": "error", "citations": [], "timings": None,
        "tokens_per_s": None, "draft": "",
        "correct": False if answerable else None, "f1": 0.0 if answerable else None,
        "exact_match": 0.0, "squad_f1": 0.0, "citations_correct": [],
        **({"cites_answer": False, "cites_source": False if gold.sources else None} if answerable else {}),
        "problems": [f"error: {message}"], "error": message,
    }


def answer_metrics(records: list[dict]) -> dict[str, dict]:
    answerable = [r for r in records if not r["unanswerable"]]
    unanswerable = [r for r in records if r["unanswerable"]]
    flags = [ok for r in answerable for ok in r["citations_correct"]]
    timed = [r for r in records if r.get("timings")]  # not the questions that failed
    firsts = [r["timings"]["first_token"] for r in timed]
    totals = [r["timings"]["total"] for r in timed]
    rates = [r["tokens_per_s"] for r in records if r.get("tokens_per_s")]
    return {
        "answers": {
            "n": len(answerable),
            "accuracy": _mean([float(r["correct"]) for r in answerable]),
            "f1": _mean([r["f1"] for r in answerable]),
            "exact_match": _mean([r["exact_match"] for r in answerable]),
            "squad_f1": _mean([r["squad_f1"] for r in answerable]),
            # over every question: an unanswerable one scores 1 when refused
            "squad_v2_exact_match": _mean([r["exact_match"] for r in records]),
            "squad_v2_f1": _mean([r["squad_f1"] for r in records]),
        },
        "citations": {
            "n": len(flags),
            "precision": _mean([float(x) for x in flags]),
            "recall": _mean([float(r["cites_answer"]) for r in answerable]),
            "cites_source": _mean([float(r["cites_source"]) for r in answerable if r.get("cites_source") is not None]),
            # of the correct citations into a gold PDF whose row gives a page: the share naming that page
            "page_accuracy": _mean([float(r["page_correct"]) for r in answerable if "page_correct" in r]),
        },
        "refusals": {
            "n_unanswerable": len(unanswerable),
            "accuracy": _mean([float(r["refused"]) for r in unanswerable]),
            "false_refusal_rate": _mean([float(r["refused"]) for r in answerable]),
        },
        "latency": {
            "first_token_ms": {"p50": percentile(firsts, 0.5), "p95": percentile(firsts, 0.95)},
            "total_ms": {"p50": percentile(totals, 0.5), "p95": percentile(totals, 0.95)},
            "tokens_per_s": round(statistics.fmean(rates), 1) if rates else None,
        },
    }


def _message(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RagError) else f"{type(exc).__name__}: {exc}"


def evaluate(gold: list[GoldQuestion], engine, *, k: int = 5, retrieval_only: bool = False,
             use_llm: bool | None = None, progress: Callable[[], None] | None = None,
             skipped_rows: Iterable[SkippedRow] = ()) -> dict:
    """Run the gold questions and return the report object written by `rag eval --json`.

    A question whose retrieval or answering raises does not stop the run: it is listed in the
    report's `errors` and counts as wrong. `skipped_rows` (the gold rows `read_gold_file` could not
    use) are listed in `skipped_rows`."""
    from rag.pipeline import answer

    def passage_of(source: str, start: int, end: int) -> str:
        for chunk in engine.index.chunks:
            if chunk.source == source and chunk.start <= start and end <= chunk.end:
                return chunk.text
        return ""

    records, errors = [], []
    for q in gold:
        record = {"id": q.id, "question": q.question, "language": detect_language(q.question),
                  "unanswerable": q.unanswerable, "answers": q.answers, "sources": q.sources}
        try:
            hits = engine.retriever.search(q.question, max(k, 5))
            record["retrieval"] = retrieval_record(q, hits)
            if retrieval_only:
                score = question_answerability(q.question, engine, k)
            else:
                result = answer(q.question, engine, k=k, use_llm=use_llm)
                record.update(answer_record(q, result, passage_of))
                score = result.score
            record["answerability"] = round(score, 4)
            record["refusal_reason"] = "" if retrieval_only else result.refusal_reason
        except Exception as exc:  # one failing question is reported, and the run goes on
            log.debug("question %s failed", q.id, exc_info=True)
            message = _message(exc)
            record.setdefault("retrieval", retrieval_record(q, []))
            if not retrieval_only:
                record.update(error_record(q, message))
            record.update(answerability=None, error=message)
            errors.append({"id": q.id, "message": message})
        records.append(record)
        if progress:
            progress()
    settings = engine.settings
    report = {"n": len(records), "retrieval": retrieval_metrics(records),
              "refusal_calibration": refusal_calibration(records),
              "suggested_refusal_threshold": suggest_threshold(records),
              "skipped_rows": [{"line": row.line, "reason": row.reason} for row in skipped_rows],
              "errors": errors}
    if not retrieval_only:
        report.update(answer_metrics(records))
    report["config"] = {
        "k": k,
        "retrieval": engine.retriever.config.mode,
        "embedder": engine.index.manifest["embedder"]["name"],
        "generator": settings.generator if (use_llm if use_llm is not None else settings.use_llm) else None,
        "use_llm": settings.use_llm if use_llm is None else use_llm,
        "answer_mode": settings.answer_mode,
        "retrieval_only": retrieval_only,
        "chunk_chars": engine.index.manifest["chunking"]["max_chars"],
        "chunks": engine.index.manifest["count"],
        "chunk_vectors": engine.index.dense is not None,  # False: an index built with --no-vectors
        "refusal_threshold": settings.refusal_threshold,
    }
    report["questions"] = records
    return report
