"""One folder with a PDF, a Word file, a web page, a Markdown page and a text file, made at test
time: `rag index` reads all five, and a question about each is answered from the right file (and
the right page of the PDF) with a quote that is exactly the indexed text at its offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import store
from tests.test_cli import rag

pytestmark = pytest.mark.integration


def make_pdf(path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pages = [
        ["Rapport annuel de la coopérative Les Vergers du Nord.",
         "La coopérative regroupe des producteurs de pommes de la vallée."],
        ["Récolte de l'année.",
         "La coopérative a récolté 4 300 tonnes de pommes en 2023.",
         "La plupart des fruits sont vendus sur les marchés de la région."],
    ]
    pdf = canvas.Canvas(str(path), pagesize=A4)
    for lines in pages:
        y = 780
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 18
        pdf.showPage()
    pdf.save()


def make_docx(path: Path) -> None:
    from docx import Document

    doc = Document()
    doc.add_heading("Accueil des nouveaux salariés", level=1)
    doc.add_paragraph("Chaque nouveau salarié reçoit un badge d'accès le premier jour.")
    doc.add_heading("Congés", level=2)
    doc.add_paragraph("Les salariés disposent de 27 jours de congés payés par an.")
    doc.save(str(path))


@pytest.fixture(scope="module")
def five_formats(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("five") / "docs"
    folder.mkdir()
    make_pdf(folder / "rapport.pdf")
    make_docx(folder / "guide.docx")
    (folder / "page.html").write_text(
        "<html><head><title>Le phare de Kerbel</title></head><body><nav><a href='/'>Accueil</a> "
        "<a href='/x'>Contact</a></nav><article><h1>Le phare de Kerbel</h1>"
        "<p>Le phare de Kerbel a été construit en 1884 sur un îlot rocheux.</p>"
        "<p>Il est automatisé depuis la fin du siècle dernier et se visite l'été.</p></article>"
        "<footer>Tous droits réservés</footer></body></html>", "utf-8")
    (folder / "notes.md").write_text(
        "---\ntitle: Atelier vélo\n---\n# Atelier vélo\n\nL'atelier **répare les vélos** le samedi matin, "
        "de 9 h à 12 h, au [local associatif](http://example.org).\n", "utf-8")
    (folder / "memo.txt").write_text("La salle de réunion du troisième étage s'appelle la salle Cassiopée.\n", "utf-8")
    index = folder.parent / "index"
    done = rag("index", "--corpus", str(folder), "--index", str(index))
    assert done.returncode == 0, done.stderr
    assert "read 5 documents (1 DOCX, 1 HTML, 1 MD, 1 PDF, 1 TXT; 2 PDF pages)" in done.stdout, done.stdout
    assert "skipped" not in done.stderr
    return folder, index


@pytest.mark.parametrize("question, source, expected, page", [
    ("Combien de tonnes de pommes la coopérative a-t-elle récoltées en 2023 ?", "rapport.pdf", "4 300", 2),
    ("Combien de jours de congés payés ont les salariés ?", "guide.docx", "27 jours", None),
    ("En quelle année le phare de Kerbel a-t-il été construit ?", "page.html", "1884", None),
    ("Quand l'atelier répare-t-il les vélos ?", "notes.md", "samedi", None),
    ("Comment s'appelle la salle de réunion du troisième étage ?", "memo.txt", "Cassiopée", None),
])
def test_each_format_answers_from_the_right_file_with_an_exact_quote(five_formats, question, source, expected, page):
    folder, index = five_formats
    done = rag("ask", "--json", question, "--index", str(index))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert not result["refused"], result["answer"]
    assert expected in result["answer"], result["answer"]
    texts = store.read_documents(store.current_folder(index))
    first = result["citations"][0]
    assert first["source"] == source
    assert first["page"] == page
    for citation in result["citations"]:
        assert texts[citation["source"]].text[citation["start"]:citation["end"]] == citation["quote"]
    if source == "guide.docx":
        assert first["heading"] == "Congés"
    if source == "notes.md":
        assert "**" not in first["quote"] and "http" not in first["quote"]
