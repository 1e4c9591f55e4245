"""DOCX reader: documents are built at test time (python-docx, or document.xml written by hand for
what python-docx cannot write: content controls, text boxes, symbols, a stale table of contents)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import docx
import pytest

from rag.ingest.base import Unreadable
from rag.ingest.docx import read_docx

DEVSET = Path(__file__).resolve().parents[1].parent / "shared" / "devsets" / "realdocs"


def test_paragraphs_headings_table_and_title(tmp_path: Path):
    doc = docx.Document()
    doc.core_properties.title = "Guide  d'utilisation"
    doc.sections[0].header.paragraphs[0].text = "Running header"
    doc.sections[0].footer.paragraphs[0].text = "Page 1"
    doc.add_heading("Installation", level=1)
    doc.add_paragraph("Lancez l’instal\u00adlateur puis\tredémarrez.")
    doc.add_heading("Options", level=2)
    table = doc.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Raccourci", "Action"), ("Ctrl+Alt+0", "Zoom à 100 %")]):
        for cell, value in zip(row.cells, cells):
            cell.text = value
    note = doc.add_table(rows=1, cols=1)  # a one-cell "Note" box: its paragraphs stay paragraphs
    note.cell(0, 0).text = "Note"
    note.cell(0, 0).add_paragraph("Le zoom est enregistré.")
    doc.add_heading("Une phrase entière stylée comme un titre, " * 6, level=3)  # > 200 characters
    path = tmp_path / "guide.docx"
    doc.save(path)

    got = read_docx(path)

    assert got.text == (
        "Installation\n\n"
        "Lancez l’installateur puis redémarrez.\n\n"
        "Options\n\n"
        "Raccourci | Action\n\n"
        "Ctrl+Alt+0 | Zoom à 100 %\n\n"
        "Note\n\n"
        "Le zoom est enregistré.\n\n" + ("Une phrase entière stylée comme un titre, " * 6).strip()
    )
    assert [(h, level) for _, h, level in got.headings] == [("Installation", 1), ("Options", 2)]
    assert all(got.text[offset:].startswith(h) for offset, h, _ in got.headings)
    assert got.title == "Guide d'utilisation"
    assert got.pages == []


def test_without_metadata_title_the_opening_heading_is_the_title(tmp_path: Path):
    doc = docx.Document()
    doc.add_heading("Rapport annuel", level=0)  # the "Title" style
    doc.add_paragraph("Corps du texte.")
    path = tmp_path / "r.docx"
    doc.save(path)
    got = read_docx(path)
    assert got.title == "Rapport annuel"
    assert got.headings == [(0, "Rapport annuel", 1)]


_NS = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
    'xmlns:v="urn:schemas-microsoft-com:vml"'
)


def _p(inner: str, style: str | None = None) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{ppr}{inner}</w:p>"


def _r(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def _style(style_id: str, name: str, based_on: str | None = None, outline: int | None = None) -> str:
    base = f'<w:basedOn w:val="{based_on}"/>' if based_on else ""
    ppr = f'<w:pPr><w:outlineLvl w:val="{outline}"/></w:pPr>' if outline is not None else ""
    return f'<w:style w:type="paragraph" w:styleId="{style_id}"><w:name w:val="{name}"/>{base}{ppr}</w:style>'


def _write_docx(path: Path, body: str, styles: str = "") -> Path:
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument'
            '.wordprocessingml.document.main+xml"/>'
            '<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument'
            '.wordprocessingml.styles+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>'
        ),
        "word/_rels/document.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'styles" Target="styles.xml"/></Relationships>'
        ),
        "word/document.xml": f"<w:document {_NS}><w:body>{body}</w:body></w:document>",
        "word/styles.xml": f"<w:styles {_NS}>{styles}</w:styles>",
    }
    with zipfile.ZipFile(path, "w") as z:
        for name, xml in parts.items():
            z.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + xml)
    return path


def test_content_controls_text_boxes_symbols_and_a_stale_toc(tmp_path: Path):
    text_box = '<w:txbxContent>' + _p(_r("Rapport de TP")) + "</w:txbxContent>"
    body = (
        # a cover page content control holding an inline control and a text box stored twice
        '<w:sdt><w:sdtPr><w:docPartObj><w:docPartGallery w:val="Cover Pages"/></w:docPartObj></w:sdtPr>'
        "<w:sdtContent>"
        + _p('<w:sdt><w:sdtPr><w:alias w:val="Titre"/></w:sdtPr><w:sdtContent>' + _r("INF 4201B")
             + "</w:sdtContent></w:sdt>")
        + _p("<w:r><mc:AlternateContent><mc:Choice Requires=\"wps\"><w:drawing><wps:txbx>" + text_box
             + "</wps:txbx></w:drawing></mc:Choice><mc:Fallback><w:pict><v:textbox>" + text_box
             + "</v:textbox></w:pict></mc:Fallback></mc:AlternateContent></w:r>")
        + "</w:sdtContent></w:sdt>"
        # a table of contents, stale, in its own content control and as "toc 1" paragraphs
        + '<w:sdt><w:sdtPr><w:docPartObj><w:docPartGallery w:val="Table of Contents"/></w:docPartObj></w:sdtPr>'
        "<w:sdtContent>" + _p(_r("CONNEXION EN MODE UDP 3")) + "</w:sdtContent></w:sdt>"
        + _p(_r("Ancienne entrée 4"), style="Obsah1")
        + _p(_r("Sommaire"), style="BezCisla")
        + _p(_r("COMMUNICATION EN MODE UDP"), style="Nadpis1")
        + _p(_r("Options") + '<w:r><w:sym w:font="Wingdings" w:char="F0E0"/></w:r>' + _r("Output")
             + '<w:r><w:sym w:font="Wingdings" w:char="F0FC"/><w:sym w:font="Wingdings" w:char="F021"/></w:r>')
        + _p('<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> SEQ Table </w:instrText></w:r>'
             '<w:r><w:fldChar w:fldCharType="separate"/></w:r>' + _r("Table 6")
             + '<w:r><w:fldChar w:fldCharType="end"/></w:r>' + _r(" hotkeys")
             + '<w:del><w:r><w:delText>supprimé</w:delText></w:r></w:del>'
             + '<w:r><w:rPr><w:vanish/></w:rPr><w:t>caché</w:t></w:r>')
        + _p(_r("Annexe"), style="Appendix2")
    )
    styles = (
        _style("Nadpis1", "heading 1", outline=0)
        + _style("Nadpis2", "heading 2", outline=1)
        + _style("Appendix2", "Nadpis 2 - Appendix", based_on="Nadpis2")
        + _style("BezCisla", "Nadpis 1 bez číslování", based_on="Nadpis1", outline=9)
        + _style("Obsah1", "toc 1")
    )
    got = read_docx(_write_docx(tmp_path / "rapport.docx", body, styles))

    assert got.text == (
        "INF 4201B\n\nRapport de TP\n\nSommaire\n\nCOMMUNICATION EN MODE UDP\n\n"
        "Options→Output✓\n\nTable 6 hotkeys\n\nAnnexe"
    )
    assert [(h, level) for _, h, level in got.headings] == [("COMMUNICATION EN MODE UDP", 1), ("Annexe", 2)]
    assert all(got.text[offset:].startswith(h) for offset, h, _ in got.headings)
    assert got.title is None  # no core.xml, and the document does not open with a heading


def test_unreadable_files(tmp_path: Path):
    corrupt = tmp_path / "corrupt.docx"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    not_docx = tmp_path / "notes.docx"
    with zipfile.ZipFile(not_docx, "w") as z:
        z.writestr("notes.txt", "hello")
    empty = tmp_path / "empty.docx"
    docx.Document().save(empty)
    for path in (corrupt, not_docx, empty):
        with pytest.raises(Unreadable):
            read_docx(path)


@pytest.mark.skipif(not DEVSET.is_dir(), reason="realdocs devset absent")
def test_devset_answers_are_in_the_text():
    questions = [json.loads(line) for line in (DEVSET / "questions.jsonl").read_text().splitlines()]
    for path in sorted((DEVSET / "corpus").glob("*.docx")):
        got = read_docx(path)
        flat = " ".join(got.text.split())
        for q in questions:
            if path.name in q["sources"] and q["answers"]:
                assert any(answer in flat for answer in q["answers"]), (path.name, q["id"])
        assert all(got.text[offset:].startswith(h) for offset, h, _ in got.headings)
        assert "\u00ad" not in got.text
    guide = read_docx(DEVSET / "corpus" / "regexator_user_guide.docx").text
    assert "Options → Output → Output Items Limit" in guide
    sockets = read_docx(DEVSET / "corpus" / "rapport_tp_sockets_udp_tcp_esiee.docx").text
    assert sockets.count("INF 4201B") == 1 and "CONNEXION EN MODE UDP" not in sockets
