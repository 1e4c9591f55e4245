"""The span task against the extractive answer: does the model, copying a few words of the best
evidence sentences under a grammar, answer as often as the quoted sentence, and more briefly?

    rag index --corpus ../shared/devsets/squad2-en/corpus --index /tmp/sp-sq
    rag index --corpus seeds --index /tmp/sp-seeds
    python benchmarks/span_benchmark.py --set seeds=/tmp/sp-seeds:seeds/gold.jsonl \\
        --set squad=/tmp/sp-sq:../shared/devsets/squad2-en/questions.jsonl:4 --log /tmp/span.jsonl
    python benchmarks/span_benchmark.py --set squad-rest=/tmp/sp-sq:../shared/devsets/squad2-en/questions.jsonl:4:1 \\
        --set squad-rest2=/tmp/sp-sq:../shared/devsets/squad2-en/questions.jsonl:4:2 --variants span1 --log /tmp/span-held-out.jsonl
    python benchmarks/span_benchmark.py --summarize /tmp/span.jsonl [--gate 0.4]   # the tables again, another gate
    python benchmarks/span_benchmark.py --per-token                               # ms per token: scan, grammar, free

Each --set is NAME=INDEX:GOLD[:EVERY[:OFFSET]] (EVERY=4, OFFSET=2: questions 2, 6, 10...). Every question
goes through the pipeline's own `gather()`; a question the pipeline would refuse
(`rag.policy.decide()`) counts as wrong and F1 0 for every answer variant, as in
`rag eval`. Answer variants, scored on the answerable questions:

  extractive    the best evidence sentence (what --no-llm quotes)
  span          the model's span from the best 3 sentences (4 solved examples in the prompt; the
                span starts at a unit of the asked kind, not at a word of the question)
  span1         the same from the best sentence only
  span2         the same from the best 2 sentences
  span-untyped  3 sentences, any start but the question's words
  span-zero     3 sentences, no solved example
  span1-ex2     the best sentence, 2 solved examples instead of 4
  span-refuse   3 sentences; the model may also write the refusal word (counted how often it does
                for answerable and unanswerable questions; when it does, the answer falls back to
                the extractive sentence)
  span1-refuse  the same with the best sentence only
  grammar       `span1` enforced by llama.cpp's grammar sampler instead of the scan (the same
                tokens are expected: the count of differing answers is reported)
  free          the prompt of `span1`, no constraint: what the model writes freely
  NAME|gate     the span of NAME when its confidence (the model's mean probability per token of
                what it wrote) is at least --gate, else the extractive sentence
  NAME+sentence the span of NAME, then the sentence it comes from (what a reader would be shown)

Accuracy: `contains_answer`; F1: `token_f1` (and SQuAD's own `squad_f1` where the harness has
it); time: the p50 of the model call (prompt and generation, grammar included), in ms.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import evaluation  # noqa: E402
from rag.languages import pack  # noqa: E402
from rag.pipeline import Engine, gather  # noqa: E402
from rag.policy import decide  # noqa: E402
from rag.prompting import SPAN_EXAMPLES, build_span_prompt  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.span import CONFIDENT, Span, pick_span, shown  # noqa: E402
from rag.query import Query, analyse  # noqa: E402

VARIANTS = {  # name: pick_span() keyword arguments
    "span": dict(sentences=3),
    "span1": dict(sentences=1),
    "span2": dict(sentences=2),
    "span-untyped": dict(sentences=3, typed=False),
    "span-zero": dict(sentences=3, examples=0),
    "span1-ex2": dict(sentences=1, examples=2),
    "span-refuse": dict(sentences=3, refusal=True),
    "span1-refuse": dict(sentences=1, refusal=True),
    "grammar": dict(sentences=1),
}


def timed_span(engine: Engine, query: Query, evidence, grammar: bool = False,
               **options) -> tuple[Span | None, float, str]:
    """The span, the model call's duration (ms), and what the model wrote."""
    written: list[str] = []
    generator = engine.generator

    class Recording:  # keeps what the model wrote, to tell a refusal from a failed copy
        name = generator.name

        @property
        def last_logprobs(self):
            return generator.last_logprobs

        def stream(self, prompt, max_tokens, temperature, constraint=None):
            for piece in generator.stream(prompt, max_tokens, temperature, constraint=constraint):
                written.append(piece)
                yield piece

    generator.constrain_with = "grammar" if grammar else "scan"
    prime(engine, query.language, options.get("refusal", False), options.get("examples", SPAN_EXAMPLES))
    try:
        started = time.perf_counter()
        span = pick_span(Recording(), query, evidence, **options)
        return span, (time.perf_counter() - started) * 1000, "".join(written)
    finally:
        generator.constrain_with = "scan"


def prime(engine: Engine, language: str, refusal: bool = False, examples: int = SPAN_EXAMPLES) -> None:
    """Leave llama.cpp's cache holding what the previous question of the same variant would have
    left: the fixed start of the prompt (instructions and examples), and not this question. Each
    variant is then timed as if it alone answered every question."""
    for _ in engine.generator.stream(build_span_prompt("?", ["-"], pack(language).span, refusal=refusal,
                                                       examples=examples),
                                     1, 0.0):
        pass


def free_answer(engine: Engine, query: Query, evidence) -> tuple[str, float]:
    prompt = build_span_prompt(query.text, [shown(evidence[0].text)], query.pack.span)
    prime(engine, query.language)
    started = time.perf_counter()
    text = "".join(engine.generator.stream(prompt, 24, 0.0)).strip()
    return text, (time.perf_counter() - started) * 1000


def run_set(name: str, index: Path, gold_path: Path, every: int, offset: int, variants: list[str],
            limit: int | None, log: Path | None = None) -> list[dict]:
    settings = Settings.from_env().with_overrides(index_dir=index)
    engine = Engine.load(settings)
    engine.warm_up()
    questions = evaluation.read_gold(gold_path)[offset::every][:limit]
    records = []
    for number, gold in enumerate(questions, 1):
        query = analyse(gold.question, engine.index.language, engine.index.languages)
        _, pool, terms, query = gather(query, engine, settings.k)
        evidence = pool[: settings.evidence_sentences]
        decision = decide(query, evidence, terms, engine.index.lexical)
        record = {"set": name, "id": gold.id, "question": gold.question, "answers": gold.answers,
                  "unanswerable": gold.unanswerable,
                  "refused": not evidence or decision.refuse(settings.refusal_threshold),
                  "sentences": [e.text for e in evidence[:3]],
                  "answers_by": {}, "time_ms": {}, "from": {}, "written": {}}
        if evidence:
            record["answers_by"]["extractive"] = evidence[0].text
            for variant in variants:
                if variant == "free":
                    text, ms = free_answer(engine, query, evidence)
                    record["answers_by"]["free"], record["time_ms"]["free"] = text, ms
                    continue
                span, ms, written = timed_span(engine, query, evidence, variant == "grammar",
                                               **VARIANTS[variant])
                record["time_ms"][variant], record["written"][variant] = ms, written
                record["from"][variant] = span.evidence.n if span else None
                record.setdefault("logprobs", {})[variant] = list(span.logprobs) if span else None
                record["answers_by"][variant] = span.text if span else None
        records.append(record)
        if log is not None:
            with log.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        shown_times = {k: round(v) for k, v in record["time_ms"].items()}
        print(f"{name} {number}/{len(questions)} {gold.id}: {shown_times} {record['answers_by']}", file=sys.stderr,
              flush=True)
    return records


def answer_of(record: dict, name: str, gate: float) -> str:
    """The answer a variant gives ('' when the pipeline refuses). NAME|gate: the span when its
    confidence (mean token probability) is at least `gate`, else the extractive sentence;
    NAME+sentence: the span, then the sentence it comes from. A variant without a span (the model
    declined, or wrote no copy) falls back to the extractive sentence, as the pipeline would."""
    if record["refused"]:
        return ""
    extractive = record["answers_by"].get("extractive") or ""
    base, mode = re.fullmatch(r"(.+?)(\|gate|\+sentence)?", name).groups()
    if base == "extractive":
        return extractive
    text = record["answers_by"].get(base)
    if not text:
        return extractive
    if mode == "|gate":
        logprobs = (record.get("logprobs") or {}).get(base)
        confident = bool(logprobs) and math.exp(statistics.fmean(logprobs)) >= gate
        return text if confident else extractive
    if mode == "+sentence":
        n = record["from"].get(base)
        sentences = record.get("sentences") or [extractive]
        return f"{text} — {sentences[n - 1] if n and n <= len(sentences) else extractive}"
    return text


def summary(records: list[dict], variants: list[str], gate: float = 0.0) -> dict:
    answerable = [r for r in records if not r["unanswerable"]]
    unanswerable = [r for r in records if r["unanswerable"]]
    spans = [v for v in variants if v in VARIANTS and v != "grammar"]
    names = ["extractive", *variants, *(f"{v}|gate" for v in spans), *(f"{v}+sentence" for v in spans[:2])]
    squad_f1 = getattr(evaluation, "squad_f1", None)
    out: dict = {"answerable": len(answerable), "unanswerable": len(unanswerable),
                 "pipeline_refused_answerable": sum(r["refused"] for r in answerable), "gate": gate}
    for name in names:
        rows = [answer_of(r, name, gate) for r in answerable]
        times = [r["time_ms"][name] for r in records if name in r["time_ms"]]
        stats = {
            "accuracy": round(statistics.fmean(float(bool(t) and evaluation.contains_answer(t, r["answers"]))
                                               for t, r in zip(rows, answerable)), 4),
            "f1": round(statistics.fmean(evaluation.token_f1(t, r["answers"]) for t, r in zip(rows, answerable)), 4),
            "words": round(statistics.fmean(len(t.split()) for t in rows if t), 1),
            "time_p50_ms": round(statistics.median(times)) if times else None,
        }
        if squad_f1 is not None:
            stats["squad_f1"] = round(statistics.fmean(squad_f1(t, r["answers"]) for t, r in zip(rows, answerable)), 4)
        if name.endswith("|gate"):
            base = name[: -len("|gate")]
            stats["span_shown"] = sum(t == r["answers_by"].get(base) for t, r in zip(rows, answerable) if t)
        if name in VARIANTS:
            made = [r for r in answerable if not r["refused"] and name in r["from"]]
            stats["no_span"] = sum(r["from"][name] is None for r in made)
            stats["from_top_sentence"] = sum(r["from"][name] == 1 for r in made)
            stats["from_other_sentence"] = sum(r["from"][name] not in (None, 1) for r in made)
        if VARIANTS.get(name, {}).get("refusal"):
            stats["declined_answerable"] = sum(r["answers_by"].get(name) is None for r in answerable if name in r["from"])
            stats["declined_unanswerable"] = sum(r["answers_by"].get(name) is None
                                                 for r in unanswerable if name in r["from"])
            stats["declined_unanswerable_not_refused"] = sum(
                r["answers_by"].get(name) is None for r in unanswerable if name in r["from"] and not r["refused"])
            stats["unanswerable_not_refused"] = sum(not r["refused"] for r in unanswerable)
        if name == "grammar" and "span1" in variants:
            stats["answers_differing_from_span1"] = sum(
                r["answers_by"].get("grammar") != r["answers_by"].get("span1") for r in records if "grammar" in r["from"])
        out[name] = stats
    return out


class _Whole:
    """A constraint allowing one text only (and a line break after it): forces a long copy."""

    def __init__(self, text: str):
        self.text = text

    def outputs(self) -> list[str]:
        return [f" {self.text}\n"]

    def gbnf(self) -> str:
        return 'root ::= " "? "' + self.text.replace("\\", "\\\\").replace('"', '\\"') + '" "\\n"'


def per_token(settings: Settings, runs: int = 5) -> dict:
    """Milliseconds per generated token, the prompt already cached, while the model copies the
    same 16 tokens of its prompt under the scan, under llama.cpp's grammar sampler, and freely
    (a prompt it continues without a line break)."""
    from rag.pipeline import load_configured_generator

    generator = load_configured_generator(settings)
    sentence = ("The Old Truman Brewery, then known as the Black Eagle Brewery, was founded in 1724 by Joseph "
                "Truman in Brick Lane and was the largest brewery in London by the middle of the century.")
    prompts = {"span": build_span_prompt("What was the Old Truman Brewery?", [shown(sentence)], pack("en").span),
               "free": "Text: " + sentence + "\nThe same text again: The Old"}
    out: dict = {}
    for mode in ("scan", "grammar", "free"):
        prompt = prompts["free" if mode == "free" else "span"]
        per, text = [], ""
        for _ in range(runs + 1):
            list(generator.stream(prompt, 1, 0.0))  # cached: only generation is timed below
            generator.constrain_with = "grammar" if mode == "grammar" else "scan"
            started = time.perf_counter()
            text = "".join(generator.stream(prompt, 16, 0.0, constraint=None if mode == "free" else _Whole(sentence)))
            per.append((time.perf_counter() - started) * 1000 / max(1, generator.last_usage["completion_tokens"]))
        generator.constrain_with = "scan"
        out[mode] = {"ms_per_token_p50": round(statistics.median(per[1:]), 1),
                     "tokens": generator.last_usage["completion_tokens"], "text": text}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], help="NAME=INDEX:GOLD[:EVERY[:OFFSET]]")
    parser.add_argument("--variants", default="span1,grammar,free,span,span1-refuse,span1-ex2")
    parser.add_argument("--gate", type=float, default=CONFIDENT,
                        help="confidence below which a |gate variant quotes the sentence instead of the span")
    parser.add_argument("--limit", type=int, help="at most this many questions per set (after EVERY)")
    parser.add_argument("--json", type=Path, help="write every record and the summaries here")
    parser.add_argument("--log", type=Path, help="append each question's record to this JSON-lines file as it is done")
    parser.add_argument("--summarize", type=Path, nargs="+",
                        help="only summarise the records of these --log files (a question's variants merged)")
    parser.add_argument("--per-token", action="store_true", help="only time generation per token (scan, grammar, free)")
    args = parser.parse_args()
    if args.per_token:
        print(json.dumps(per_token(Settings.from_env()), indent=1, ensure_ascii=False))
        return
    if args.summarize:
        merged: dict[tuple[str, str], dict] = {}
        for path in args.summarize:
            for line in path.read_text("utf-8").splitlines():
                record = json.loads(line)
                key = (record["set"], record["id"])
                if key in merged:
                    for field in ("answers_by", "time_ms", "from", "written", "logprobs"):
                        merged[key].setdefault(field, {}).update(record.get(field, {}))
                else:
                    merged[key] = record
        names = sorted({r["set"] for r in merged.values()})
        present = {v for r in merged.values() for v in r["time_ms"]}
        found = [v for v in [*VARIANTS, "free"] if v in present]
        for name in names:
            rows = [r for r in merged.values() if r["set"] == name]
            print(json.dumps({name: summary(rows, found, args.gate)}, indent=1))
        return
    if not args.set:
        parser.error("give at least one --set (or --summarize)")
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS) - {"free"}
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {sorted(VARIANTS) + ['free']}")
    results = {}
    for spec in args.set:
        name, _, rest = spec.partition("=")
        index, gold, *numbers = rest.split(":")
        every, offset = (int(x) for x in [*numbers, *[1, 0][len(numbers):]][:2])
        records = run_set(name, Path(index), Path(gold), every, offset, variants, args.limit, args.log)
        results[name] = {"summary": summary(records, variants, args.gate), "records": records}
        print(json.dumps({name: results[name]["summary"]}, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), "utf-8")


if __name__ == "__main__":
    main()
