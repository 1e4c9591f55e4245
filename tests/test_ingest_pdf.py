"""PDF reader: the PDFs are drawn at test time with reportlab, line by line at known positions, so
each test states the layout it checks (columns, running heads, a hyphen at a line end, a table)."""

from __future__ import annotations

import json
import re
from itertools import zip_longest
from pathlib import Path

import pytest
from PIL import Image
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from rag.ingest.base import Unreadable
from rag.ingest.pdf import _clean, read_pdf

DEVSET = Path(__file__).resolve().parents[1].parent / "shared" / "devsets" / "realdocs"
WORDS = (
    "the committee reviewed every request received during the year and published its findings in "
    "a short report that lists each decision with the reasons given by the members present"
).split()


def _wrap(words: list[str], width: float, size: float = 10) -> list[str]:
    """Greedy line filling, as a word processor does."""
    lines, line = [], ""
    for word in words:
        if line and stringWidth(f"{line} {word}", "Helvetica", size) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line]


def _page(c: Canvas, lines: list[str], x: float = 72, top: float = 720, lead: float = 14, size: float = 10):
    c.setFont("Helvetica", size)
    for i, line in enumerate(lines):
        c.drawString(x, top - i * lead, line)


def _span(extracted, page: int) -> str:
    starts = [s for s, _ in extracted.pages] + [len(extracted.text)]
    i = [n for _, n in extracted.pages].index(page)
    return extracted.text[starts[i] : starts[i + 1]]


def test_pages_sentences_running_heads_and_page_numbers(tmp_path: Path):
    path = tmp_path / "report.pdf"
    c = Canvas(str(path))
    c.setTitle("report.pdf")  # a file name is no title
    sentences = {
        1: "The northern bridge was inspected on the fourth of March.",
        3: "A budget of 2 500 000 $ was approved for the repairs.",
        4: "Work on the southern bridge starts next spring.",
    }
    # a second line per page; lines repeated near the page edges would be taken for running heads
    seconds = {1: "Its deck needs new joints.", 3: "The council voted for it.", 4: "Traffic is diverted."}
    for n in range(1, 5):
        _page(c, ["Municipal Works Review 2023"], top=800, size=8)
        if n == 1:
            _page(c, ["Bridge Inspection Report"], top=760, size=20)
        if n != 2:  # page 2 is blank but for its running head and number
            _page(c, [sentences[n], seconds[n]])
        _page(c, [f"Page {n} of 4"], top=40, size=8)
        c.showPage()
    c.save()

    out = read_pdf(path)

    assert [n for _, n in out.pages] == [1, 3, 4]
    assert out.pages[0][0] == 0
    for n, sentence in sentences.items():
        assert out.text.count(sentence) == 1
        assert sentence in _span(out, n)
    assert "Municipal Works" not in out.text and "Page" not in out.text
    assert out.title == "Bridge Inspection Report"
    assert out.headings == [(0, "Bridge Inspection Report", 1)]
    assert out.notices == []
    # the text layout of base.py: paragraphs split by one blank line, no line breaks inside them
    assert "\n\n\n" not in out.text and re.search(r"[^\n]\n[^\n]", out.text) is None
    assert f"{sentences[1]} {seconds[1]}" in out.text


def test_numbered_sections_are_headings_where_the_type_does_not_tell(tmp_path: Path):
    """Minutes typed in one size: their numbered items are what the sentences below stand under
    (the address in item 4 is what its resolution is about); a numbered sentence is no heading."""
    path = tmp_path / "minutes.pdf"
    c = Canvas(str(path))
    _page(c, ["1. Opening of the meeting", "", "The meeting opens at 4 pm.", "",
              "2. Request for 1069 North Boulevard", "", "WHEREAS the project adds 43 dwellings;", "",
              "3. The minutes of May are adopted.", "", "4. Closing", "", "The meeting closes at 5 pm."])
    c.save()

    out = read_pdf(path)

    starts = {h: o for o, h, _ in out.headings}
    assert [(h, level) for _, h, level in out.headings] == [
        ("1. Opening of the meeting", 1), ("2. Request for 1069 North Boulevard", 1), ("4. Closing", 1)]
    assert all(out.text[o:].startswith(h) for h, o in starts.items())
    from rag.documents import Document
    document = Document("minutes.pdf", out.text, "0", headings=out.headings)
    assert "1069 North Boulevard" in document.context_at(out.text.index("43 dwellings"))


def test_hyphenation_joined_but_real_hyphens_kept(tmp_path: Path):
    path = tmp_path / "hyphens.pdf"
    c = Canvas(str(path))
    c.setTitle("Réserve de biodiversité")
    _page(
        c,
        [
            "The results are good, espe-",
            "cially for English. The reserve of the Station-de-Biologie-des-",
            "Laurentides was visited for demolition request 2023-",
            "0379 by an ever-",
            "growing team; the ever-growing list of well-",
            "known names grew.",
        ],
    )
    c.save()

    text = read_pdf(path).text

    assert "especially for English" in text
    assert "Station-de-Biologie-des-Laurentides" in text
    assert "request 2023-0379 by" in text
    # the document writes "ever-growing" elsewhere, so the line-end hyphen is a real one
    assert "an ever-growing team" in text
    assert "wellknown" in text  # a compound the document never spells out is joined: the usual case
    assert read_pdf(path).title == "Réserve de biodiversité"


def test_columns_with_a_narrow_gutter_are_read_one_after_the_other(tmp_path: Path):
    """Both columns share their baselines, the gutter is one em and each row is drawn across both
    columns: pdfminer alone joins such lines across the gutter (as in the IRS manual)."""
    path = tmp_path / "columns.pdf"
    left = _wrap(["alpha"] + WORDS * 2 + ["omega."], 240)
    right = _wrap(["north"] + WORDS[::-1] * 2 + ["south."], 240)
    c = Canvas(str(path))
    for i, (a, b) in enumerate(zip_longest(left, right, fillvalue="")):
        _page(c, [a], x=50, top=720 - 14 * i)
        _page(c, [b], x=300, top=720 - 14 * i)
    c.save()

    text = read_pdf(path).text

    assert " ".join(left) in text and " ".join(right) in text
    assert text.index("omega.") < text.index("north")


def test_table_values_stay_on_their_row(tmp_path: Path):
    path = tmp_path / "table.pdf"
    rows = [
        ("Gainage secteur Paysan", "2 120 000 $"),
        ("Réfection Déversoir # 1", "480 000 $"),
        ("Total", "2 600 000 $"),
    ]
    c = Canvas(str(path))
    _page(c, ["Les travaux suivants sont financés par la contribution :"], top=740)
    _page(c, [label for label, _ in rows])
    c.setFont("Helvetica", 10)
    for i, (_, amount) in enumerate(rows):
        c.drawRightString(500, 720 - i * 14, amount)
    c.save()

    text = read_pdf(path).text

    for label, amount in rows:
        assert f"{label} | {amount}" in text.split("\n\n")


PRICES = [
    ("Parking, forfait mensuel", "45"),
    ("Location de la salle civique", "320"),
    ("Carte de membre", "15"),
    ("Photocopie couleur", "3"),
    ("Abonnement annuel", "2023"),
]


def _price_list(c: Canvas, top: float):
    """A heading and five "label ... amount" rows, the amount on the label's baseline."""
    _page(c, ["Tarifs municipaux"], top=top + 30, size=14)
    for i, (label, amount) in enumerate(PRICES):
        _page(c, [label], x=72, top=top - 14 * i)
        _page(c, [amount], x=400, top=top - 14 * i)


def test_table_near_the_page_edge_is_no_page_furniture(tmp_path: Path):
    """A figure alone in its column near the bottom edge is no page number: on a page of six rows
    every row is near an edge, and "2023", "45" look like page numbers."""
    path = tmp_path / "prices.pdf"
    c = Canvas(str(path))
    _price_list(c, top=120)
    c.save()

    paragraphs = read_pdf(path).text.split("\n\n")

    for label, amount in PRICES:
        assert f"{label} | {amount}" in paragraphs


def test_table_repeated_on_two_pages_is_no_running_head(tmp_path: Path):
    """The same labels at the bottom of both pages of a two-page document are no running footer."""
    path = tmp_path / "prices2.pdf"
    c = Canvas(str(path))
    for n in (1, 2):
        _page(c, [f"Section {n}: the fees below apply from the first of May."])
        _price_list(c, top=120)
        c.showPage()
    c.save()

    out = read_pdf(path)

    for n in (1, 2):
        paragraphs = _span(out, n).strip().split("\n\n")
        for label, amount in PRICES:
            assert f"{label} | {amount}" in paragraphs, (n, label)


def test_running_head_and_bare_page_numbers_are_removed(tmp_path: Path):
    path = tmp_path / "numbered.pdf"
    body = {
        1: "The northern bridge was inspected in March.",
        2: "Its deck needs new joints before winter.",
        3: "A budget was approved for the repairs.",
        4: "Work on the southern bridge starts next spring.",
    }
    c = Canvas(str(path))
    for n in range(1, 5):
        _page(c, ["Rapport annuel du service des travaux publics"], top=800, size=8)
        _page(c, [body[n]])
        if n == 3:  # a lone figure near the bottom that does not follow the pages
            _page(c, ["Total of the year:", "320"], top=90)
        c.setFont("Helvetica", 9)
        c.drawCentredString(300, 40, str(n))
        c.showPage()
    c.save()

    out = read_pdf(path)

    assert "Rapport annuel" not in out.text
    for n in range(1, 5):
        span = _span(out, n)
        assert body[n] in span
        assert not re.search(r"(?m)^\d$", span), (n, span)
    assert "320" in _span(out, 3)


def test_scan_without_text_is_unreadable(tmp_path: Path):
    image = tmp_path / "scan.png"
    Image.new("L", (40, 40), color=128).save(image)
    path = tmp_path / "scan.pdf"
    c = Canvas(str(path))
    c.drawImage(str(image), 72, 400, width=400, height=400)
    c.save()

    with pytest.raises(Unreadable, match=r"no text layer \(scanned\?\)"):
        read_pdf(path)


def test_drawing_without_text_is_unreadable(tmp_path: Path):
    path = tmp_path / "drawing.pdf"
    c = Canvas(str(path))
    c.rect(100, 100, 200, 200, fill=1)
    c.save()

    with pytest.raises(Unreadable, match="no text layer"):
        read_pdf(path)


def test_image_only_page_among_text_pages_gives_a_notice(tmp_path: Path):
    image = tmp_path / "map.png"
    Image.new("RGB", (20, 20), color=(0, 90, 0)).save(image)
    path = tmp_path / "plan.pdf"
    c = Canvas(str(path))
    _page(c, ["Plan of the reserve, with its map on the next page."])
    c.showPage()
    c.drawImage(str(image), 72, 200, width=400, height=400)
    c.showPage()
    c.save()

    out = read_pdf(path)

    assert [n for _, n in out.pages] == [1]
    assert out.notices == ["page 2 has no text layer (images only)"]


def test_garbage_and_truncated_files_are_unreadable(tmp_path: Path):
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"\x00\x01 this is not a PDF at all " * 50)
    with pytest.raises(Unreadable, match="not a valid PDF file"):
        read_pdf(garbage)

    whole = tmp_path / "whole.pdf"
    c = Canvas(str(whole))
    _page(c, ["Some text."])
    c.save()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(Unreadable, match="not a valid PDF file"):
        read_pdf(truncated)


def test_password_protected_file_is_unreadable(tmp_path: Path):
    path = tmp_path / "locked.pdf"
    c = Canvas(str(path), encrypt=StandardEncryption("secret", ownerPassword="owner"))
    _page(c, ["Confidential minutes."])
    c.save()

    with pytest.raises(Unreadable, match="encrypted PDF"):
        read_pdf(path)


def test_clean_normalises_ligatures_soft_hyphens_and_math_letters():
    assert _clean("ﬁnancial e\ufb00ort, ﬂow, o\ufb03ce") == "financial effort, flow, office"
    assert _clean("can\u00addi\u00adda\u00adture") == "candidature"
    assert _clean("284t of 𝐶𝑂2, 29,6 km²") == "284t of CO2, 29,6 km²"  # "²" is left alone
    assert _clean("h\ue03cps://x.org (cid:12)ok\u00a0now") == "hps://x.org ok now"
    assert _clean("Add lines 2 and 3 . . . . . . . 4.") == "Add lines 2 and 3 … 4."


@pytest.mark.skipif(not DEVSET.exists(), reason="needs ../shared/devsets/realdocs")
def test_devset_answers_on_their_page_and_known_traps():
    """The three small French PDFs of the devset (the paper and the IRS manual take seconds)."""
    small = [
        "sainte_adele_reglement_1324_contribution_2022.pdf",
        "sainte_adele_comite_demolition_pv_2023-06-20.pdf",
        "reserve_biodiversite_station_biologie_laurentides_2009.pdf",
    ]
    read = {name: read_pdf(DEVSET / "corpus" / name) for name in small}
    lines = (DEVSET / "questions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    checked = 0
    for row in rows:
        if row.get("page") and row["sources"][0] in read:
            span = " ".join(_span(read[row["sources"][0]], row["page"]).split())
            assert any(answer in span for answer in row["answers"]), row["id"]
            checked += 1
    assert checked >= 9

    bylaw, minutes, reserve = (read[name] for name in small)
    assert "Réfection Déversoir # 1 | 480 000 $" in bylaw.text
    assert "(Adoption" not in bylaw.text  # the running footer with "page N"
    assert "règlement 1274" in minutes.text and "r èglement" not in minutes.text
    assert "demande de démolition 2023-0379" in minutes.text
    assert reserve.text.count("Station-de-Biologie-des-Laurentides") >= 5
    assert [n for _, n in reserve.pages][:2] == [1, 3]  # page 2 is blank
    assert reserve.title.startswith("Réserve de biodiversité projetée")  # metadata title is "1"
    with pytest.raises(Unreadable, match="no text layer"):
        read_pdf(DEVSET / "corpus" / "wikipedia_ocr_article_printout_scan.pdf")
