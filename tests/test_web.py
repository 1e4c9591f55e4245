"""The web page through gradio_client, against a server started by the test (fake model)."""

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

gradio_client = pytest.importorskip("gradio_client")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(engine_factory):
    from rag.web import launch

    engine = engine_factory(*["La boulangerie Martin emploie 12 personnes [1]."] * 20)
    port = free_port()
    demo = launch(engine, "127.0.0.1", port, block=False)
    yield engine, f"http://127.0.0.1:{port}/"
    demo.close()


def test_answer_with_citations_arrives(served):
    engine, url = served
    client = gradio_client.Client(url, verbose=False)
    result = client.predict("Combien de personnes emploie la boulangerie Martin ?", api_name="/ask")
    assert "12 personnes" in result["answer"] and result["citations"]
    assert "12 personnes" in result["citations"][0]["quote"]


def test_chat_streams_then_shows_highlighted_sources(served):
    engine, url = served
    client = gradio_client.Client(url, verbose=False)
    history, sources, timings, box = client.predict(
        "Combien de personnes emploie la boulangerie Martin ?", [], 5, "hybrid", True, 0.0, api_name="/chat")
    text = history[-1]["content"] if isinstance(history[-1]["content"], str) else str(history[-1]["content"])
    assert "(#src-1)" in text
    assert "id='src-1'" in sources and "<mark>" in sources and "12 personnes" in sources
    assert "first token" in timings and box == ""


def test_ten_concurrent_questions_are_all_answered(served):
    engine, url = served
    client = gradio_client.Client(url, verbose=False)
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: client.predict("Combien de personnes emploie la boulangerie Martin ?",
                                                         api_name="/ask"), range(10)))
    assert len(results) == 10 and all(r["citations"] for r in results)


def test_bad_request_gets_a_readable_error(served):
    engine, url = served
    client = gradio_client.Client(url, verbose=False)
    with pytest.raises(Exception, match="question is empty"):
        client.predict("   ", api_name="/ask")
    history, sources, timings, box = client.predict("", [], 5, "hybrid", True, 0.0, api_name="/chat")
    assert "question is empty" in str(history[-1]["content"]) and "Traceback" not in str(history)


def test_follow_up_is_made_self_contained():
    from rag.followup import contextualize

    assert "R1" in contextualize("Et combien a coûté son entraînement ?", ["Qu'est-ce que R1 ?"])
    assert contextualize("Qui dirige Meta ?", ["Qu'est-ce que R1 ?"]) == "Qui dirige Meta ?"
