"""HTML reader: pages are written at test time; boilerplate around the article must not reach the text."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rag.ingest.base import Unreadable
from rag.ingest.html import read_html

DEVSET = Path(__file__).resolve().parents[1].parent / "shared" / "devsets" / "realdocs"

ARTICLE = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<title>Candidature collective au HCERES - Le Blog des Sciences</title>
<meta property="og:title" content="Candidature collective au HCERES | Le Blog des Sciences">
<script>var tracking = "ne pas indexer";</script><style>p { color: red }</style>
</head><body>
<header><nav><ul><li><a href="/">Accueil</a></li><li><a href="/politique">Politique</a></li></ul></nav>
<ul class="languages"><li><a href="/de">Deutsch</a></li><li><a href="/es">Español</a></li></ul></header>
<main><article>
<h1>Candidature collective au HCERES</h1>
<p>En réaction à la candidature du conseiller recherche d’Emmanuel Macron, Thier&shy;ry Coul&shy;hon, plus de
2500 cher&shy;cheur·euse·s annoncent faire acte de candidature collectivement à la présidence du HCERES.</p>
<p>L’initiative est portée par le collectif <a href="https://rogueesr.fr">RogueESR</a> &amp; d’autres, et se veut
une réappropriation de l’évaluation de la recherche par celles et ceux qui la font.</p>
<h2>Trois conditions</h2>
<p>La lettre de motivation liste trois conditions nécessaires pour que l’autonomie de la recherche se réalise :</p>
<ul><li>des financements récurrents ;</li><li>du temps long, garanti par des postes pérennes ;</li></ul>
<table><tr><th>Année</th><th>Signataires</th></tr><tr><td>2020</td><td>2500</td></tr></table>
<p>Si la candidature a peu de chances d’aboutir, elle illustre une séparation de plus en plus visible entre les
chercheurs et leurs managers.</p>
</article>
<div class="share"><a href="https://twitter.com/share">Partager sur Twitter</a></div>
<aside class="related"><h3>Sur le même thème</h3><ul><li><a href="/cnrs">Le CNRS fête ses 80 ans le
22 juillet 2019</a></li><li><a href="/anr">L’ANR change de président</a></li></ul></aside>
<section id="comments"><h3>Laisser un commentaire</h3><form><label>Nom</label><input name="nom">
<textarea></textarea><button>Envoyer</button></form></section>
</main>
<footer><p>© 2020 Le Blog des Sciences. Tous droits réservés.</p></footer>
</body></html>"""


def test_article_without_boilerplate(tmp_path: Path):
    path = tmp_path / "post.html"
    path.write_text(ARTICLE, encoding="utf-8")

    got = read_html(path)

    assert got.text == (
        "Candidature collective au HCERES\n\n"
        "En réaction à la candidature du conseiller recherche d’Emmanuel Macron, Thierry Coulhon, plus de 2500 "
        "chercheur·euse·s annoncent faire acte de candidature collectivement à la présidence du HCERES.\n\n"
        "L’initiative est portée par le collectif RogueESR & d’autres, et se veut une réappropriation de "
        "l’évaluation de la recherche par celles et ceux qui la font.\n\n"
        "Trois conditions\n\n"
        "La lettre de motivation liste trois conditions nécessaires pour que l’autonomie de la recherche se "
        "réalise :\n\n"
        "des financements récurrents ;\n\n"
        "du temps long, garanti par des postes pérennes ;\n\n"
        "Année | Signataires\n\n"
        "2020 | 2500\n\n"
        "Si la candidature a peu de chances d’aboutir, elle illustre une séparation de plus en plus visible "
        "entre les chercheurs et leurs managers."
    )
    # the og:title cut to the page's <h1>, which drops " | Le Blog des Sciences"
    assert got.title == "Candidature collective au HCERES"
    assert [(h, level) for _, h, level in got.headings] == [
        ("Candidature collective au HCERES", 1), ("Trois conditions", 2)
    ]
    assert all(got.text[offset:].startswith(h) for offset, h, _ in got.headings)
    assert got.notices == []


def test_title_is_added_as_heading_when_the_article_lacks_it(tmp_path: Path):
    body = "".join(f"<p>Paragraph {i} of the news story, long enough to be read as real content.</p>" for i in range(6))
    path = tmp_path / "news.html"
    path.write_text(f"<html><head><title>Storm hits the coast</title></head><body>{body}</body></html>")
    got = read_html(path)
    assert got.title == "Storm hits the coast"
    assert got.headings == [(0, "Storm hits the coast", 1)]
    assert got.text.startswith("Storm hits the coast\n\nParagraph 0 of the news story")


def test_a_plain_document_page_keeps_its_headings_and_lists(tmp_path: Path):
    """trafilatura's default and precision modes drop these headings and list items."""
    path = tmp_path / "handbook.html"
    path.write_text(
        "<html><head><title>Handbook</title></head><body>"
        "<h1>Employee handbook</h1><p>Welcome to the company. This handbook explains the rules.</p>"
        "<h2>Leave</h2><p>You get 25 days of paid leave per year.</p>"
        "<ul><li>Sick leave: 10 days</li><li>Parental leave: 16 weeks</li></ul>"
        "<h2>Contacts</h2><table><tr><td>HR</td><td>hr@example.com</td></tr></table>"
        "<p>Questions go to your manager.</p><ol><li>Ask your manager</li><li>Then HR</li></ol></body></html>"
    )
    got = read_html(path)
    assert got.text.split("\n\n") == [
        "Employee handbook", "Welcome to the company. This handbook explains the rules.", "Leave",
        "You get 25 days of paid leave per year.", "Sick leave: 10 days", "Parental leave: 16 weeks",
        "Contacts", "HR | hr@example.com", "Questions go to your manager.", "Ask your manager", "Then HR",
    ]
    assert [(h, level) for _, h, level in got.headings] == [("Employee handbook", 1), ("Leave", 2), ("Contacts", 2)]
    assert got.title == "Handbook"


def test_a_page_of_links_is_read_whole_one_item_per_line(tmp_path: Path):
    """trafilatura glues such a page into one paragraph, navigation included."""
    items = "".join(f"<li><a href='/p{i}'>Product number {i} with a description</a></li>" for i in range(30))
    path = tmp_path / "catalogue.html"
    path.write_text(
        "<html><head><title>Catalogue</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<h1>Catalogue</h1><ul>{items}</ul><script>x()</script></body></html>"
    )
    got = read_html(path)
    assert got.text.split("\n\n") == ["Catalogue"] + [f"Product number {i} with a description" for i in range(30)]
    assert got.headings == [(0, "Catalogue", 1)]


def test_a_fragment_without_an_article_is_read_whole(tmp_path: Path):
    path = tmp_path / "snippet.html"
    path.write_text("<p>Opening hours: 9&nbsp;am to 5&nbsp;pm.</p>")
    got = read_html(path)
    assert got.text == "Opening hours: 9 am to 5 pm."
    assert got.notices == ["no main article found in the page; kept all its visible text"]


def test_declared_charset_and_code_blocks(tmp_path: Path):
    page = (
        '<html><head><meta charset="iso-8859-1"><title>Caf\xe9</title></head><body>'
        "<p>Cr\xe8me br\xfbl\xe9e<br>au caramel.</p><pre>def f(x):\n    return x</pre></body></html>"
    )
    path = tmp_path / "latin1.html"
    path.write_bytes(page.encode("latin-1"))
    got = read_html(path)
    assert "Crème brûlée au caramel." in got.text.split("\n\n")
    assert got.text.endswith("def f(x):\n\nreturn x")


def test_empty_page_is_unreadable(tmp_path: Path):
    for name, content in (("empty.html", ""), ("blank.html", "<html><body>  </body></html>")):
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(Unreadable):
            read_html(path)


@pytest.mark.skipif(not DEVSET.is_dir(), reason="realdocs devset absent")
def test_devset_answers_are_in_the_text_and_teasers_are_not():
    questions = [json.loads(line) for line in (DEVSET / "questions.jsonl").read_text().splitlines()]
    texts = {}
    for path in sorted((DEVSET / "corpus").glob("*.html")):
        start = time.perf_counter()
        got = read_html(path)
        assert time.perf_counter() - start < 1.0
        texts[path.name] = got.text
        flat = " ".join(got.text.split())
        for q in questions:
            if path.name in q["sources"] and q["answers"]:
                assert any(answer in flat for answer in q["answers"]), (path.name, q["id"])
        assert "\u00ad" not in got.text
        assert all(got.text[offset:].startswith(h) for offset, h, _ in got.headings)
    assert "22 July 2019" not in texts["wikimedia_wikipedia_turkey_restored_2020.html"]
    assert "DW recommends" not in texts["dw_berlin_colonial_past_2020.html"]
    assert "Español" not in texts["dw_berlin_colonial_past_2020.html"]
    assert "Laisser un commentaire" not in texts["soundofscience_candidature_collective_hceres_2020.html"]
