"""The web page through gradio_client, against a server started by the test (fake model, temporary
collections folder)."""

import dataclasses
import json
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import FakeGenerator

gradio_client = pytest.importorskip("gradio_client")
QUESTION = "Combien de personnes emploie la boulangerie Martin ?"
LEAK = "![img](http://127.0.0.1:27999/leak.png)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def engines(built, tmp_path):
    """The fixture index as the default collection, a temporary folder for new ones, a fake model
    writing free answers (answer_mode "generate": the page streams its draft)."""
    from rag.engines import Engines

    settings, embedder = built
    settings = dataclasses.replace(settings, collections_dir=tmp_path / "collections", answer_mode="generate")
    generator = FakeGenerator(*["La boulangerie Martin emploie 12 personnes [1]."] * 50)
    found = Engines(settings, generator, embedder)  # the fake embedder the fixture index was built with
    return found


def start(engines, uploads_allowed: bool = True, collection: str | None = None):
    from rag.web import build_app, serve

    port = free_port()
    demo = serve(build_app(engines, uploads_allowed, collection), "127.0.0.1", port, block=False)
    return demo, gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)


@pytest.fixture
def served(engines):
    demo, client = start(engines)
    yield engines, client
    demo.close()


def content(message: dict) -> str:
    value = message["content"]
    if isinstance(value, list):
        return " ".join(part.get("text", "") for part in value if isinstance(part, dict))
    return str(value)


def card(sources: str, card_id: str) -> str:
    """The HTML of one source card (from its opening tag to the next card or section end)."""
    match = re.search(rf"<div class='source' id='{card_id}'.*?(?=<div class='source'|</section>)", sources, re.S)
    assert match, f"no card {card_id} in the sources panel"
    return match.group(0)


def status_of(outputs) -> str:
    return outputs[0]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, "utf-8")
    return folder / name


def test_answer_with_citations_arrives(served):
    engines, client = served
    result = client.predict(QUESTION, api_name="/ask")
    assert "12 personnes" in result["answer"] and result["citations"]
    first = result["citations"][0]
    assert "12 personnes" in first["quote"] and first["source"] == "alpha.txt"
    assert "page" in first and "heading" in first and result["collection"] == "default"


def test_ask_refuses_out_of_range_parameters_without_running(served):
    engines, client = served
    prompts = len(engines.get().generator.prompts)
    with pytest.raises(Exception, match="k must be a whole number between 1 and 15"):
        client.predict(QUESTION, 20000, api_name="/ask")
    with pytest.raises(Exception, match="retrieval must be one of hybrid, lexical, dense"):
        client.predict(QUESTION, 5, "bogus", api_name="/ask")
    with pytest.raises(Exception, match="not valid"):
        client.predict(QUESTION, 5, "hybrid", True, "../etc", api_name="/ask")
    with pytest.raises(Exception, match="15"):  # the chat's slider refuses it too
        client.predict(QUESTION, [], "default", 20000, "hybrid", True, 0.0, api_name="/chat")
    with pytest.raises(Exception, match="bogus"):
        client.predict(QUESTION, [], "default", 5, "bogus", True, 0.0, api_name="/chat")
    assert len(engines.get().generator.prompts) == prompts  # nothing reached the model


def test_chat_streams_a_marked_draft_then_the_checked_answer(served):
    engines, client = served
    job = client.submit(QUESTION, [], "default", 5, "hybrid", True, 0.0, api_name="/chat")
    history, sources, timings, box = job.result(timeout=60)
    steps = [content(out[0][-1]) for out in job.outputs()]
    assert any("draft-label" in s and "brouillon" in s for s in steps[:-1])  # the draft is labelled unchecked
    text = content(history[-1])
    assert "(#src-0-1)" in text and "draft-label" not in text
    assert "<mark>" in card(sources, "src-0-1") and "12 personnes" in card(sources, "src-0-1")
    assert "open-doc" in sources and "premier mot" in timings and box == ""


def test_each_answer_keeps_its_own_sources(served):
    engines, client = served
    history, sources, _, _ = client.predict(QUESTION, [], "default", 5, "hybrid", True, 0.0, api_name="/chat")
    history, sources, _, _ = client.predict("Combien de commerçants accueille le marché de la Croix-Rousse ?",
                                            history, "default", 5, "hybrid", False, 0.0, api_name="/chat")
    first, second = content(history[1]), content(history[3])
    assert "(#src-0-1)" in first and "(#src-1-1)" in second and "#src-1-" not in first
    assert "12 personnes" in card(sources, "src-0-1") and "alpha.txt" in card(sources, "src-0-1")
    assert "80 commerçants" in card(sources, "src-1-1") and "beta.md" in card(sources, "src-1-1")
    assert sources.index("id='answer-1'") < sources.index("id='answer-0'")  # newest first


def test_upload_into_a_new_collection_then_ask_about_it(served, tmp_path):
    engines, client = served
    txt = write(tmp_path / "up", "phare.txt", "Le phare de Kerbel mesure 47 mètres. Il a été allumé en 1881.\n\n"
                "Son gardien, Yann Le Goff, y vit toute l'année.\n")
    md = write(tmp_path / "up", "horaires.md", "# Horaires\n\nLa médiathèque de Kerbel ouvre à 9 heures.\n")
    outputs = client.predict([gradio_client.handle_file(str(txt)), gradio_client.handle_file(str(md))], "iles",
                             api_name="/upload")
    status = status_of(outputs)
    assert "2 documents" in status and "1 TXT" in status and "1 MD" in status, status
    assert any("phare.txt" in str(o) and "<table>" in str(o) for o in outputs)  # the document list
    assert (engines.settings.collections_dir / "iles" / "documents" / "phare.txt").is_file()
    assert "iles" in engines.names()
    result = client.predict("Combien de mètres mesure le phare de Kerbel ?", 5, "hybrid", True, "iles",
                            api_name="/ask")
    assert result["citations"] and result["citations"][0]["source"] == "phare.txt"
    assert "47 mètres" in result["citations"][0]["quote"] and result["collection"] == "iles"
    history, sources, _, _ = client.predict("Combien de mètres mesure le phare de Kerbel ?", [], "iles", 5,
                                            "hybrid", False, 0.0, api_name="/chat")
    assert "phare.txt" in card(sources, "src-0-1")
    # and one document can be removed again
    outputs = client.predict("horaires.md", "iles", api_name="/remove")
    assert "horaires.md" in status_of(outputs) and "1 document" in status_of(outputs)
    assert not (engines.settings.collections_dir / "iles" / "documents" / "horaires.md").exists()


def test_unsupported_files_get_a_clear_message(served, tmp_path):
    engines, client = served
    png = tmp_path / "up" / "photo.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    status = status_of(client.predict([gradio_client.handle_file(str(png))], "photos", api_name="/upload"))
    assert "photo.png" in status and "(.png)" in status and "Traceback" not in status
    assert "photos" not in engines.names()
    txt = write(tmp_path / "up", "note.txt", "La salle des fêtes de Kerbel compte 120 places assises.\n")
    status = status_of(client.predict([gradio_client.handle_file(str(png)), gradio_client.handle_file(str(txt))],
                                      "photos", api_name="/upload"))
    assert "1 document" in status and "1 TXT" in status and "photo.png" in status and "(.png)" in status
    assert "\n" not in status  # one line


def test_uploads_are_refused_when_not_allowed(engines, tmp_path):
    from rag.web import uploads_permitted

    assert not uploads_permitted("0.0.0.0", None) and uploads_permitted("0.0.0.0", ("u", "p"))
    assert all(uploads_permitted(h, None) for h in ("127.0.0.1", "127.0.1.1", "localhost", "::1"))
    demo, client = start(engines, uploads_allowed=False)
    try:
        txt = write(tmp_path / "up", "note.txt", "Une note.\n")
        with pytest.raises(Exception, match="uploads are turned off"):
            client.predict([gradio_client.handle_file(str(txt))], "notes", api_name="/upload")
        assert "notes" not in engines.names()
        controls = [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "upload-controls"]
        assert controls and controls[0]["props"]["visible"] is False  # the upload controls are not on the page
        assert client.predict(QUESTION, api_name="/ask")["citations"]  # questions still work
    finally:
        demo.close()


def test_the_api_and_uploads_stay_behind_the_login(engines, tmp_path):
    from rag.web import launch

    port = free_port()
    demo = launch(engines, "127.0.0.1", port, auth=("ana", "s3cret"), block=False)
    try:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(Exception):
            gradio_client.Client(url, verbose=False).predict(QUESTION, api_name="/ask")
        client = gradio_client.Client(url, auth=("ana", "s3cret"), verbose=False)
        txt = write(tmp_path / "up", "note.txt", "La salle des fêtes de Kerbel compte 120 places assises.\n")
        assert "1 TXT" in status_of(client.predict([gradio_client.handle_file(str(txt))], "salles",
                                                   api_name="/upload"))
    finally:
        demo.close()


def test_examples_come_from_the_collections_gold_file(engines, tmp_path):
    from rag import web
    from rag.indexing import index_collection

    assert not hasattr(web, "EXAMPLES")  # no questions written for the seeds
    folder = tmp_path / "handbook"
    write(folder, "guide.txt", "Le phare de Kerbel mesure 47 mètres.\n")
    gold = [{"id": "u", "question": "Qui a peint le phare ?", "answers": [], "sources": [], "unanswerable": True}]
    gold += [{"id": f"q{n}", "question": f"Question {n} ?", "answers": ["x"], "sources": [], "unanswerable": False}
             for n in range(6)]
    (folder / "gold.jsonl").write_text("\n".join(json.dumps(g) for g in gold), "utf-8")
    collection = engines.collection("handbook")
    index_collection(collection, folder, engines._embedder, engines.settings.chunk_chars)
    assert web.example_questions(engines.collection("handbook")) == [f"Question {n} ?" for n in range(4)]
    assert web.example_questions(engines.collection("default")) == []  # no gold file: no examples
    samples = lambda demo: [c["props"] for c in demo.config["components"]  # noqa: E731
                            if c.get("props", {}).get("elem_id") == "examples"][0]
    with_gold = web.build_app(engines, True, "handbook")
    assert samples(with_gold)["samples"] == [[f"Question {n} ?"] for n in range(4)]
    assert samples(with_gold)["visible"] is True
    assert samples(web.build_app(engines, True))["visible"] is False


def test_markdown_and_html_in_a_document_are_shown_as_text(served, tmp_path):
    engines, client = served
    evil = write(tmp_path / "up", "evil.txt",
                 f"Le serveur secret {LEAK} compte 42 disques <img src=x onerror=alert(1)>.\n\n"
                 "Une autre phrase sans rapport avec le reste.\n")
    client.predict([gradio_client.handle_file(str(evil))], "piege", api_name="/upload")
    history, sources, _, _ = client.predict(f"Combien de disques compte le serveur secret ? {LEAK}", [], "piege",
                                            5, "hybrid", True, 0.0, api_name="/chat")
    question, shown = content(history[-2]), content(history[-1])
    assert "42 disques" in shown
    for message in (question, shown):
        assert "![" not in message and "](" not in message.replace("](#src-", "") and "<img" not in message
        assert "http://" not in message  # no autolink either
    assert r"\!\[img\]\(http\://127\.0\.0\.1\:27999/leak\.png\)" in shown
    assert "<img" not in sources and "&lt;img src=x onerror=alert(1)&gt;" in sources
    assert LEAK in sources  # plain text in an HTML panel: never rendered as Markdown


def test_the_viewer_shows_the_whole_document_escaped_and_bounded():
    from rag.documents import Document
    from rag.web import MAX_VIEW_CHARS, document_html

    quote = "La <b>citation</b> exacte."
    text = "début & fin\n\n" + "x" * 300_000 + " " + quote + " " + "y" * 300_000
    start = text.index(quote)
    shown = document_html(Document("long.txt", text, "0"), {"source": "long.txt", "start": start,
                                                          "end": start + len(quote), "quote": quote}, "en", "c")
    assert "<mark id='viewer-mark'>La &lt;b&gt;citation&lt;/b&gt; exacte.</mark>" in shown
    assert MAX_VIEW_CHARS < len(shown) < MAX_VIEW_CHARS + 1000 and "characters not shown" in shown
    small = document_html(Document("a.txt", "Un.\n\nDeux <i>.", "0", title="<T>"),
                          {"start": 5, "end": 10, "quote": "Deux "}, "fr", "c")
    assert "Un.\n\n<mark id='viewer-mark'>Deux </mark>&lt;i&gt;." in small and "&lt;T&gt;" in small
    moved = document_html(Document("a.txt", "Tout autre texte.", "0"), {"start": 0, "end": 4, "quote": "Deux"}, "en", "c")
    assert "<mark" not in moved and "changed since this answer" in moved
    assert "no longer part" in document_html(None, {}, "en", "c")


def test_ui_strings_exist_in_both_languages():
    from rag.languages.ui import UI

    assert set(UI["fr"]) == set(UI["en"])


def test_ten_concurrent_questions_are_all_answered(served):
    engines, client = served
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: client.predict(QUESTION, api_name="/ask"), range(10)))
    assert len(results) == 10 and all(r["citations"] for r in results)


def test_bad_request_gets_a_readable_error(served):
    engines, client = served
    with pytest.raises(Exception, match="question is empty"):
        client.predict("   ", api_name="/ask")
    history, sources, timings, box = client.predict("", [], "default", 5, "hybrid", True, 0.0, api_name="/chat")
    assert "question is empty" in content(history[-1]) and "Traceback" not in str(history)
    history, *_ = client.predict(QUESTION, [], "nowhere", 5, "hybrid", True, 0.0, api_name="/chat")
    assert "nowhere" in content(history[-1]) and "Traceback" not in str(history)


def test_follow_up_is_made_self_contained():
    from rag.followup import contextualize

    assert "R1" in contextualize("Et combien a coûté son entraînement ?", ["Qu'est-ce que R1 ?"])
    assert contextualize("Qui dirige Meta ?", ["Qu'est-ce que R1 ?"]) == "Qui dirige Meta ?"
