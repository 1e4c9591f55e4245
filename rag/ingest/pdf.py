"""PDF reader: pdfminer.six layout analysis, then the clean-up that makes the text quotable.

Why pdfminer.six: it is the only permissively licensed (MIT) candidate that orders text by geometry, so
multi-column pages come out column by column and it neither splits words ("r èglement", as pypdf does)
nor glues them ("predictingthelikelihood", as pypdf and pdfplumber do). pypdfium2 is ten times faster
but follows the content stream, which interleaves the columns of the IRS manual; PyMuPDF is AGPL and
its blocks span the columns of that manual too.

What is done on top of pdfminer, each for a reason seen in real files:
- lines are cut at column gutters (`_Page`): with a char margin wide enough for justified lines
  pdfminer joins neighbouring columns whose gutter is narrow (about one em in the IRS manual);
- a layout box is split into paragraphs (short line ending a sentence, bullet, change of font);
- running headers/footers and page numbers are dropped (`_furniture`);
- table values that pdfminer reads as a column of their own go back on their row (`_table_rows`);
- end-of-line hyphens are resolved with the document's own vocabulary (`_join`);
- ligatures, soft hyphens, mathematical letters ("𝐶𝑂2") and unmapped glyphs ("(cid:12)") are
  normalised (`_clean`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import (
    LAParams,
    LTChar,
    LTFigure,
    LTImage,
    LTPage,
    LTTextBox,
    LTTextLineHorizontal,
)
from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.psexceptions import PSException
from pdfminer.utils import decode_text

from rag.ingest.base import Extracted, Unreadable

# char_margin 4 (pdfminer's default is 2): justified lines with wide word gaps ("doivent être
# répartis entre les") stay one line instead of falling into separate boxes read out of order.
# line_margin 1.0 (default 0.5): lines set 1.7 apart (the reserve plan) stay in one box.
_LAPARAMS = LAParams(char_margin=4.0, line_margin=1.0)
# "3", "- 3 -", "iv": a page number only where the pages follow one another (`_furniture`)
_BARE_NUMBER = re.compile(r"[-–]?\s*(\d{1,4}|[ivxlc]{1,6})\s*[-–]?")
_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
# "Page 3", "p. iv", "Page 3 of 48", "page 3 de 12", "3 / 12": a page number wherever it stands
_PAGE_LABEL = re.compile(
    r"(?i)(?:page|p\.)\s*(?:\d{1,4}|[ivxlc]{1,6})(?:\s*(?:of|de|sur|/)\s*\d{1,4})?"
    r"|(?:page\s*)?\d{1,4}\s*(?:of|de|sur|/)\s*\d{1,4}"
)
# the mark of a list item: a bullet, "3.", "b)", "2°"
_MARKER = re.compile(r"[•●▪■◦‣∙·*−–-]|\(?(?:\d{1,2}|[a-z])[.)°]|\d{1,2}°")
_BULLET = re.compile(rf"(?:{_MARKER.pattern})\s")
_SENTENCE_END = re.compile(r"[.!?:;][\"'’”»)]*$")
# a numbered section's heading: "4. Demande de démolition", "2.1 Situation géographique"
_SECTION_NUMBER = re.compile(r"(\d{1,2}(?:\.\d{1,2}){1,3}\.?|\d{1,2}\.)\s+[^\W\d_]")
_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
)
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


@dataclass
class _Line:
    text: str
    x0: float
    x1: float
    y0: float
    y1: float
    size: float  # median glyph size
    font: str  # the font of all its glyphs; "" if it mixes fonts (a bold lead-in)
    right: float  # right edge of the layout box the line is in
    cells: list[str] = field(default_factory=list)  # table cells to its right on the same baseline


class _Page(LTPage):
    """An LTPage whose text lines are cut at column gutters before pdfminer groups them into boxes.

    `known` holds the gutters found on the document's earlier pages: a page whose columns seldom
    share a baseline shows too few lined-up blanks to find its gutters alone."""

    def __init__(self, pageid, bbox, known: set[float]):
        super().__init__(pageid, bbox)
        self.known = known

    def group_objects(self, laparams, objs):
        lines = list(super().group_objects(laparams, objs))
        blanks = [blank for line in lines for blank in _blanks(line)]
        middles = ((x0 + x1) / 2 for x0, x1, _ in blanks)
        here = {m for m in middles if sum(x0 < m < x1 for x0, x1, _ in blanks) >= 3}
        cuts: dict[int, set[float]] = {}
        for x0, x1, line in blanks:  # a candidate blank that a gutter of an earlier page runs through
            if any(x0 < g < x1 for g in self.known):
                cuts.setdefault(id(line), set()).add(x1)
        self.known |= here
        for line in lines:
            for a, b in _gaps(line):  # any blank, even beside a short line, that a gutter runs through
                if any(a.x1 < g < b.x0 for g in here):
                    cuts.setdefault(id(line), set()).add(b.x0)
            yield from _split(line, sorted(cuts.get(id(line), ())), laparams.word_margin)


class _Aggregator(PDFPageAggregator):
    """pdfminer's page aggregator, building `_Page`s that share one document's gutters."""

    def __init__(self, manager: PDFResourceManager):
        super().__init__(manager, laparams=_LAPARAMS)
        self.known: set[float] = set()

    def begin_page(self, page, ctm):
        super().begin_page(page, ctm)
        self.cur_item = _Page(self.cur_item.pageid, self.cur_item.bbox, self.known)


def _gaps(line) -> list[tuple[LTChar, LTChar]]:
    """(left glyph, right glyph) pairs of a text line with a blank of half an em or more between them."""
    if not isinstance(line, LTTextLineHorizontal):
        return []
    ink = [c for c in line if isinstance(c, LTChar) and c.get_text().strip()]
    return [(a, b) for a, b in zip(ink, ink[1:]) if b.x0 - a.x1 >= 0.5 * min(a.size, b.size)]


def _blanks(line) -> list[tuple[float, float, LTTextLineHorizontal]]:
    """The blanks of a line that could be a column gutter: an em or more, with 8 em of text on both
    sides. A gutter is where such blanks line up (one x inside each) on three lines of a page. Word
    gaps of justified text do not line up, and a list marker or a short table cell is not 8 em wide,
    so neither cuts a line."""
    return [
        (a.x1, b.x0, line)
        for a, b in _gaps(line)
        if b.x0 - a.x1 >= min(a.size, b.size) and min(a.x1 - line.x0, line.x1 - b.x0) >= 8 * a.size
    ]


def _split(line, cuts: list[float], word_margin: float) -> list:
    """Cut a line into pieces at the given x positions."""
    if not cuts:
        return [line]
    pieces = [LTTextLineHorizontal(word_margin) for _ in range(len(cuts) + 1)]
    for c in line:
        if isinstance(c, LTChar):
            pieces[sum(c.x0 >= x for x in cuts)].add(c)
    return [p for p in pieces if len(p)]


def _numbered_headings(text: str) -> list[tuple[int, str, int]]:
    """Headings of a text whose type does not tell them: paragraphs of one short line that start
    with a section number and end without a sentence's punctuation, at the level of their
    number's depth ('4.' 1, '2.1' 2), their first numbers in order. Fewer than two are none.

    >>> _numbered_headings("1. Ouverture\\n\\nLa séance est ouverte.\\n\\n2. Demande pour le 1069, boulevard Nord\\n\\nAttendu...")
    [(0, '1. Ouverture', 1), (38, '2. Demande pour le 1069, boulevard Nord', 1)]
    >>> _numbered_headings("1. Une liste.\\n\\n2 500 euros de frais\\n\\n12 mois de garantie\\n\\n3. Trois")
    []
    """
    found, offset, last = [], 0, 0
    for para in text.split("\n\n"):
        match = _SECTION_NUMBER.match(para)
        if match and "\n" not in para and len(para.split()) <= 15 and " | " not in para \
                and not _SENTENCE_END.search(para):
            number = match.group(1).rstrip(".")
            first = int(number.split(".")[0])
            if first >= last:
                found.append((offset, para, number.count(".") + 1))
                last = first
        offset += len(para) + 2
    return found if len(found) >= 2 else []


def read_pdf(path: Path) -> Extracted:
    """Read a PDF's text layer; raise Unreadable when it gives no text (a scan, an encrypted or broken
    file). Headings are paragraphs in type 15 % bigger than the body text, short enough to be titles;
    their levels rank their sizes."""
    try:
        with open(path, "rb") as fh:
            document = PDFDocument(PDFParser(fh))
            info = document.info[0] if document.info else {}
            read = _read_pages(document)
    except PDFEncryptionError:
        raise Unreadable("encrypted PDF") from None
    except (PSException, ValueError, TypeError, KeyError, IndexError, AssertionError):
        # pdfminer raises many kinds of errors on damaged files; all mean the same to the user
        raise Unreadable("not a valid PDF file") from None

    # table rows first: a figure alone in its column near the page edge ("45", "2023") is a cell of
    # its row, not a page number; a page number drawn on a running footer's baseline goes with it
    pages = [_table_rows(boxes) for boxes, _ in read]
    furniture = _furniture(pages)
    pages = [
        [[line for line in box if line.text not in junk] for box in boxes]
        for boxes, junk in zip(pages, furniture)
    ]
    lines = [line for boxes in pages for box in boxes for line in box]
    vocabulary = Counter(w.lower() for line in lines for w in _WORD.findall(line.text))
    body_size = _body_size(lines)

    text, offsets, headings, biggest = "", [], [], None
    for n, boxes in enumerate(pages, 1):
        paragraphs = _paragraphs(boxes, vocabulary)
        if not paragraphs:
            continue
        if not offsets:
            size, para = max((size, para) for para, size, _ in paragraphs)
            biggest = para if size > body_size and len(para.split()) <= 25 else None
        offsets.append((len(text) + 2 * bool(text), n))  # after the "\n\n" that will precede it
        for para, size, count in paragraphs:
            if text:
                text += "\n\n"
            if size >= 1.15 * body_size and count <= 3 and len(para.split()) <= 15 and " | " not in para:
                headings.append((len(text), para, size))
            text += para
    if not offsets:
        scanned = any(image for _, image in read)
        raise Unreadable("no text layer (scanned?)" if scanned else "no text layer")

    sizes = sorted({round(s, 1) for *_, s in headings}, reverse=True)
    headings = [(o, h, min(sizes.index(round(s, 1)) + 1, 6)) for o, h, s in headings]
    if not headings:  # type that does not set its headings apart: its numbered sections still do
        headings = _numbered_headings(text)
    with_text = {n for _, n in offsets}
    images_only = [n for n, (_, image) in enumerate(read, 1) if image and n not in with_text]
    notices = [f"{_page_list(images_only)} no text layer (images only)"] if images_only else []
    return Extracted(text, _title(info, path, biggest), offsets, headings, notices)


def _read_pages(document: PDFDocument) -> list[tuple[list[list[_Line]], bool]]:
    """(text boxes, has an image) of each page; pdfminer's layout objects, a few hundred bytes per
    glyph, are let go page by page."""
    manager = PDFResourceManager(caching=True)
    device = _Aggregator(manager)
    interpreter = PDFPageInterpreter(manager, device)
    pages = []
    for page in PDFPage.create_pages(document):
        interpreter.process_page(page)
        layout = device.get_result()
        pages.append((_page_boxes(layout), _has_image(layout)))
    return pages


def _page_boxes(layout: LTPage) -> list[list[_Line]]:
    """The page's layout boxes and their lines, in pdfminer's reading order. Pieces of one visual line
    that pdfminer keeps apart in a box (an italic phrase drawn after the rest of its line) are put back
    together in left-to-right order."""
    boxes = []
    for box in layout:
        if not isinstance(box, LTTextBox):
            continue
        lines: list[_Line] = []
        for line in sorted(box, key=lambda ln: (-round(ln.y0), ln.x0)):
            text = _clean(line.get_text())
            chars = [c for c in line if isinstance(c, LTChar) and c.get_text().strip()]
            if not re.search(r"[^\W_]", text):  # a line of only "!" or "_____" (icons, rules) is no text
                continue
            size = sorted(c.size for c in chars)[len(chars) // 2]
            fonts = {c.fontname for c in chars}
            font = fonts.pop() if len(fonts) == 1 else ""
            prev = lines[-1] if lines else None
            if prev and abs(prev.y0 - line.y0) < 0.3 * size and prev.x1 <= line.x0:
                font = prev.font if font == prev.font else ""
                lines[-1] = _Line(
                    f"{prev.text} {text}", prev.x0, line.x1, prev.y0, prev.y1, prev.size, font, prev.right
                )
            else:
                lines.append(_Line(text, line.x0, line.x1, line.y0, line.y1, size, font, box.x1))
        if lines:
            boxes.append(lines)
    return boxes


def _table_rows(boxes: list[list[_Line]]) -> list[list[_Line]]:
    """Put table values back on their row: pdfminer reads a table column by column (all the labels,
    then all the amounts), so a label and its figure end up far apart. A box made only of short lines
    with a figure ("2 120 000 $", "891", "19 avril 2022"), each line on the baseline of a line further
    left, is moved onto those lines as cells. Prose columns have long lines, so they never move."""
    owner: dict[int, _Line] = {}  # id of a moved line -> the row line it became a cell of
    boxes = [box for box in boxes if box]
    moved: set[int] = set()
    for box in sorted(boxes, key=lambda b: min(line.x0 for line in b)):
        if all(len(line.text.split()) <= 5 and re.search(r"\d", line.text) for line in box):
            others = [line for b in boxes if b is not box for line in b]
            rows = [_left_neighbour(line, others) for line in box]
            if all(rows):
                for line, row in zip(box, rows):
                    row = owner.get(id(row), row)
                    row.cells.append(line.text)
                    owner[id(line)] = row
                moved.add(id(box))
    return [box for box in boxes if id(box) not in moved]


def _left_neighbour(line: _Line, others: list[_Line]) -> _Line | None:
    """The nearest line to the left of `line` on the same baseline, if any."""
    same = [o for o in others if o.x1 < line.x0 and abs(o.y0 - line.y0) < 0.3 * line.size]
    return max(same, key=lambda o: o.x1, default=None)


def _clean(s: str) -> str:
    """One line of pdfminer text made plain: see the module docstring."""
    s = s.translate(_LIGATURES)
    s = re.sub(r"\(cid:\d+\)", "", s)
    s = re.sub(r"(?: ?\.){4,}", " …", s)  # dot leaders of an index or a worksheet
    # mathematical italic etc. ("𝐶𝑂2"): NFKC only on that block, as it would also rewrite "²", "½"...
    s = re.sub(r"[\U0001D400-\U0001D7FF]", lambda m: unicodedata.normalize("NFKC", m.group()), s)
    s = re.sub(r"\xad(?=\S)", "", s)  # soft hyphen inside a line; one at the end marks a hyphenation
    # A private-use glyph (a font's own ligature or icon) has no known text: dropped ("Seale" for
    # "Seattle" on the ACM cover sheet). Other controls and odd spaces become plain spaces.
    s = "".join(_plain(ch) for ch in s)
    return re.sub(r" +", " ", s).strip()


def _plain(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Co":
        return ""
    return " " if category[0] in "CZ" and ch != "\xad" else ch


def _furniture(pages: list[list[list[_Line]]]) -> list[set[str]]:
    """Per page, the texts of its lines that are page furniture, among the three topmost or
    bottommost rows of text: a page number, and among the five topmost or bottommost rows: a line
    found there, digits and punctuation aside, on three pages and on a third of the pages or more (a
    running title "… page 2", a proof slug; a third, as books and papers alternate two running heads;
    three, as a table near the edge of a two-page document repeats its labels).

    A page number is "Page 3", "3 of 48", or a bare number ("3", "- 3 -", "iv") alone on its
    baseline whose value follows the page sequence: it equals the physical page number, or its
    difference from it ("1" on physical page 3) is the same at that edge on two pages or more. A table
    cell near the edge ("45", "2023", "civil" read as a roman number) has a label on its baseline or
    does not follow the pages."""

    def key(s):  # letters only: "… (Adoption) page 1" and "… (Adoption )" + "page 2" are one header
        return re.sub(r"[\W\d_]+|page", "", s.lower())

    marginal = []  # per page: line text -> rank of its row from the nearer edge (0 = top or bottom row)
    for boxes in pages:
        lines = [line for box in boxes for line in box]
        rows = sorted({round(line.y0) for line in lines})
        rank = {y: min(i, len(rows) - 1 - i) for i, y in enumerate(rows)}
        marginal.append({line.text: rank[round(line.y0)] for line in lines})
    counts = Counter(k for texts in marginal for k in {key(t) for t, row in texts.items() if row < 5})
    with_text = sum(bool(boxes) for boxes in pages)
    repeated = {k for k, c in counts.items() if len(k) >= 3 and c >= max(3, with_text / 3)}

    bare = set()  # (page index, text, at the top, its value less the physical page number)
    for i, boxes in enumerate(pages):
        lines = [line for box in boxes for line in box]
        rows = sorted({round(line.y0) for line in lines})
        for line in lines:
            number, row = _page_number(line.text), rows.index(round(line.y0))
            if number is None or min(row, len(rows) - 1 - row) >= 3:
                continue
            # alone on its baseline, running heads aside ("-2-" beside "Instructions for Form 1040NR")
            beside = [o.text for o in lines if o is not line and abs(o.y0 - line.y0) < 0.3 * line.size]
            if all(key(t) in repeated for t in beside + line.cells):
                bare.add((i, line.text, row >= len(rows) / 2, number - i - 1))
    runs = Counter((top, offset) for _, _, top, offset in bare)
    numbers: list[set[str]] = [set() for _ in pages]
    for i, text, top, offset in bare:
        if offset == 0 or runs[top, offset] >= 2:
            numbers[i].add(text)

    def is_furniture(text: str, row: int) -> bool:
        return (row < 5 and key(text) in repeated) or (row < 3 and bool(_PAGE_LABEL.fullmatch(text)))

    return [
        {t for t, row in texts.items() if is_furniture(t, row)} | numbers[i]
        for i, texts in enumerate(marginal)
    ]


def _page_number(text: str) -> int | None:
    """The value of a bare page number ("3", "- 3 -", "iv"), else None.

    >>> _page_number("- 12 -"), _page_number("xiv"), _page_number("civil"), _page_number("Page 3")
    (12, 14, 153, None)
    """
    m = _BARE_NUMBER.fullmatch(text)
    if not m:
        return None
    if m.group(1).isdigit():
        return int(m.group(1))
    values = [_ROMAN[ch] for ch in m.group(1)]
    return sum(-v if v < w else v for v, w in zip(values, values[1:] + [0]))


def _paragraphs(boxes: list[list[_Line]], vocabulary: Counter) -> list[tuple[str, float, int]]:
    """Group a page's lines into (paragraph text, median glyph size, line count); a table row is one.

    A paragraph ends with its layout box, unless the next box goes on with a lowercase word (a column
    or box break in mid-sentence). Inside a box it ends before a bullet, at a change of glyph size, and
    after a line that stops short of the box's right edge and ends a sentence or is in another font
    than the next line (a heading, a bold lead-in line)."""
    groups: list[list[_Line]] = []
    for box in boxes:
        for i, line in enumerate(box):
            prev = groups[-1][-1] if groups else None
            if prev is None or line.cells or abs(prev.size - line.size) > 0.15 * line.size:
                cont = False
            elif groups[-1][0].cells:  # a table row goes on only with the rest of its wrapped label
                cont = line.text[:1].islower() or i > 0 and not _SENTENCE_END.search(prev.text)
            elif _MARKER.fullmatch(prev.text):  # "5." alone, its heading set apart by a wide gap
                cont = True
            elif i == 0 and not _just_below(prev, line):
                cont = line.text[:1].islower() and not _SENTENCE_END.search(prev.text)
            else:
                short = prev.x1 < prev.right - 2 * prev.size
                font_change = prev.font and line.font and prev.font != line.font
                cont = not (
                    _BULLET.match(line.text)
                    or " …" in prev.text  # an index or worksheet entry
                    or short and (_SENTENCE_END.search(prev.text) or font_change)
                )
            if cont:
                groups[-1].append(line)
            else:
                groups.append([line])
    out = []
    for group in groups:
        text = group[0].text
        for line in group[1:]:
            text = _join(text, line.text, vocabulary)
        text = " | ".join([text, *group[0].cells])
        out.append((text, sorted(line.size for line in group)[len(group) // 2], len(group)))
    return out


def _just_below(prev: _Line, line: _Line) -> bool:
    """Is `line` the next line of `prev`'s column (pdfminer sometimes boxes each line apart)?"""
    return abs(line.x0 - prev.x0) < 2 * prev.size and 0 <= prev.y0 - line.y1 < 0.8 * prev.size


def _join(left: str, right: str, vocabulary: Counter) -> str:
    """Join two lines of a paragraph, resolving a hyphen at the end of the first.

    Rule: a soft hyphen is always a hyphenation point. A hyphen between two lowercase letters is one
    too ("es-" + "pecially"), unless the word before it is already a compound or a web address
    ("Station-de-Biologie-des-" + "Laurentides"), or the document's own words say it is a compound:
    it spells the hyphenated form more often than the joined one, or never the joined one while both
    halves are words of their own ("ever-" + "increasing"). The document stands in for a dictionary,
    in any language. Any other hyphen is real and is kept without a space ("2023-" + "0379")."""
    if left.endswith("\xad"):
        return left[:-1] + right
    if not re.search(r"\w-$", left):
        return f"{left} {right}"
    head = left[:-1].split()[-1]
    tail = _WORD.match(right)
    if left[-2].islower() and tail and right[0].islower() and not re.search(r"[-/@]", head):
        head, tail = head.lower(), tail.group().lower()
        joined, hyphenated = vocabulary[head + tail], vocabulary[f"{head}-{tail}"]
        # each half was counted once where it stands at the line break
        halves_are_words = vocabulary[head] > 1 and vocabulary[tail] > 1
        if hyphenated <= joined and (joined or not halves_are_words):
            return left[:-1] + right
    return left + right


def _body_size(lines: list[_Line]) -> float:
    """The glyph size of most of the text."""
    weights: Counter = Counter()
    for line in lines:
        weights[round(line.size, 1)] += len(line.text)
    return weights.most_common(1)[0][0] if weights else 0.0


def _has_image(item) -> bool:
    return isinstance(item, LTImage) or isinstance(item, (LTPage, LTFigure)) and any(map(_has_image, item))


def _page_list(numbers: list[int]) -> str:
    """The subject of a notice.

    >>> _page_list([3, 4, 5, 9]), _page_list([15])
    ('pages 3-5, 9 have', 'page 15 has')
    """
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    spans = ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
    return f"page {spans} has" if len(numbers) == 1 else f"pages {spans} have"


def _title(info: dict, path: Path, biggest: str | None) -> str | None:
    """The metadata title when it reads like one (not "1", "untitled" or a file name), else the
    paragraph in the biggest type on the first page with text when it is bigger than the body text."""
    raw = info.get("Title")
    title = _clean(decode_text(raw) if isinstance(raw, bytes) else str(raw or ""))
    meaningful = (
        len(title) >= 4
        and _WORD.search(title)
        and title.lower() not in {"untitled", "sans titre", "document", path.stem.lower()}
        and not re.search(r"\.(pdf|docx?|odt|rtf|txt|indd|tex|pptx?)$|^microsoft word - ", title, re.I)
    )
    return title if meaningful else biggest
