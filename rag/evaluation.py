"""The evaluation harness: every gold question goes through the same `answer()` as the CLI and
the web page, and is scored on retrieval, answers, citations, refusals and latency.

Citation rule: a citation is correct when its quoted sentence contains an acceptable answer, or
when it comes from a gold source file and the passage (chunk) it quotes from contains one.
Recall: share of answerable questions citing at least one passage that contains an acceptable answer.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import UsageError
from rag.text import detect_language, normalize_answer


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answers: list[str]
    sources: list[str]
    unanswerable: bool
    page: int | None = None  # 1-based physical PDF page stating the answer, where the gold file gives it


def read_gold(path: Path) -> list[GoldQuestion]:
    if path.is_dir():
        raise UsageError(f"gold file {path} is a folder; pass the .jsonl file itself")
    if not path.is_file():
        raise UsageError(f"gold file {path} not found")
    try:
        lines = path.read_text("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"gold file {path} is not UTF-8 text (byte {exc.start}); expected one JSON object per line") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q = GoldQuestion(str(row["id"]), row["question"], list(row.get("answers", [])),
                             list(row.get("sources", [])), bool(row.get("unanswerable", False)),
                             int(row["page"]) if row.get("page") is not None else None)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}:{number}: not a gold question ({exc}); expected id, question, answers, sources, unanswerable") from None
        if not q.question.strip():
            raise UsageError(f"{path}:{number}: the question is empty")
        if not q.unanswerable and not q.answers:
            raise UsageError(f"{path}:{number}: an answerable question needs at least one acceptable answer")
        questions.append(q)
    if not questions:
        raise UsageError(f"gold file {path} holds no question")
    return questions


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """Whether `text` holds one of the answers, compared after normalisation, on word boundaries.

    >>> contains_answer("Entraîné avec 2 000 GPU Nvidia H800", ["2000"])
    True
    >>> contains_answer("un coût de 5,5 millions de dollars", ["5.5 millions"])
    True
    >>> contains_answer("en 12000 heures", ["2000"])
    False
    """
    haystack = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(a)} " in haystack for a in answers if normalize_answer(a))


def token_f1(prediction: str, answers: Iterable[str]) -> float:
    """Best token F1 of the prediction against the acceptable answers (SQuAD-style)."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for answer in answers:
        gold = normalize_answer(answer).split()
        common = sum(min(pred.count(t), gold.count(t)) for t in set(gold))
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


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
    rank = next((h.rank for h in hits if contains_answer(h.chunk.text, gold.answers)), None)
    top5 = {h.chunk.source for h in hits[:5]}
    recall = len(set(gold.sources) & top5) / len(gold.sources) if gold.sources else None
    return {"answer_rank": rank, "source_recall@5": recall,
            "top_sources": [h.chunk.source for h in hits[:5]]}


def retrieval_metrics(records: list[dict]) -> dict:
    answerable = [r for r in records if not r["unanswerable"]]

    def summary(rows: list[dict]) -> dict:
        ranks = [r["retrieval"]["answer_rank"] for r in rows]
        recalls = [r["retrieval"]["source_recall@5"] for r in rows if r["retrieval"]["source_recall@5"] is not None]
        return {
            "n": len(rows),
            "hit@1": _mean([float(x is not None and x <= 1) for x in ranks]),
            "hit@3": _mean([float(x is not None and x <= 3) for x in ranks]),
            "hit@5": _mean([float(x is not None and x <= 5) for x in ranks]),
            "mrr": _mean([1.0 / x if x else 0.0 for x in ranks]),
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
    from rag.evidence import answerability
    from rag.pipeline import gather_evidence

    _, pool = gather_evidence(question, engine, k)
    return answerability(pool[: engine.settings.evidence_sentences])


def refusal_calibration(records: list[dict], thresholds: Iterable[float] | None = None) -> list[dict]:
    """Refusal accuracy and false-refusal rate for a range of thresholds, from each question's
    answerability: the table to choose `refusal_threshold` from, without running the model."""
    thresholds = thresholds or [round(0.30 + 0.025 * i, 3) for i in range(17)]
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
    """Score one Answer against its gold question; `passage_of` gives the chunk text around a quote."""
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
    problems = []
    if gold.unanswerable:
        if not result.refused:
            problems.append("answered an unanswerable question")
        record.update(correct=None, f1=None, citations_correct=[])
    else:
        correct = not result.refused and contains_answer(result.text, gold.answers)
        good = []
        for c in result.citations:
            in_quote = contains_answer(c.quote, gold.answers)
            in_passage = contains_answer(passage_of(c.source, c.start, c.end), gold.answers)
            good.append(in_quote or (c.source in gold.sources and in_passage))
        record.update(
            correct=correct,
            f1=0.0 if result.refused else round(token_f1(result.text, gold.answers), 4),
            citations_correct=good,
            cites_answer=any(contains_answer(passage_of(c.source, c.start, c.end), gold.answers) for c in result.citations),
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


def answer_metrics(records: list[dict]) -> dict[str, dict]:
    answerable = [r for r in records if not r["unanswerable"]]
    unanswerable = [r for r in records if r["unanswerable"]]
    flags = [ok for r in answerable for ok in r["citations_correct"]]
    firsts = [r["timings"]["first_token"] for r in records]
    totals = [r["timings"]["total"] for r in records]
    rates = [r["tokens_per_s"] for r in records if r.get("tokens_per_s")]
    return {
        "answers": {
            "n": len(answerable),
            "accuracy": _mean([float(r["correct"]) for r in answerable]),
            "f1": _mean([r["f1"] for r in answerable]),
        },
        "citations": {
            "n": len(flags),
            "precision": _mean([float(x) for x in flags]),
            "recall": _mean([float(r["cites_answer"]) for r in answerable]),
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


def evaluate(gold: list[GoldQuestion], engine, *, k: int = 5, retrieval_only: bool = False,
             use_llm: bool | None = None, progress: Callable[[], None] | None = None) -> dict:
    """Run the gold questions and return the report object written by `rag eval --json`."""
    from rag.evidence import answerability
    from rag.pipeline import answer

    def passage_of(source: str, start: int, end: int) -> str:
        for chunk in engine.index.chunks:
            if chunk.source == source and chunk.start <= start and end <= chunk.end:
                return chunk.text
        return ""

    records = []
    for q in gold:
        record = {"id": q.id, "question": q.question, "language": detect_language(q.question),
                  "unanswerable": q.unanswerable, "answers": q.answers, "sources": q.sources}
        hits = engine.retriever.search(q.question, max(k, 5))
        record["retrieval"] = retrieval_record(q, hits)
        if retrieval_only:
            score = question_answerability(q.question, engine, k)
        else:
            result = answer(q.question, engine, k=k, use_llm=use_llm)
            record.update(answer_record(q, result, passage_of))
            score = answerability(result.evidence)
        record["answerability"] = round(score, 4)
        records.append(record)
        if progress:
            progress()
    settings = engine.settings
    report = {"n": len(records), "retrieval": retrieval_metrics(records),
              "refusal_calibration": refusal_calibration(records),
              "suggested_refusal_threshold": suggest_threshold(records)}
    if not retrieval_only:
        report.update(answer_metrics(records))
    report["config"] = {
        "k": k,
        "retrieval": engine.retriever.config.mode,
        "embedder": engine.index.manifest["embedder"]["name"],
        "generator": settings.generator if (use_llm if use_llm is not None else settings.use_llm) else None,
        "use_llm": settings.use_llm if use_llm is None else use_llm,
        "retrieval_only": retrieval_only,
        "chunk_chars": engine.index.manifest["chunking"]["max_chars"],
        "chunks": engine.index.manifest["count"],
        "refusal_threshold": settings.refusal_threshold,
    }
    report["questions"] = records
    return report
