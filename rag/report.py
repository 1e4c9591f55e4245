"""`rag eval --report DIR`: a Markdown report and a PNG chart a person can look at."""

from __future__ import annotations

from pathlib import Path


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1 else f"{value:.0f}"
    return str(value)


def summary_rows(report: dict) -> list[tuple[str, str, object]]:
    rows = [("retrieval", key, report["retrieval"][key]) for key in ("hit@1", "hit@3", "hit@5", "mrr", "source_recall@5")]
    for lang, values in report["retrieval"].get("by_language", {}).items():
        rows += [(f"retrieval ({lang}, n={values['n']})", key, values[key]) for key in ("hit@1", "hit@3", "mrr")]
    if "answers" in report:
        rows += [("answers", "accuracy", report["answers"]["accuracy"]), ("answers", "f1", report["answers"]["f1"]),
                 ("citations", "precision", report["citations"]["precision"]), ("citations", "recall", report["citations"]["recall"]),
                 ("citations", "page_accuracy", report["citations"].get("page_accuracy")),
                 ("refusals", "accuracy", report["refusals"]["accuracy"]),
                 ("refusals", "false_refusal_rate", report["refusals"]["false_refusal_rate"])]
        lat = report["latency"]
        rows += [("latency", "first_token_ms p50", lat["first_token_ms"]["p50"]), ("latency", "first_token_ms p95", lat["first_token_ms"]["p95"]),
                 ("latency", "total_ms p50", lat["total_ms"]["p50"]), ("latency", "total_ms p95", lat["total_ms"]["p95"]),
                 ("latency", "tokens_per_s", lat["tokens_per_s"])]
    return rows


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
    lines += ["", "## Questions", ""]
    if "answers" in report:
        lines += ["| id | question | answer | citations | rank | what was wrong |", "|---|---|---|---|---|---|"]
        for q in report["questions"]:
            cites = "<br>".join(f"[{c['n']}] {c['source']}: {_cell(c['quote'], 90)}" for c in q["citations"])
            lines.append(f"| {q['id']} | {_cell(q['question'])} | {_cell(q['answer'], 200)} | {cites} | "
                         f"{_fmt(q['retrieval']['answer_rank'])} | {'; '.join(q['problems']) or 'ok'} |")
    else:
        lines += ["| id | question | rank of first passage with the answer | top sources |", "|---|---|---|---|"]
        for q in report["questions"]:
            if not q["unanswerable"]:
                lines.append(f"| {q['id']} | {_cell(q['question'])} | {_fmt(q['retrieval']['answer_rank'])} | "
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
        totals = [q["timings"]["total"] for q in report["questions"]]
        firsts = [q["timings"]["first_token"] for q in report["questions"]]
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
