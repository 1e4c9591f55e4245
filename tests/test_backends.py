"""Generator backends: a model served by an OpenAI-compatible server (rag/backends/openai_server.py),
chosen by a `openai:URL` line of models.txt, and the local model's chat-template path.

Fast tests talk to a tiny fake server in this process (stdlib http.server on 127.0.0.1, a free
port) that speaks server-sent events as llama.cpp's servers do; the integration tests start
llama-cpp-python's own server (`python -m llama_cpp.server`) on the bundled GGUF."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from rag import models
from rag.backends import OpenAIServerGenerator, check_server
from rag.backends import openai_server
from rag.chunking import Chunk
from rag.errors import ModelError, UsageError
from rag.evidence import Evidence
from rag.generation import STOP, LlamaGenerator
from rag.prefix_cache import KeptPrefixes
from rag.pipeline import answer, load_configured_generator
from rag.query import analyse
from rag.settings import Settings
from rag.span import SpanChoices, pick_span
from tests.conftest import ROOT, engine_over
from tests.test_cli import rag

# --- a fake OpenAI-compatible server ----------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: dict | None


@dataclass
class Reply:
    """What the fake server answers: a status, headers, and a body sent in parts (a number in
    `body` is a pause in seconds); `wait` seconds pass before anything is sent."""

    body: list = field(default_factory=list)
    status: int = 200
    headers: dict = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    wait: float = 0.0


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script = lambda request: Reply(sse())
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes

            def do_POST(self):  # noqa: N802
                self.serve()

            def do_GET(self):  # noqa: N802
                self.serve()

            def serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers), json.loads(raw) if raw else None)
                fake.requests.append(request)
                reply = fake.script(request)
                time.sleep(reply.wait)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    for part in reply.body:
                        if isinstance(part, (int, float)):
                            time.sleep(part)
                        else:
                            self.wfile.write(part)
                            self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: it had what it wanted

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    try:
        yield fake
    finally:
        fake.close()


def sse(*events: dict, done: bool = True) -> list[bytes]:
    """An event stream as llama.cpp's servers write it."""
    return [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + ([b"data: [DONE]\n\n"] if done else [])


def token(text: str, logprob: float | None = None, layout: str = "completions") -> dict:
    """One streamed token: OpenAI's completions layout (llama-cpp-python, vLLM) or the chat-style
    `content` list llama.cpp's llama-server puts in its completions."""
    choice: dict = {"text": text, "index": 0, "logprobs": None, "finish_reason": None}
    if logprob is not None and layout == "completions":
        choice["logprobs"] = {"tokens": [text], "text_offset": [0], "token_logprobs": [logprob],
                              "top_logprobs": [{text: logprob}]}
    elif logprob is not None:
        choice["logprobs"] = {"content": [{"id": 1, "token": text, "logprob": logprob, "bytes": list(text.encode()),
                                           "top_logprobs": []}]}
    return {"id": "cmpl-1", "object": "text_completion", "model": "m", "choices": [choice]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OneOutput:
    """A constraint allowing one output (what `pick_span` passes is a `SpanChoices`)."""

    def outputs(self) -> list[str]:
        return [" 1724\n"]

    def gbnf(self) -> str:
        return 'root ::= " "? "1724" "\\n"'


def error_of(generator, *args, **kwargs) -> str:
    with pytest.raises(ModelError) as caught:
        "".join(generator.stream(*args, **kwargs))
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- plain generation ---------------------------------------------------------------------------------


def test_plain_generation_streams_the_first_line_with_the_local_rules(server):
    # a leading line break is skipped; the answer ends at the next one; nothing after it is read
    server.script = lambda r: Reply(sse(token("\n"), token(" Paris"), token(" est"), token(" belle.\n"),
                                        token("Question"), done=False) + [b"data: {not json\n\n"])
    generator = OpenAIServerGenerator("g", server.url, model="gemma3-270m", api_key="sekret")
    pieces = list(generator.stream("Question: capitale ?\nAnswer:", 40, 0.3))
    assert pieces == ["Paris", " est", " belle."]
    assert generator.last_usage == {"completion_tokens": 4} and generator.last_logprobs is None
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/completions")
    assert request.headers["Authorization"] == "Bearer sekret"
    body = request.body
    assert body["prompt"] == "Question: capitale ?\nAnswer:" and body["stream"] is True
    assert (body["max_tokens"], body["temperature"], body["model"]) == (40, 0.3, "gemma3-270m")
    assert body["stop"] == STOP and body["repeat_penalty"] == 1.1
    assert "grammar" not in body and "logprobs" not in body


def test_an_event_stream_is_read_as_the_standard_says(server):
    # keep-alive comments, event/id fields, CRLF line ends, a data field split over two lines,
    # and a stream that ends without [DONE]
    two_lines = json.dumps(token(" deux")).replace(', "index"', '\ndata: , "index"', 1)
    server.script = lambda r: Reply([b": ping - 2025-01-01\r\n\r\n", b"event: message\r\nid: 7\r\n",
                                     b"data: " + json.dumps(token(" un")).encode() + b"\r\n\r\n",
                                     b"data: " + two_lines.encode() + b"\n\n", b"retry: 10\n\n"])
    generator = OpenAIServerGenerator("g", server.url)
    assert "".join(generator.stream("p", 8, 0.0)) == "un deux"
    assert "Authorization" not in server.requests[0].headers and "model" not in server.requests[0].body


def test_a_server_that_does_not_stream_is_read_whole(server):
    whole = {"id": "x", "object": "text_completion", "choices": [{"text": " Paris.\nQuestion", "index": 0}],
             "usage": {"prompt_tokens": 12, "completion_tokens": 3}}
    server.script = lambda r: Reply([json.dumps(whole).encode()], headers={"Content-Type": "application/json"})
    generator = OpenAIServerGenerator("g", server.url)
    assert "".join(generator.stream("p", 8, 0.0)) == "Paris."
    assert generator.last_usage == {"completion_tokens": 1, "prompt_tokens": 12}


def test_chat_mode_sends_a_user_message_but_the_span_task_stays_a_raw_prompt(server):
    def script(request):
        if request.path.endswith("/chat/completions"):
            return Reply(sse({"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
                             {"choices": [{"index": 0, "delta": {"content": "Paris"}}]},
                             {"choices": [{"index": 0, "delta": {"content": ".\n"}}]}))
        return Reply(sse(token(" 1724", -0.1), token("\n", -0.2)))

    server.script = script
    generator = OpenAIServerGenerator("g", server.url, chat=True)
    assert "".join(generator.stream("Capital of France?", 8, 0.0)) == "Paris."
    chat = server.requests[0]
    assert chat.path == "/v1/chat/completions" and chat.body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert "prompt" not in chat.body and chat.body["stop"] == STOP
    assert "".join(generator.stream("Answer:", 8, 0.0, constraint=OneOutput())) == "1724"
    assert server.requests[1].path == "/v1/completions" and server.requests[1].body["prompt"] == "Answer:"


# --- under a constraint: grammar and log-probabilities -----------------------------------------------


@pytest.mark.parametrize("layout", ["completions", "content"])
def test_a_constraint_sends_the_grammar_and_reads_the_tokens_logprobs(server, layout):
    server.script = lambda r: Reply(sse(token(" ", -0.1, layout), token("1724", -0.2, layout), token("\n", -1.5, layout),
                                        token("junk", -9.0, layout)))
    generator = OpenAIServerGenerator("g", server.url)
    assert "".join(generator.stream("Answer:", 24, 0.8, constraint=OneOutput())) == "1724"
    assert generator.last_logprobs == [-0.1, -0.2, -1.5]  # up to the line break, as the local scan counts
    body = server.requests[0].body
    assert body["grammar"] == OneOutput().gbnf() and body["logprobs"] == 1
    assert body["temperature"] == 0.0 and body["repeat_penalty"] == 1.0 and "stop" not in body


def test_the_grammar_goes_where_the_manifest_says(server):
    server.script = lambda r: Reply(sse(token(" 1724\n")))
    nested = OpenAIServerGenerator("g", server.url, grammar_field="structured_outputs.grammar")
    "".join(nested.stream("Answer:", 24, 0.0, constraint=OneOutput()))
    assert server.requests[0].body["structured_outputs"] == {"grammar": OneOutput().gbnf()}
    assert "grammar" not in server.requests[0].body
    bare = OpenAIServerGenerator("g", server.url, grammar_field=None)
    "".join(bare.stream("Answer:", 24, 0.0, constraint=OneOutput()))
    assert "grammar" not in server.requests[1].body and server.requests[1].body["logprobs"] == 1


@pytest.mark.parametrize("tokens", [
    pytest.param([token(" 1724", -0.2), token("\n")], id="one-token-without"),
    pytest.param([token(" 1724", 0.5), token("\n", -0.1)], id="positive"),
    pytest.param([{"choices": [{"text": " 1724\n", "logprobs": {"token_logprobs": ["-0.1"]}}]}], id="a-string"),
    pytest.param([{"choices": [{"text": " 1724\n", "logprobs": {"token_logprobs": [float("nan")]}}]}], id="nan"),
    pytest.param([{"choices": [{"text": " 1724\n", "logprobs": {"unknown": [1]}}]}], id="unknown-layout"),
    pytest.param([token(" 1724\n")], id="none-at-all"),
])
def test_missing_or_unreadable_logprobs_give_none(server, tokens):
    server.script = lambda r: Reply(sse(*tokens))
    generator = OpenAIServerGenerator("g", server.url)
    assert "".join(generator.stream("Answer:", 24, 0.0, constraint=OneOutput())) == "1724"
    assert generator.last_logprobs is None


def test_logprobs_are_not_kept_from_a_plain_generation(server):
    server.script = lambda r: Reply(sse(token(" yes", -0.1), token("\n", -0.1)))
    generator = OpenAIServerGenerator("g", server.url)
    "".join(generator.stream("p", 8, 0.0))
    assert generator.last_logprobs is None


def test_each_thread_reads_its_own_logprobs(server):
    server.script = lambda r: Reply(sse(token(" 1724", -0.3), token("\n", -0.1)))
    generator = OpenAIServerGenerator("g", server.url)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(
        ("".join(generator.stream("a", 24, 0.0, constraint=OneOutput())), generator.last_logprobs)))
    worker.start()
    worker.join(10)
    assert seen == [("1724", [-0.3, -0.1])] and generator.last_logprobs is None


# --- pick_span through the server ---------------------------------------------------------------------

SENTENCE = "The Old Truman Brewery was founded in 1724 by Joseph Truman."


def evidence(n: int, text: str, offset: int = 100) -> Evidence:
    chunk = Chunk(f"c{n}", "doc.txt", offset - 10, offset + len(text) + 10, 1, "x" * 10 + text + "y" * 10, "en")
    return Evidence(n, chunk, offset, offset + len(text), text, 1.0 / n, 1.0, 1.0)


def test_pick_span_over_the_server_is_words_of_the_sentence_with_a_confidence(server):
    def script(request):
        grammar = request.body["grammar"]
        assert '"1724"' in grammar and request.body["prompt"].endswith("Answer:")
        return Reply(sse(token(" ", -0.1), token("1724", -0.05), token("\n", -0.4)))

    server.script = script
    generator = OpenAIServerGenerator("g", server.url)
    chosen = [evidence(1, SENTENCE)]
    span = pick_span(generator, analyse("When was the Old Truman Brewery founded?", "en"), chosen)
    assert span is not None and span.text == "1724" == SENTENCE[span.start:span.end]
    assert span.confidence == pytest.approx(math.exp((-0.1 - 0.05 - 0.4) / 3))
    choices = SpanChoices([SENTENCE], "en")
    assert choices.allows(b" 1724\n")


def test_a_server_that_ignores_the_grammar_gives_no_span_and_one_without_logprobs_no_confidence(server):
    server.script = lambda r: Reply(sse(token(" It was founded in 1999.\n", -0.1)))
    generator = OpenAIServerGenerator("g", server.url)
    question = analyse("When was the Old Truman Brewery founded?", "en")
    assert pick_span(generator, question, [evidence(1, SENTENCE)]) is None
    server.script = lambda r: Reply(sse(token(" 1724"), token("\n")))
    span = pick_span(generator, question, [evidence(1, SENTENCE)])
    assert span is not None and span.text == "1724" and span.confidence is None


# --- failures: one line naming the URL ----------------------------------------------------------------


def test_connection_refused_names_the_url():
    port = free_port()
    generator = OpenAIServerGenerator("g", f"http://127.0.0.1:{port}/v1")
    message = error_of(generator, "p", 8, 0.0)
    assert f"http://127.0.0.1:{port}/v1/completions" in message and "connection refused" in message


def test_an_unknown_host_is_named():
    generator = OpenAIServerGenerator("g", "http://no-such-host.invalid:8080/v1", timeout=5)
    message = error_of(generator, "p", 8, 0.0)
    assert "no-such-host.invalid" in message


def test_a_server_that_does_not_answer_in_time(server):
    server.script = lambda r: Reply(sse(token(" late\n")), wait=1.5)
    generator = OpenAIServerGenerator("g", server.url, timeout=0.3)
    started = time.monotonic()
    message = error_of(generator, "p", 8, 0.0)
    assert "did not answer within 0.3 s" in message and server.url in message
    assert time.monotonic() - started < 1.4


def test_a_server_that_stops_in_the_middle_of_a_stream(server):
    server.script = lambda r: Reply(sse(token(" un")) [:1] + [1.5] + sse(token(" deux\n")))
    generator = OpenAIServerGenerator("g", server.url, timeout=0.3)
    received = []
    with pytest.raises(ModelError, match="stopped answering within 0.3 s"):
        for piece in generator.stream("p", 8, 0.0):
            received.append(piece)
    assert received == ["un"]


@pytest.mark.parametrize("status, body, words", [
    (500, {"error": {"message": "llama_decode\nfailed", "type": "server_error"}}, ["HTTP 500", "llama_decode failed"]),
    (422, {"detail": [{"loc": ["body", "max_tokens"], "msg": "must be >= 0"}]}, ["HTTP 422", "must be >= 0"]),
    (404, "<html>Not Found</html>", ["HTTP 404", "/v1", "model="]),
    (401, {"error": "invalid api key"}, ["HTTP 401", "invalid api key", "$RAG_TEST_KEY", "not set"]),
    (503, "x" * 100_000, ["HTTP 503", "…"]),
])
def test_http_errors_are_one_line_with_the_servers_reason(server, status, body, words):
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    server.script = lambda r: Reply([raw], status=status, headers={"Content-Type": "application/json"})
    generator = OpenAIServerGenerator("g", server.url, api_key_env="RAG_TEST_KEY")
    message = error_of(generator, "p", 8, 0.0)
    assert server.url + "/completions" in message and len(message) < 600
    for word in words:
        assert word in message


@pytest.mark.parametrize("parts, words", [
    pytest.param([b"data: {not json\n\n"], ["malformed", "not JSON"], id="not-json"),
    pytest.param([b"data: [1, 2]\n\n"], ["malformed", "not an object"], id="not-an-object"),
    pytest.param([b"data: {\"choices\": \"text\"}\n\n"], ["malformed", "choices"], id="choices-not-a-list"),
    pytest.param([b"data: {\"choices\": [{\"text\": 12}]}\n\n"], ["malformed", "not a string"], id="text-not-a-string"),
    pytest.param([b"data: \xff\xfe\n\n"], ["malformed", "UTF-8"], id="not-utf8"),
    pytest.param([b"<html><body>Welcome to nginx</body></html>"], ["malformed", "without any event"], id="no-event"),
    pytest.param([b""], ["malformed", "without any event"], id="empty"),
    pytest.param([b"data: {\"error\": {\"message\": \"out of memory\"}}\n\n"], ["reported an error", "out of memory"],
                 id="error-event"),
    pytest.param([b"event: error\ndata: {\"message\": \"context full\"}\n\n"], ["reported an error", "context full"],
                 id="error-event-type"),
])
def test_a_malformed_stream_is_a_model_error(server, parts, words):
    server.script = lambda r: Reply(parts)
    message = error_of(OpenAIServerGenerator("g", server.url), "p", 8, 0.0)
    assert server.url in message
    for word in words:
        assert word in message


def test_a_web_page_is_no_event_stream(server):
    server.script = lambda r: Reply([b"<html><body>Welcome to nginx</body></html>"],
                                    headers={"Content-Type": "text/html; charset=utf-8"})
    message = error_of(OpenAIServerGenerator("g", server.url), "p", 8, 0.0)
    assert "malformed" in message and "text/html" in message and "…/v1" in message


def test_responses_are_bounded(server, monkeypatch):
    monkeypatch.setattr(openai_server, "MAX_LINE", 1000)
    server.script = lambda r: Reply([b"data: " + b"x" * 5000 + b"\n\n"])
    assert "a line over" in error_of(OpenAIServerGenerator("g", server.url), "p", 8, 0.0)
    monkeypatch.setattr(openai_server, "MAX_RESPONSE", 10_000)
    server.script = lambda r: Reply([b": ping\n\n"] * 5000)  # keep-alives, and never a token
    assert "sent over" in error_of(OpenAIServerGenerator("g", server.url), "p", 8, 0.0)
    server.script = lambda r: Reply([b"{" + b" " * 20_000 + b"}"], headers={"Content-Type": "application/json"})
    assert "sent over" in error_of(OpenAIServerGenerator("g", server.url), "p", 8, 0.0)


def test_a_server_that_ignores_max_tokens_is_cut_off(server):
    server.script = lambda r: Reply(sse(*[token(" word")] * 500))
    generator = OpenAIServerGenerator("g", server.url)
    assert len(list(generator.stream("p", 4, 0.0))) == 4 * 4 + 17


def test_a_bad_url_is_a_usage_error():
    for url in ("ftp://host/v1", "127.0.0.1:8080/v1", "http://", "http://host:port/v1"):
        with pytest.raises(UsageError):
            OpenAIServerGenerator("g", url)


def test_messages_do_not_show_credentials_of_the_url():
    port = free_port()
    generator = OpenAIServerGenerator("g", f"http://user:hunter2@127.0.0.1:{port}/v1?key=abc")
    message = error_of(generator, "p", 8, 0.0)
    assert "hunter2" not in message and "abc" not in message and f"127.0.0.1:{port}/v1" in message


# --- the manifest: a served generator -----------------------------------------------------------------

SERVED = "generator mine openai:{url} model=gemma3-270m api_key_env=RAG_TEST_KEY timeout=7 chat=true\n"


def manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.txt"
    path.write_text(text, "utf-8")
    return path


def served_engine(folder: Path, files: dict[str, str], manifest_path: Path, generator: str, **overrides):
    """An engine over `files` (fake embedder) whose generator is loaded from `manifest_path`, as `rag ask` does."""
    engine = engine_over(folder, files, **overrides)
    settings = dataclasses.replace(engine.settings, manifest_path=manifest_path, generator=generator)
    return dataclasses.replace(engine, settings=settings, _generator=None)


def test_a_served_generator_is_listed_never_fetched_nor_resolved(tmp_path, monkeypatch):
    (entry,) = models.read_manifest(manifest(tmp_path, SERVED.format(url="http://127.0.0.1:9/v1")))
    assert entry.served_url == "http://127.0.0.1:9/v1" and entry.flag("chat")
    state = models.status(entry, tmp_path, tmp_path / "models")
    assert (state.state, state.path, state.detail) == ("served", None, "model gemma3-270m")
    monkeypatch.setattr(models.subprocess, "run", lambda *a, **k: pytest.fail("pip was run"))
    logged = []
    assert models.fetch(entry, tmp_path, tmp_path / "models", log=logged.append) == entry.source
    assert logged == ["mine is served by http://127.0.0.1:9/v1: nothing to fetch"]
    assert not (tmp_path / "models").exists()
    with pytest.raises(ModelError, match="served by http://127.0.0.1:9/v1"):
        models.resolve(entry, tmp_path, tmp_path / "models")


@pytest.mark.parametrize("line, words", [
    ("embedder e openai:http://127.0.0.1:8080/v1", ["only a generator"]),
    ("generator g openai:127.0.0.1:8080/v1", ["http:// or https://"]),
    ("generator g openai:http://[::1/v1", ["http:// or https://"]),
    ("generator g openai:http://host:port/v1", ["http:// or https://"]),
    ("generator g openai:http://h/v1 api_key=sk-123", ["api_key_env="]),
    ("generator g openai:http://h/v1 timeout=soon", ["timeout="]),
    ("generator g openai:http://h/v1 timeout=0", ["timeout="]),
    ("generator g weights.gguf chat=maybe", ["chat="]),
])
def test_a_bad_served_line_says_what_is_wrong_with_its_place(tmp_path, line, words):
    with pytest.raises(UsageError) as caught:
        models.read_manifest(manifest(tmp_path, "# generators\n" + line + "\n"))
    assert "models.txt:2" in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_the_configured_generator_is_the_served_one(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_TEST_KEY", "sk-test")
    path = manifest(tmp_path, SERVED.format(url="https://gpu.example:8443/v1"))
    generator = load_configured_generator(Settings(manifest_path=path, generator="mine", models_dir=tmp_path))
    assert isinstance(generator, OpenAIServerGenerator)
    assert (generator.name, generator.url, generator.model, generator.api_key, generator.timeout, generator.chat) == \
        ("mine", "https://gpu.example:8443/v1", "gemma3-270m", "sk-test", 7.0, True)
    monkeypatch.delenv("RAG_TEST_KEY")
    assert load_configured_generator(Settings(manifest_path=path, generator="mine", models_dir=tmp_path)).api_key is None


def test_rag_generator_served_selects_the_projects_served_entry():
    settings = Settings.from_env({"RAG_GENERATOR": "served", "RAG_MANIFEST_PATH": str(ROOT / "models.txt")})
    generator = load_configured_generator(settings)
    assert isinstance(generator, OpenAIServerGenerator) and generator.url == "http://127.0.0.1:8080/v1"
    assert generator.api_key_env == "RAG_SERVED_API_KEY"


def test_an_answer_through_an_unreachable_server_is_a_model_error(tmp_path):
    path = manifest(tmp_path, f"generator mine openai:http://127.0.0.1:{free_port()}/v1\n")
    engine = served_engine(tmp_path, {"brewery.txt": f"The brewery\n\n{SENTENCE}\n"}, path, "mine", refusal_threshold=0.0)
    with pytest.raises(ModelError, match="connection refused"):
        answer("When was the Old Truman Brewery founded?", engine)
    assert answer("When was the Old Truman Brewery founded?", engine, use_llm=False).citations


def test_check_server_lists_the_models(server):
    server.script = lambda r: Reply([json.dumps({"object": "list", "data": [{"id": "gemma3-270m"}, {"id": "other"}]}).encode()],
                                    headers={"Content-Type": "application/json"})
    entry = models.ModelEntry("generator", "mine", f"openai:{server.url}", {"model": "gemma3-270m"})
    assert check_server(entry) == f"the server at {server.url} answers; it serves: gemma3-270m, other"
    assert server.requests[0].method == "GET" and server.requests[0].path == "/v1/models"
    entry = models.ModelEntry("generator", "mine", f"openai:{server.url}", {"model": "absent"})
    assert "does not list model 'absent'" in check_server(entry)
    server.script = lambda r: Reply([b"{}"], headers={"Content-Type": "application/json"})
    with pytest.raises(ModelError, match="no model list"):
        check_server(entry)
    dead = models.ModelEntry("generator", "dead", f"openai:http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ModelError, match="connection refused"):
        check_server(dead)


def test_rag_models_lists_and_fetch_skips_a_served_generator(tmp_path):
    path = manifest(tmp_path, "generator mine openai:http://127.0.0.1:9/v1 model=big\n")
    done = rag("--models", str(path), "models", env={"RAG_MODELS_DIR": str(tmp_path / "m")})
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("generator")]
    assert line.split()[1:4] == ["mine", "served", "openai:http://127.0.0.1:9/v1"] and "model big" in line
    done = rag("--models", str(path), "models", "fetch", "--all", env={"RAG_MODELS_DIR": str(tmp_path / "m")})
    assert done.returncode == 0, done.stderr
    assert "nothing to fetch" in done.stdout and not (tmp_path / "m").exists()


# --- the local model's chat template ------------------------------------------------------------------


class FakeLlama:
    """Stands for `llama_cpp.Llama`: records which completion function was called, with what, and
    what it was given to evaluate (a span's prompt, then each chosen token with those the
    constraint forces after it, in one batch: `LlamaGenerator._copy`). Its tokens are bytes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, dict]] = []
        self.input_ids: list[int] = []
        self.n_tokens = 0
        self._ctx = types.SimpleNamespace(kv_cache_seq_rm=lambda seq, start, end: True)

    def tokenize(self, data: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(data)

    def detokenize(self, tokens: list[int], prev_tokens=None) -> bytes:
        return bytes(tokens)

    def token_eos(self) -> int:
        return 0

    def n_vocab(self) -> int:
        return 256

    def n_ctx(self) -> int:
        return 64

    def reset(self) -> None:
        self.n_tokens = 0

    def eval(self, tokens: list[int]) -> None:
        self.calls.append(("eval", bytes(tokens), {}))
        self.input_ids = self.input_ids[: self.n_tokens] + list(tokens)
        self.n_tokens = len(self.input_ids)

    def create_completion(self, prompt, **options):
        self.calls.append(("completion", prompt, options))
        return iter([{"choices": [{"text": " 1724"}]}, {"choices": [{"text": "\n"}]}])

    def create_chat_completion(self, messages, **options):
        self.calls.append(("chat", messages, options))
        return iter([{"choices": [{"delta": {"role": "assistant"}}]}, {"choices": [{"delta": {"content": "Paris"}}]},
                     {"choices": [{"delta": {"content": ".\nMore"}}]}, {"choices": [{"delta": {}}]}])


def local(chat: bool) -> tuple[LlamaGenerator, FakeLlama]:
    generator = LlamaGenerator.__new__(LlamaGenerator)  # everything but loading a GGUF
    llm = FakeLlama()
    generator._llm, generator.name, generator.constrain_with, generator.chat = llm, "fake", "scan", chat
    generator.lock, generator.last_usage, generator.last_logprobs = threading.Lock(), {}, None
    generator._kept = KeptPrefixes()
    generator._last_logits = lambda: np.zeros(256, dtype=np.float32)  # the constraint chooses alone

    def evaluate(tokens: list[int]) -> list[np.ndarray]:  # a batch, with the logits of each token
        llm.calls.append(("batch", bytes(tokens), {}))
        llm.input_ids = llm.input_ids[: llm.n_tokens] + list(tokens)
        llm.n_tokens = len(llm.input_ids)
        return [np.zeros(256, dtype=np.float32) for _ in tokens]

    generator._evaluate = evaluate
    return generator, llm


def test_the_local_model_uses_its_chat_template_only_when_asked_and_never_for_spans():
    default, llm = local(chat=False)
    assert "".join(default.stream("Capital?", 8, 0.0)) == "1724"
    assert "".join(default.stream("Answer:", 8, 0.0, constraint=OneOutput())) == "1724"
    # the span's prompt, then the first token written with the four it leaves no choice about, in
    # one batch; the line break that ends it is never read
    assert llm.calls[1:] == [("eval", b"Answer:", {}), ("batch", b" 1724", {})]
    assert default.last_logprobs == pytest.approx([-np.log(256)] * 6)  # each token's, the line break's too
    assert "".join(default.stream("Answer: again", 8, 0.0, constraint=OneOutput())) == "1724"
    assert llm.calls[3] == ("eval", b"again", {})  # what the cache holds ("Answer: ") is not read again
    assert "".join(default.stream("Answer: again", 8, 0.0, constraint=OneOutput())) == "1724"
    assert llm.calls[5] == ("eval", b"n", {})  # but the last token, for its logits
    assert [kind for kind, _, _ in llm.calls] == ["completion"] + ["eval", "batch"] * 3
    assert "".join(default.stream("Answer:", 3, 0.0, constraint=OneOutput())) == "17"  # " 17": no more tokens than asked
    with pytest.raises(ValueError, match="exceed context window"):  # as llama-cpp-python's completion
        "".join(default.stream("A" * 64, 8, 0.0, constraint=OneOutput()))

    chatting, llm = local(chat=True)
    assert "".join(chatting.stream("Capital?", 8, 0.2)) == "Paris."
    kind, messages, options = llm.calls[0]
    assert kind == "chat" and messages == [{"role": "user", "content": "Capital?"}]
    assert options["stop"] == STOP and options["temperature"] == 0.2 and options["stream"] is True
    assert chatting.last_usage["completion_tokens"] == 2
    assert "".join(chatting.stream("Answer:", 8, 0.0, constraint=OneOutput())) == "1724"
    assert [kind for kind, _, _ in llm.calls] == ["chat", "eval", "batch"]  # a raw prompt, no chat template


def test_a_kept_prompt_is_put_back_and_one_llama_cpp_refuses_leaves_the_whole_prompt_to_read(monkeypatch):
    from rag import prefix_cache

    generator, llm = local(chat=False)
    generator._kept = KeptPrefixes(min_tokens=2)
    refuse = []

    def restore(llm_, key, state):  # as llama.cpp does: the saved tokens back in the cache, or nothing
        if refuse:
            llm_.reset()
            return False
        llm_.input_ids, llm_.n_tokens = list(key), len(key)
        return True

    monkeypatch.setattr(prefix_cache, "save", lambda llm_: b"state")
    monkeypatch.setattr(prefix_cache, "restore", restore)
    for prompt in ("Answer: two", "Bxx", "Answer: zzz"):
        assert "".join(generator.stream(prompt, 8, 0.0, constraint=OneOutput())) == "1724"
    # "Bxx" replaced "Answer: two 1724" (kept), "Answer: zzz" got it back and read only "zzz"
    assert [c[1] for c in llm.calls if c[0] == "eval"] == [b"Answer: two", b"Bxx", b"zzz"]
    refuse.append(True)
    assert "".join(generator.stream("Answer: two", 8, 0.0, constraint=OneOutput())) == "1724"
    assert llm.calls[-2] == ("eval", b"Answer: two", {})  # the cache was emptied: nothing of it is reused


# --- integration: llama-cpp-python's own server -------------------------------------------------------


def bundled(name: str) -> Path:
    settings = Settings(manifest_path=ROOT / "models.txt")
    entry = models.find_entry(models.read_manifest(settings.manifest_path), name, "generator")
    return models.resolve(entry, settings.manifest_path.parent, settings.models_dir)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """`python -m llama_cpp.server` on the bundled Gemma GGUF, on a free loopback port; always killed."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled("gemma3-270m")),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 2)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        probe = OpenAIServerGenerator("probe", url, timeout=2)
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}: "
                            f"{log_path.read_text(errors='replace')[-2000:]}")
            try:
                probe.models()
                break
            except ModelError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer in 180 s: {log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


@pytest.mark.integration
def test_the_served_model_gives_the_local_models_span_and_confidence(llama_server):
    served = OpenAIServerGenerator("served", llama_server, model="gemma3-270m")
    chosen = [evidence(1, "The brewery later moved to Brick Lane in London."), evidence(2, SENTENCE)]
    question = analyse("When was the Old Truman Brewery founded?", "en")
    span = pick_span(served, question, chosen, sentences=2)
    assert span is not None and span.text == span.evidence.text[span.start:span.end] == "1724"
    assert span.confidence is not None and 0 < span.confidence <= 1
    assert len(served.last_logprobs) == len(span.logprobs) >= 2
    # llama.cpp's grammar on the server and the local scan write the same tokens here, and the
    # server's log-probabilities are over the whole vocabulary, as the scan's: same confidence
    local_generator = load_configured_generator(Settings(manifest_path=ROOT / "models.txt"))
    again = pick_span(local_generator, question, chosen, sentences=2)
    assert again is not None and (again.text, again.evidence.n) == (span.text, span.evidence.n)
    assert span.confidence == pytest.approx(again.confidence, abs=0.02)


@pytest.mark.integration
def test_an_answer_through_the_served_model_cites_the_exact_text(llama_server, tmp_path):
    path = manifest(tmp_path, f"generator served-here openai:{llama_server} model=gemma3-270m\n")
    files = {"acme.txt": "Acme annual report\n\nAcme makes anvils and rockets. The current chief executive officer of "
                         "Acme is Sofia Brandt, who joined in 2019.\nAcme employs about 2,400 people in three countries.\n"}
    engine = served_engine(tmp_path, files, path, "served-here", refusal_threshold=0.3)
    assert isinstance(engine.generator, OpenAIServerGenerator)
    result = answer("How many people does Acme employ?", engine)
    assert not result.refused and result.span is not None and result.span.confidence is not None
    text = files[result.span.evidence.source]
    assert text[result.span.source_start:result.span.source_end] == result.span.text
    assert "2,400" in result.span.text
    for citation in result.citations:
        assert files[citation.source][citation.start:citation.end] == citation.quote
    generating = dataclasses.replace(engine, settings=dataclasses.replace(engine.settings, answer_mode="generate"))
    tokens = []
    result = answer("How many people does Acme employ?", generating, on_token=tokens.append)
    assert tokens and result.draft and result.citations and not result.refused


@pytest.mark.integration
def test_the_local_instruct_model_answers_through_its_chat_template():
    generator = LlamaGenerator("smollm2-135m", bundled("smollm2-135m"), chat=True)
    text = "".join(generator.stream("What is the capital of France? Answer in one word.", 16, 0.0))
    assert "Paris" in text
