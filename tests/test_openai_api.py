"""The OpenAI-compatible API of `rag serve` (rag/openai_api.py), over HTTP against servers started by
the tests on loopback: httpx for the exact wire format, the `openai` client itself for
compatibility. Fast ones use the fake embedder and model of conftest.py; one integration test asks
the real bundled model."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import httpx
import pytest

from tests.conftest import FIXTURES, ROOT, FakeEmbedder, FakeGenerator
from tests.test_web import free_port

QUESTION = "Combien de personnes emploie la boulangerie Martin ?"
ANSWER = "La boulangerie Martin emploie 12 personnes [1]."
QUOTE = "La boulangerie Martin, ouverte en 1998 à Lyon, emploie aujourd’hui 12 personnes."
UNSUPPORTED = "Elle vend aussi des voitures volantes"
PASSWORD = "s3cret"


def ask(content: str = QUESTION, **fields) -> dict:
    return {"model": "rag", "messages": [{"role": "user", "content": content}], **fields}


def make_engines(root, generator=None):
    from rag import store
    from rag.documents import load_corpus
    from rag.engines import Engines
    from rag.settings import Settings

    shutil.copytree(FIXTURES / "corpus", root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", models_dir=root / "models",
                        collections_dir=root / "collections", manifest_path=ROOT / "models.txt",
                        answer_mode="generate")  # the fake model writes free answers, which are checked
    embedder = FakeEmbedder()
    store.build(settings.index_dir, load_corpus(settings.corpus_dir), embedder, settings.chunk_chars)
    return Engines(settings, generator or FakeGenerator(*[ANSWER] * 500), embedder)


def start(engines, auth=None):
    from rag.web import build_app, serve

    port = free_port()
    demo = serve(build_app(engines, True), "127.0.0.1", port, auth=auth, block=False)
    return demo, f"http://127.0.0.1:{port}/v1"


def say(engines, reply: str) -> FakeGenerator:
    """The fake model's next replies (the module's servers share one)."""
    generator = engines.get().generator
    generator.replies[:] = [reply] * 10
    return generator


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """No login, as `rag serve` on loopback."""
    engines = make_engines(tmp_path_factory.mktemp("api"))
    demo, base = start(engines)
    yield engines, base, demo
    demo.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """Behind a login, as `rag serve --auth-file`."""
    engines = make_engines(tmp_path_factory.mktemp("api-login"))
    demo, base = start(engines, auth=("ana", PASSWORD))
    yield engines, base, demo
    demo.close()


def events(response: httpx.Response) -> list:
    """The server-sent events of a streamed reply: every line is `data: ...`, a comment or blank."""
    found = []
    for line in response.iter_lines():
        if not line or line.startswith(":"):
            continue
        assert line.startswith("data: "), line
        data = line.removeprefix("data: ")
        found.append(data if data == "[DONE]" else json.loads(data))
    return found


# ---------------------------------------------------------------- answers

def test_an_answer_carries_its_checked_text_sources_and_the_citations_of_ask_json(server):
    from rag.pipeline import answer
    from rag.render import answer_json

    engines, base, _ = server
    say(engines, ANSWER)
    reply = httpx.post(f"{base}/chat/completions", json=ask(), timeout=60)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "rag:default"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content.startswith(ANSWER + "\n\nSources:\n[1] alpha.txt, §2 (52-132): ")
    assert f'"{QUOTE}"' in content
    expected = answer_json(answer(QUESTION, engines.get()))["citations"]
    assert body["citations"] == expected and expected[0]["quote"] == QUOTE
    assert body["rag"]["refused"] is False and body["rag"]["mode"] == "llm" and body["rag"]["collection"] == "default"
    assert set(body["rag"]["timings"]) == {"retrieve", "first_token", "total"} and body["rag"]["score"] > 0
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_a_stream_sends_only_the_checked_answer_in_openai_chunks_then_done(server):
    engines, base, _ = server
    say(engines, f"{ANSWER} {UNSUPPORTED} [1].")  # the checks remove the second sentence
    with httpx.stream("POST", f"{base}/chat/completions", timeout=60,
                      json=ask(stream=True, stream_options={"include_usage": True})) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        found = events(reply)
    assert found[-1] == "[DONE]" and "[DONE]" not in found[:-1]
    chunks = found[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    with_choices = [c for c in chunks if c["choices"]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in with_choices)
    assert text.startswith(ANSWER + "\n\nSources:\n[1] alpha.txt") and QUOTE in text
    assert UNSUPPORTED.lower() not in json.dumps(found, ensure_ascii=False).lower()  # the draft is never sent
    last = with_choices[-1]
    assert [c["choices"][0]["finish_reason"] for c in with_choices] == [None] * (len(with_choices) - 1) + ["stop"]
    assert last["citations"][0]["quote"] == QUOTE and last["rag"]["mode"] == "llm"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0  # include_usage


def test_a_refusal_is_an_ordinary_reply_marked_refused(server):
    engines, base, _ = server
    body = httpx.post(f"{base}/chat/completions", json=ask("Quelle est la capitale de l'Australie ?"),
                      timeout=60).json()
    assert body["choices"][0]["message"]["content"] == "Je ne trouve pas cette information dans les documents."
    assert body["choices"][0]["finish_reason"] == "stop" and body["citations"] == []
    assert body["rag"]["refused"] is True and body["rag"]["refusal_reason"] and body["rag"]["mode"] == "refused"


def test_earlier_user_messages_complete_a_follow_up_question(server):
    engines, base, _ = server
    say(engines, ANSWER)
    messages = [{"role": "system", "content": "Answer in verse."},
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": ANSWER},
                {"role": "user", "content": [{"type": "text", "text": "Et son fondateur ?"}]}]
    body = httpx.post(f"{base}/chat/completions", json={"model": "rag", "messages": messages}, timeout=60).json()
    assert body["rag"]["question"].startswith("Et son fondateur ? (") and "Martin" in body["rag"]["question"]
    alone = httpx.post(f"{base}/chat/completions", json=ask("Et son fondateur ?"), timeout=60).json()
    assert alone["rag"]["question"] == "Et son fondateur ?"


def test_models_are_the_collections_and_an_unknown_one_is_404(server):
    engines, base, _ = server
    listed = httpx.get(f"{base}/models").json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == ["rag", "rag:default"]
    assert httpx.get(f"{base}/models/rag:default").json()["id"] == "rag:default"
    say(engines, ANSWER)
    for model in ("rag:default", "default"):
        assert httpx.post(f"{base}/chat/completions", json=ask(model=model), timeout=60).status_code == 200
    for model in ("gpt-4o", "rag:nope", "rag:../index"):
        reply = httpx.post(f"{base}/chat/completions", json=ask(model=model), timeout=60)
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "model_not_found"
    assert httpx.get(f"{base}/models/rag:nope").status_code == 404


# ---------------------------------------------------------------- malformed requests

BAD = [
    (b"not json", "JSON object"),
    (b"[1, 2]", "JSON object, not list"),
    (b"\xff\xfe\x00garbage", "JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON object"),  # nested too deep for the parser
    (json.dumps({"model": "rag"}), "messages must be a non-empty list"),
    (json.dumps({"model": "rag", "messages": []}), "messages must be a non-empty list"),
    (json.dumps({"model": "rag", "messages": "Qui ?"}), "messages must be a non-empty list"),
    (json.dumps({"model": "rag", "messages": ["Qui ?"]}), "messages[0] must be an object"),
    (json.dumps({"model": "rag", "messages": [{"role": "boss", "content": "Qui ?"}]}), "role is one of"),
    (json.dumps({"model": "rag", "messages": [{"role": "user", "content": 5}]}), "must be text or a list"),
    (json.dumps(ask([{"type": "image_url", "image_url": {"url": "http://x/a.png"}}])), "not 'image_url'"),
    (json.dumps(ask([{"type": "text", "text": 5}])), "only text parts"),
    (json.dumps({"messages": [{"role": "user", "content": "Qui ?"}, {"role": "assistant", "content": "Paul"}]}),
     "the last message must be the user's question"),
    (json.dumps(ask("   ")), "the question is empty"),
    (json.dumps(ask("Qui ? " * 400)), "the limit is 2000"),
    (json.dumps(ask(model=5)), "model must be a string"),
    (json.dumps(ask(k=0)), "k must be a whole number between 1 and 15"),
    (json.dumps(ask(k="5")), "k must be a whole number"),
    (json.dumps(ask(retrieval="bogus")), "retrieval must be one of hybrid, lexical, dense"),
    (json.dumps(ask(temperature=9)), "temperature must be between"),
    (json.dumps(ask(use_llm="no")), "use_llm must be true or false"),
    (json.dumps(ask(stream="yes")), "stream must be true or false"),
    (json.dumps(ask(stream_options=[1])), "stream_options must be an object"),
    (json.dumps(ask(n=2)), "n must be 1"),
]


@pytest.mark.parametrize("body, message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_a_malformed_request_is_a_400_in_openais_error_shape_and_never_reaches_the_model(server, body, message):
    engines, base, _ = server
    prompts = len(engines.get().generator.prompts)
    reply = httpx.post(f"{base}/chat/completions", content=body, headers={"content-type": "application/json"},
                       timeout=60)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"], error
    assert set(error) == {"message", "type", "param", "code"}
    assert len(engines.get().generator.prompts) == prompts


def test_a_body_over_one_megabyte_is_refused_before_it_is_parsed(server):
    engines, base, _ = server
    big = json.dumps(ask("Qui ?", padding="x" * (1 << 20))).encode()
    declared = httpx.post(f"{base}/chat/completions", content=big, timeout=60)
    streamed = httpx.post(f"{base}/chat/completions", content=iter([big[:1000], big[1000:]]), timeout=60)  # chunked
    for reply in (declared, streamed):
        assert reply.status_code == 413 and reply.json()["error"]["code"] == "request_too_large"
    assert httpx.post(f"{base}/chat/completions", json=ask(padding="x" * 1000), timeout=60).status_code == 200


def test_wrong_routes_methods_and_cross_origin_requests_get_error_json(server):
    engines, base, _ = server
    assert httpx.get(f"{base}/chat/completions").status_code == 405
    unknown = httpx.post(f"{base}/completions", json={"prompt": "x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_url"
    foreign = httpx.post(f"{base}/chat/completions", json=ask(), headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "cross_origin"
    assert "access-control-allow-origin" not in foreign.headers


def test_failures_inside_the_answer_are_clean_error_json(server, monkeypatch):
    from rag import openai_api
    from rag.errors import ModelError

    engines, base, _ = server

    def broken(kind):
        def fail(*args, **kwargs):
            raise kind("the generator file is missing; run: rag models fetch") if kind is ModelError else kind()
        return fail

    monkeypatch.setattr(openai_api, "answer", broken(ModelError))
    reply = httpx.post(f"{base}/chat/completions", json=ask(), timeout=60)
    assert reply.status_code == 500 and reply.json()["error"]["type"] == "server_error"
    assert reply.json()["error"]["message"] == "the generator file is missing; run: rag models fetch"
    monkeypatch.setattr(openai_api, "answer", broken(ZeroDivisionError))
    reply = httpx.post(f"{base}/chat/completions", json=ask(), timeout=60)
    assert reply.status_code == 500 and reply.json()["error"]["message"] == "internal error (ZeroDivisionError)"
    assert "Traceback" not in reply.text
    with httpx.stream("POST", f"{base}/chat/completions", json=ask(stream=True), timeout=60) as streamed:
        found = events(streamed)
    assert found[-2]["error"]["message"] == "internal error (ZeroDivisionError)" and found[-1] == "[DONE]"


def test_too_many_waiting_requests_are_told_the_server_is_busy(server, monkeypatch):
    from rag import openai_api

    engines, base, _ = server
    monkeypatch.setattr(openai_api, "MAX_WAITING", 0)
    reply = httpx.post(f"{base}/chat/completions", json=ask(), timeout=60)
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "overloaded"


# ---------------------------------------------------------------- the login

def test_behind_a_login_the_api_needs_the_password_and_counts_failures_with_the_page(guarded):
    engines, base, demo = guarded
    say(engines, ANSWER)
    for url in (f"{base}/models", f"{base}/chat/completions"):
        anonymous = httpx.post(url, json=ask()) if url.endswith("completions") else httpx.get(url)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert demo.rag_login.failures("ana") == 0  # no credentials: no guess to count
    basic = "Basic " + base64.b64encode(b"ana:" + PASSWORD.encode()).decode()
    for header in (f"Bearer {PASSWORD}", basic):
        reply = httpx.post(f"{base}/chat/completions", json=ask(), headers={"authorization": header}, timeout=60)
        assert reply.status_code == 200 and reply.json()["citations"]
    bob = "Basic " + base64.b64encode(b"bob:" + PASSWORD.encode()).decode()
    wrong = ["Bearer s3cre", f"Bearer {PASSWORD}x", bob, "Basic !!not-base64!!"]
    for header in wrong:
        assert httpx.get(f"{base}/models", headers={"authorization": header}).status_code == 401
    assert demo.rag_login.failures("ana") == 2  # the page's own count (bob's guess is counted apart)
    assert httpx.get(f"{base}/models", headers={"authorization": "Bearer nope"}).status_code == 401
    started = time.monotonic()
    slowed = httpx.get(f"{base}/models", headers={"authorization": "Bearer nope"})
    assert slowed.status_code == 401 and time.monotonic() - started >= 0.2  # the 4th failure waits
    assert httpx.get(f"{base}/models", headers={"authorization": f"Bearer {PASSWORD}"}).status_code == 200
    assert demo.rag_login.failures("ana") == 0  # a success forgets them, as on the page


def test_the_openai_client_itself_asks_lists_and_streams(guarded):
    openai = pytest.importorskip("openai")
    engines, base, _ = guarded
    say(engines, ANSWER)
    client = openai.OpenAI(base_url=base, api_key=PASSWORD, max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == ["rag", "rag:default"]
    done = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}])
    assert done.choices[0].message.content.startswith(ANSWER) and done.choices[0].finish_reason == "stop"
    assert done.model_extra["citations"][0]["quote"] == QUOTE and done.model_extra["rag"]["refused"] is False
    stream = client.chat.completions.create(model="rag:default", stream=True,
                                            messages=[{"role": "user", "content": QUESTION}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks).startswith(ANSWER + "\n\nSources:")
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["citations"][0]["quote"] == QUOTE
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError, match="only text parts"):
        client.chat.completions.create(model="rag", messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}])


# ---------------------------------------------------------------- one answer at a time

class SlowGenerator(FakeGenerator):
    """A fake model that takes its time and records how many streams ran at once."""

    def __init__(self, *replies: str) -> None:
        super().__init__(*replies)
        self.running = self.most = 0
        self.guard = threading.Lock()

    def stream(self, *args, **kwargs):
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            for piece in super().stream(*args, **kwargs):
                time.sleep(0.05)
                yield piece
        finally:
            with self.guard:
                self.running -= 1


def test_the_page_and_the_api_never_run_the_model_at_once(tmp_path):
    import gradio_client

    from rag.openai_api import model_lock

    generator = SlowGenerator(*[ANSWER] * 50)
    engines = make_engines(tmp_path, generator)
    assert model_lock(engines) is model_lock(engines)
    assert model_lock(engines) is not model_lock(make_engines(tmp_path / "other"))
    demo, base = start(engines)
    try:
        page = gradio_client.Client(base.removesuffix("/v1") + "/", verbose=False)
        with ThreadPoolExecutor(6) as pool:
            api = [pool.submit(httpx.post, f"{base}/chat/completions", json=ask(stream=s), timeout=120)
                   for s in (False, True, False)]
            asked = [pool.submit(page.predict, QUESTION, api_name="/ask") for _ in range(3)]
            replies, results = [f.result() for f in api], [f.result() for f in asked]
    finally:
        demo.close()
    assert all(r.status_code == 200 for r in replies) and all(r["citations"] for r in results)
    assert len(generator.prompts) == 6 and generator.most == 1


def test_a_streamed_request_dropped_while_it_waits_for_the_model_never_runs(tmp_path, monkeypatch):
    from rag import openai_api

    monkeypatch.setattr(openai_api, "KEEP_ALIVE_S", 0.05)
    engines = make_engines(tmp_path)
    generator = engines.get().generator
    demo, base = start(engines)
    lock = openai_api.model_lock(engines)
    lock.acquire()  # the page is answering
    try:
        with httpx.stream("POST", f"{base}/chat/completions", json=ask(stream=True), timeout=60) as first:
            lines = first.iter_lines()
            assert next(lines).startswith("data: ")
            time.sleep(0.2)  # its answer waits for the lock in the API's one thread
            with httpx.stream("POST", f"{base}/chat/completions", json=ask(stream=True), timeout=60) as second:
                waiting = second.iter_lines()
                assert next(waiting).startswith("data: ") and ": waiting for the model" in list(islice(waiting, 4))
            time.sleep(0.5)  # the next keep-alive meets the closed connection
            lock.release()
            rest = [line for line in lines if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]" and ANSWER in "".join(rest)
        time.sleep(0.5)
        assert len(generator.prompts) == 1  # the dropped request never reached the model
    finally:
        if lock.locked():
            lock.release()
        demo.close()


def test_a_documents_control_characters_are_escaped_in_the_content_and_kept_in_citations():
    from rag.citations import Citation
    from rag.openai_api import content_parts, extensions
    from rag.pipeline import Answer

    quote = "Le four \x1b]0;pwned\x07cuit 2 000 baguettes."
    result = Answer("Combien ?", "fr", f"{quote} [1].", [Citation(1, "evil\x1b[2J.txt", 3, 0, len(quote), quote)],
                    [], [], False, "extractive", {"retrieve": 1.0, "first_token": 1.0, "total": 1.0})
    content = "".join(content_parts(result))
    assert "\x1b" not in content and "\x07" not in content and "\\x1b]0;pwned\\x07" in content
    assert "evil\\x1b[2J.txt" in content and content.count("\n") == 3
    assert extensions(result, "default")["citations"][0]["quote"] == quote


# ---------------------------------------------------------------- the real model

@pytest.mark.integration
def test_the_real_model_answers_an_openai_client_with_exact_citations(tmp_path):
    openai = pytest.importorskip("openai")
    from rag.engines import Engines
    from rag.settings import Settings
    from rag.web import launch
    from tests.test_cli import rag

    seeds = ROOT / "seeds"
    done = rag("index", "--corpus", str(seeds), "--index", str(tmp_path / "index"))
    assert done.returncode == 0, done.stderr
    engines = Engines(Settings(index_dir=tmp_path / "index", collections_dir=tmp_path / "collections",
                               manifest_path=ROOT / "models.txt"))
    engines.get().warm_up()  # as `rag serve` does
    port = free_port()
    demo = launch(engines, "127.0.0.1", port, auth=("ana", PASSWORD), block=False)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=PASSWORD, max_retries=0, timeout=300)
        messages = [{"role": "user", "content": "Combien de GPU H800 DeepSeek a-t-il utilisés ?"}]
        reply = client.chat.completions.create(model="rag", messages=messages)
        streamed = list(client.chat.completions.create(model="rag", messages=messages, stream=True))
    finally:
        demo.close()
    content = reply.choices[0].message.content
    assert ("2 000" in content or "2000" in content) and "\n\nSources:\n[1] " in content
    citations = reply.model_extra["citations"]
    assert citations and not reply.model_extra["rag"]["refused"]
    for citation in citations:
        text = (seeds / citation["source"]).read_text("utf-8")
        assert text[citation["start"]:citation["end"]] == citation["quote"]
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == content  # same checked answer
    assert streamed[-1].model_extra["citations"] == citations
