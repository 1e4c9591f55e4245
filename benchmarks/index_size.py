"""How big the index is next to the text it indexes: each file of the build, the total, the
extracted text, their ratio, and that ratio projected to a larger corpus.

    python benchmarks/index_size.py ../shared/devsets/squad2-en/corpus --index /tmp/ixs-sq
    python benchmarks/index_size.py /tmp/ix-sq /tmp/ixs-sq          # built indexes, side by side
    python benchmarks/index_size.py /tmp/ixs-cnil --project-mb 30 --json sizes.json

A folder holding documents is indexed first (with `rag index`, into --index, default a temporary
folder); a folder with a CURRENT pointer is an index and is only measured. The text is the
extracted text of the documents (documents.jsonl.gz), counted in UTF-8 bytes and in characters; the
ratio is index bytes / text bytes.

The projection scales every file with the text except the embedded vocabulary (bridge.npy,
bridge.json), which stops at 10 000 words; past 50 000 chunks the exact index becomes an HNSW graph
with a file of its own (dense.faiss: the graph without its vectors, 272 bytes a chunk, measured on
60 000 vectors). The BM25 term lists grow more slowly than the text (new words get rarer), so the
projection is a little high for lexical/ and subwords/; manifest.json grows with the number of
documents (one line each), not with their text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import store  # noqa: E402
from rag.bridge import vocabulary  # noqa: E402,F401  (its limit is the cap of the projection)

BRIDGE_WORDS = vocabulary.__defaults__[0]  # 10 000
HNSW_BYTES_PER_CHUNK = 272  # the graph's links (M = 32); its vectors are those of vectors.npy
CAPPED = {"bridge.npy", "bridge.json"}


def measure(root: Path) -> dict:
    """Sizes of the files of the current build of the index at `root`, and of its text."""
    folder = store.current_folder(root)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    text_bytes = text_chars = 0
    for document in store.read_documents(folder).values():  # format 5, or format 4's plain file
        text_bytes += len(document.text.encode("utf-8"))
        text_chars += len(document.text)
    return {
        "index": str(root),
        "build": folder.name,
        "version": manifest.get("version"),
        "faiss": manifest.get("faiss", {}).get("type"),
        "documents": len(manifest.get("documents", [])),
        "chunks": manifest.get("count"),
        "bridge_words": manifest.get("bridge", {}).get("words"),
        "files": files,
        "total": sum(files.values()),
        "text_bytes": text_bytes,
        "text_chars": text_chars,
        "ratio": sum(files.values()) / max(text_bytes, 1),
    }


def project(sizes: dict, text_mb: float) -> dict:
    """Each file's size at `text_mb` MB of text, and the ratio then (see the module's docstring)."""
    scale = text_mb * 1e6 / max(sizes["text_bytes"], 1)
    words = sizes["bridge_words"] or 0
    projected = {}
    for name, size in sizes["files"].items():
        if name in CAPPED and words:
            header = 128 if name.endswith(".npy") else 0
            projected[name] = header + (size - header) / words * max(words, min(BRIDGE_WORDS, words * scale))
        else:
            projected[name] = size * scale
    chunks = (sizes["chunks"] or 0) * scale
    if chunks > store.EXACT_SEARCH_LIMIT and "dense.faiss" not in projected:
        projected["dense.faiss"] = HNSW_BYTES_PER_CHUNK * chunks
    total = sum(projected.values())
    return {"text_mb": text_mb, "chunks": round(chunks), "files": projected, "total": total,
            "ratio": total / (text_mb * 1e6)}


def group(files: dict) -> dict:
    """The files, with a line for the total of each folder (lexical/, subwords/)."""
    rows = dict(files)
    for name in files:
        if "/" in name:
            folder = name.split("/")[0] + "/"
            rows[folder + " (all)"] = rows.get(folder + " (all)", 0) + files[name]
    return rows


def table(measured: list[dict], projections: list[dict]) -> str:
    names = sorted({n for m in measured for n in group(m["files"])} | {n for p in projections for n in p["files"]})
    width = max(len(n) for n in names + ["extracted text (UTF-8)"]) + 2
    heads = [Path(m["index"]).name or m["index"] for m in measured]
    lines = ["".ljust(width) + "".join(h[-14:].rjust(15) for h in heads)
             + "".join(f"{'at %g MB' % p['text_mb']:>15}" for p in projections)]

    def row(label: str, values: list) -> str:
        return label.ljust(width) + "".join((f"{v:>15,.0f}" if isinstance(v, (int, float)) else f"{v:>15}") for v in values)

    for name in names:
        values = [group(m["files"]).get(name, "-") for m in measured]
        values += [p["files"].get(name, "-") if "(all)" not in name else
                   sum(v for n, v in p["files"].items() if n.startswith(name.split(" ")[0])) for p in projections]
        lines.append(row(name, values))
    lines.append(row("total", [m["total"] for m in measured] + [p["total"] for p in projections]))
    lines.append(row("extracted text (UTF-8)", [m["text_bytes"] for m in measured] + [p["text_mb"] * 1e6 for p in projections]))
    lines.append(row("extracted text (chars)", [m["text_chars"] for m in measured] + ["" for _ in projections]))
    lines.append(row("chunks", [m["chunks"] for m in measured] + [p["chunks"] for p in projections]))
    lines.append("ratio index / text".ljust(width) + "".join(f"{m['ratio']:>14.2f}x" for m in measured)
                 + "".join(f"{p['ratio']:>14.2f}x" for p in projections))
    lines.append("format version".ljust(width) + "".join(f"{'v%s' % m['version']:>15}" for m in measured))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="index folders, or a corpus folder to index first")
    parser.add_argument("--index", type=Path, help="where to build the index of a corpus folder (default: a temporary folder)")
    parser.add_argument("--embedder", help="embedder for `rag index` (default: the configured one)")
    parser.add_argument("--project-mb", type=float, default=30.0, help="text size to project the last index to (0: none)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    measured = []
    with tempfile.TemporaryDirectory(prefix="index-size-") as scratch:
        for folder in args.folders:
            if not (folder / "CURRENT").is_file():  # a corpus: index it with the real command
                target = args.index or Path(scratch) / folder.name
                command = [sys.executable, "-m", "rag", "index", "--corpus", str(folder), "--index", str(target)]
                if args.embedder:
                    command += ["--embedder", args.embedder]
                subprocess.run(command, check=True, cwd=ROOT)
                folder = target
            measured.append(measure(folder))
    projections = [project(measured[-1], args.project_mb)] if args.project_mb > 0 else []
    print(table(measured, projections))
    if args.json:
        args.json.write_text(json.dumps({"indexes": measured, "projections": projections}, indent=1))


if __name__ == "__main__":
    main()
