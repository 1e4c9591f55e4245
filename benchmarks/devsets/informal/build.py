"""Build an informal variant of a gold file: every question as people often type it into a search
box, in lower case and without its question mark ("where was the gate of king hugo"). The answers,
sources and ids stay; ask it over the same index as the original and compare, answer by answer.

    python benchmarks/devsets/informal/build.py GOLD OUT

GOLD and OUT are JSONL gold files (`rag eval --gold`); a row without a question is copied as is,
for `rag eval` to report."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def informal(question: str) -> str:
    """The question in lower case, without the question mark (and the space before it) at its end.

    >>> informal("Où se trouvait la porte du roi Hugon ?")
    'où se trouvait la porte du roi hugon'
    >>> informal("When was FICOBA created?")
    'when was ficoba created'
    """
    return question.strip().rstrip("?？").rstrip().lower()


def build(gold: Path, out: Path) -> int:
    rows = []
    for line in gold.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if isinstance(row.get("question"), str):
            row["question"] = informal(row["question"])
        rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return len(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: build.py GOLD OUT", file=sys.stderr)
        return 2
    gold, out = Path(argv[0]), Path(argv[1])
    if not gold.is_file():
        print(f"error: no gold file at {gold}", file=sys.stderr)
        return 2
    try:
        print(f"{build(gold, out)} questions written to {out}")
    except (OSError, ValueError) as e:
        print(f"error: {gold}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
