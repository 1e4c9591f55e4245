"""How fast documents are read: pages per second for PDF, and the time from an upload on the web
page to a cited answer about the uploaded file.

    python benchmarks/ingest_benchmark.py [--pages 100] [--upload]

The PDF is made here with reportlab: `--pages` pages of ordinary running text (the seed articles,
wrapped at 90 characters, about 45 lines a page), so nothing depends on a file we do not ship.
`--upload` also starts the real page (real embedder and model) on a loopback port, uploads a Word
file made here into a new collection, then asks about it, and reports both times.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_pdf(path: Path, pages: int) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    words = " ".join(p.read_text("utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))).split()
    lines = textwrap.wrap(" ".join(words * 40), 90)[: pages * 45]
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setFont("Helvetica", 10)
    for page in range(pages):
        y = 800
        pdf.drawString(72, 820, "Rapport de démonstration")  # a running header on every page
        for line in lines[page * 45:(page + 1) * 45]:
            pdf.drawString(60, y, line)
            y -= 16
        pdf.drawString(290, 30, str(page + 1))  # a page number
        pdf.showPage()
    pdf.save()


def pdf_speed(pages: int) -> None:
    from rag.ingest.pdf import read_pdf

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.pdf"
        make_pdf(path, pages)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            extracted = read_pdf(path)
            times.append(time.perf_counter() - started)
        best = min(times)
        print(f"PDF, {pages} pages of text ({len(extracted.text):,} characters): best of 3 {best:.2f} s, "
              f"{pages / best:.1f} pages/s, {len(extracted.pages)} pages found")


def upload_latency() -> None:
    import socket

    from docx import Document
    from gradio_client import Client, handle_file

    from rag.engines import Engines
    from rag.settings import Settings
    from rag.web import launch

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=Path(tmp) / "index", collections_dir=Path(tmp) / "collections",
                            manifest_path=ROOT / "models.txt")
        seeds = Engines(settings)
        from rag.indexing import index_collection

        from rag.pipeline import load_configured_embedder

        embedder = load_configured_embedder(settings)
        index_collection(seeds.collection(None), ROOT / "seeds", embedder, settings.chunk_chars)
        engines = Engines(settings, embedder=embedder)
        engines.get(None).warm_up()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo = launch(engines, "127.0.0.1", port, block=False)
        try:
            doc = Document()
            doc.add_heading("Règlement intérieur", level=1)
            doc.add_paragraph("La cantine de l'entreprise ouvre à 11 h 45 et ferme à 14 h.")
            path = Path(tmp) / "reglement.docx"
            doc.save(str(path))
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            started = time.perf_counter()
            client.predict([handle_file(str(path))], "bench", [], api_name="/upload")
            uploaded = time.perf_counter() - started
            result = client.predict("À quelle heure ouvre la cantine ?", 5, "hybrid", True, "bench", api_name="/ask")
            answered = time.perf_counter() - started
            print(f"upload of a Word file into a new collection: indexed in {uploaded:.1f} s, cited answer "
                  f"{answered:.1f} s after the upload started: {result['answer']!r} "
                  f"({result['citations'][0]['source'] if result['citations'] else 'no citation'})")
        finally:
            demo.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--upload", action="store_true")
    args = parser.parse_args()
    pdf_speed(args.pages)
    if args.upload:
        upload_latency()


if __name__ == "__main__":
    main()
