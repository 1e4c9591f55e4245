"""`rag eval --report DIR`: a Markdown report and a PNG chart a person can look at."""

from __future__ import annotations

from pathlib import Path


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1 else f"{value:.0f}"
    return str(value)


RETRIEVAL_KEYS = ("hit@1", "hit@3", "hit@5", "mrr", "source@1", "source@5", "source_recall@5")
ANSWER_KEYS = ("accuracy", "f1", "exact_match", "squad_f1", "squad_v2_exact_match", "squad_v2_f1")


def summary_rows(report: dict) -> list[tuple[str, str, object]]:
    rows = [("retrieval", key, report["retrieval"].get(key)) for key in RETRIEVAL_KEYS]
    for lang, values in report["retrieval"].get("by_language", {}).items():
        rows += [(f"retrieval ({lang}, n={values['n']})", key, values.get(key)) for key in ("hit@1", "hit@3", "mrr", "source@1")]
    if "answers" in report:
        rows += [("answers", key, report["answers"].get(key)) for key in ANSWER_KEYS]
        rows += [("citations", "precision", report["citations"]["precision"]), ("citations", "recall", report["citations"]["recall"]),
                 ("citations", "cites_source", report["citations"].get("cites_source")),
                 ("citations", "page_accuracy", report["citations"].get("page_accuracy")),
                 ("refusals", "accuracy", report["refusals"]["accuracy"]),
                 ("refusals", "false_refusal_rate", report["refusals"]["false_refusal_rate"])]
        lat = report["latency"]
        rows += [("latency", "first_token_ms p50", lat["first_token_ms"]["p50"]), ("latency", "first_token_ms p95", lat["first_token_ms"]["p95"]),
                 ("latency", "total_ms p50", lat["total_ms"]["p50"]), ("latency", "total_ms p95", lat["total_ms"]["p95"]),
                 ("latency", "tokens_per_s", lat["tokens_per_s"])]
    return rows


def _line(label: str, pairs: list[tuple[str, object]]) -> str:
    return f"{label:<28}" + "  ".join(f"{name} {_fmt(value)}" for name, value in pairs)


def text_summary(report: dict) -> list[str]:
    """The metrics as a few terminal lines, one per group, what each counts in brackets:

    retrieval (60 answerable)  hit@1 0.967  hit@3 1.000  hit@5 1.000  mrr 0.983  source@1 0.933 ...
    """
    r = report["retrieval"]
    lines = [_line(f"retrieval ({r['n']} answerable)", [(key, r.get(key)) for key in RETRIEVAL_KEYS])]
    for lang, values in r.get("by_language", {}).items():
        lines.append(_line(f"  {lang} ({values['n']})", [(key, values.get(key)) for key in ("hit@1", "hit@3", "mrr", "source@1")]))
    if "answers" in report:
        a, c, f, lat = report["answers"], report["citations"], report["refusals"], report["latency"]
        lines += [
            _line(f"answers ({a['n']} answerable)", [(key, a.get(key)) for key in ANSWER_KEYS[:4]]),
            _line(f"  SQuAD v2 (all {report['n']})", [("exact_match", a.get("squad_v2_exact_match")), ("f1", a.get("squad_v2_f1"))]),
            _line(f"citations ({c['n']})", [(key, c.get(key)) for key in ("precision", "recall", "cites_source", "page_accuracy")]),
            _line(f"refusals ({f['n_unanswerable']} unanswerable)", [("accuracy", f["accuracy"]), ("false_refusal_rate", f["false_refusal_rate"])]),
            _line("latency (ms)", [("first_token p50/p95", f"{_fmt(lat['first_token_ms']['p50'])}/{_fmt(lat['first_token_ms']['p95'])}"),
                                   ("total p50/p95", f"{_fmt(lat['total_ms']['p50'])}/{_fmt(lat['total_ms']['p95'])}"),
                                   ("tokens/s", lat["tokens_per_s"])]),
        ]
    if report.get("skipped_rows") or report.get("errors"):
        lines.append(f"{len(report.get('skipped_rows', []))} gold row(s) skipped, "
                     f"{len(report.get('errors', []))} question(s) failed (counted as wrong)")
    return lines


def markdown(report: dict) -> str:
    config = ", ".join(f"{k}={v}" for k, v in report["config"].items())
    lines = [f"# Evaluation report ({report['n']} questions)", "", f"Configuration: {config}", "",
             "| group | metric | value |", "|---|---|---|"]
    lines += [f"| {g} | {m} | {_fmt(v)} |" for g, m, v in summary_rows(report)]
    calibration = report.get("refusal_calibration") or []
    if calibration:
        lines += ["", "## Refusal threshold", "",
                  f"Current threshold: {report['config'].get('refusal_threshold')}. Refusal accuracy on unanswerable "
                  "questions and false-refusal rate on answerable ones, had the threshold been:", "",
                  "| threshold | refusal accuracy | false refusal rate |", "|---|---|---|"]
        lines += [f"| {c['threshold']} | {_fmt(c['accuracy'])} | {_fmt(c['false_refusal_rate'])} |" for c in calibration]
        lines += ["", "Threshold refusing the most unanswerable questions with at most 5% false refusals: "
                  f"{_fmt(report.get('suggested_refusal_threshold'))}."]
    skipped, errors = report.get("skipped_rows") or [], report.get("errors") or []
    if skipped:
        lines += ["", "## Gold rows skipped", "", "| line | reason |", "|---|---|"]
        lines += [f"| {row['line']} | {_cell(row['reason'])} |" for row in skipped]
    if errors:
        lines += ["", "## Questions that failed (counted as wrong)", "", "| id | error |", "|---|---|"]
        lines += [f"| {e['id']} | {_cell(e['message'], 200)} |" for e in errors]
    lines += ["", "## Questions", ""]
    if "answers" in report:
        lines += ["| id | question | answer | citations | rank | what was wrong |", "|---|---|---|---|---|---|"]
        for q in report["questions"]:
            cites = "<br>".join(f"[{c['n']}] {c['source']}: {_cell(c['quote'], 90)}" for c in q["citations"])
            lines.append(f"| {q['id']} | {_cell(q['question'])} | {_cell(q['answer'], 200)} | {cites} | "
                         f"{_fmt(q['retrieval']['answer_rank'])} | {'; '.join(q['problems']) or 'ok'} |")
    else:
        lines += [("| id | question | rank of first passage with the answer | rank of first passage from a gold file "
                   "| top sources |"), "|---|---|---|---|---|"]
        for q in report["questions"]:
            if not q["unanswerable"]:
                lines.append(f"| {q['id']} | {_cell(q['question'])} | {_fmt(q['retrieval']['answer_rank'])} | "
                             f"{_fmt(q['retrieval'].get('source_rank'))} | "
                             f"{', '.join(s[:3] for s in q['retrieval']['top_sources'])} |")
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [(f"{g.split(' (')[0][:4]}·{m}", v) for g, m, v in summary_rows(report)
              if isinstance(v, float) and v <= 1 and not g.startswith("retrieval (")]
    has_latency = "latency" in report
    fig, axes = plt.subplots(1, 2 if has_latency else 1, figsize=(13 if has_latency else 8, 4.5), squeeze=False)
    ax = axes[0][0]
    ax.barh([s[0] for s in scores][::-1], [s[1] for s in scores][::-1], color="#4c72b0")
    ax.set_xlim(0, 1.05)
    for y, (_, v) in enumerate(scores[::-1]):
        ax.text(min(v + 0.01, 0.95), y, f"{v:.2f}", va="center", fontsize=8)
    ax.set_title(f"Metrics ({report['n']} questions)")
    if has_latency:
        ax = axes[0][1]
        timed = [q["timings"] for q in report["questions"] if q.get("timings")]  # not the questions that failed
        totals = [t["total"] for t in timed]
        firsts = [t["first_token"] for t in timed]
        ax.hist([firsts, totals], bins=20, label=["first token", "total"], color=["#55a868", "#c44e52"])
        ax.set_xlabel("milliseconds")
        ax.set_ylabel("questions")
        ax.set_title("Latency distribution")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, png = folder / "report.md", folder / "report.png"
    md.write_text(markdown(report), encoding="utf-8")
    chart(report, png)
    return md, png
