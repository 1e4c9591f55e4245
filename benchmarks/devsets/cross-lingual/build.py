"""Build the cross-lingual devsets: the French questions of squad2-fr over the English articles
they were translated from, next to French articles (a corpus of two languages); and its mirror,
the English questions of squad2-en over the French translation of their articles.

    python benchmarks/devsets/cross-lingual/build.py [--shared ../shared/devsets] [--out /tmp/xl]

writes OUT/corpus (the four English squad2-en articles and the three French frwiki-own ones) and
OUT/questions.jsonl (each squad2-fr question with the English gold answers and source of the
squad2-en question it translates, matched by id); and OUT/questions-en.jsonl (each squad2-en
question of the two translated articles with the French answers and source of its translation),
to ask over benchmarks/devsets/squad2-fr/corpus."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def build(shared: Path, out: Path) -> int:
    english = {json.loads(line)["id"].split("-", 1)[1]: json.loads(line)
               for line in (shared / "squad2-en" / "questions.jsonl").read_text("utf-8").splitlines() if line.strip()}
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for folder in (shared / "squad2-en" / "corpus", REPO / "benchmarks" / "devsets" / "frwiki-own" / "corpus"):
        for path in sorted(folder.iterdir()):
            shutil.copy(path, corpus / path.name)
    rows = []
    for line in (REPO / "benchmarks" / "devsets" / "squad2-fr" / "questions.jsonl").read_text("utf-8").splitlines():
        french = json.loads(line)
        source = english[french["id"].split("-")[-1]]  # squad2fr-01-12 translates squad2en-12
        if source["unanswerable"] != french["unanswerable"]:
            raise SystemExit(f"{french['id']}: not the question it should translate")
        rows.append({"id": "xl-" + french["id"].split("-")[-1], "question": french["question"],
                     "answers": source["answers"], "sources": source["sources"], "unanswerable": source["unanswerable"]})
    (out / "questions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    mirror = []
    for line in (REPO / "benchmarks" / "devsets" / "squad2-fr" / "questions.jsonl").read_text("utf-8").splitlines():
        french = json.loads(line)
        source = english[french["id"].split("-")[-1]]
        mirror.append({"id": "xlen-" + french["id"].split("-")[-1], "question": source["question"],
                       "answers": french["answers"], "sources": french["sources"], "unanswerable": french["unanswerable"]})
    (out / "questions-en.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mirror), "utf-8")
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "devsets")
    parser.add_argument("--out", type=Path, default=Path("/tmp/xl"))
    args = parser.parse_args()
    if not (args.shared / "squad2-en").is_dir():
        sys.exit(f"no squad2-en devset under {args.shared}; give its folder with --shared")
    print(f"{build(args.shared, args.out)} questions each way, corpus in {args.out / 'corpus'}")


if __name__ == "__main__":
    main()
