"""A generator served over HTTP by an OpenAI-compatible server: llama.cpp's `llama-server`,
llama-cpp-python's `python -m llama_cpp.server`, vLLM or Ollama.

Plain generation (`--answer-mode generate`, the warm-up) POSTs the raw prompt to
`{base_url}/completions` with `stream: true` and reads the server-sent events as they come, with
the local generator's rules: its stop words, and the answer ends at the first line break after
some text (the connection is then closed, which stops the server). With `chat=True` it goes to
`{base_url}/chat/completions` instead, the prompt as one user message, so the server applies the
model's chat template.

Under a constraint (the span task) the prompt is always a raw completion prompt, sent with the
constraint's llama.cpp grammar in the `grammar` field (another field with `grammar_field`, none
with `grammar_field=None`), temperature 0, no repeat penalty and `logprobs: 1`: the log-probability
of each token the server wrote lands in `last_logprobs`, so `rag.span.pick_span` computes the span's
confidence as with the local model. A server that ignores the grammar may write anything:
`pick_span` keeps only a span of the evidence; one that sends no log-probabilities leaves
`last_logprobs` None, so the span has no confidence and the sentence is quoted instead.

Only the standard library is used (http.client). Every failure (connection refused, timeout, an
HTTP error, a stream that is not one) is a `ModelError` naming the URL, on one line; responses are
bounded in size and time."""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping

from rag.compute import served
from rag.errors import ModelError, UsageError
from rag.generation import STOP, Constraint, line_piece
from rag.models import ModelEntry, display_url

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0  # seconds to wait for the server at any point: connecting, each read
CHECK_TIMEOUT = 5.0  # for `check_server`
MAX_LINE = 1 << 20  # bytes in one line of the event stream
MAX_RESPONSE = 16 << 20  # bytes in one response
MAX_ERROR_BODY = 64 << 10  # bytes of an error response read for its message
MAX_STREAM_SECONDS = 600.0  # one answer, however the server trickles it
MAX_MESSAGE = 200  # characters of a server's own error message repeated to the user
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class OpenAIServerGenerator:
    """The `Generator` of a model on an OpenAI-compatible server at `base_url` (its API root, e.g.
    http://127.0.0.1:8080/v1). `model` is the name the server knows the model by (llama.cpp's
    servers ignore it; vLLM and Ollama need it); `api_key` is sent as a bearer token.

    `last_logprobs` and `last_usage` are those of the last `stream` of the calling thread, so
    several threads may ask at once (a served engine batches them)."""

    def __init__(self, name: str, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, *, chat: bool = False, grammar_field: str | None = "grammar",
                 api_key_env: str | None = None):
        try:
            parts = urllib.parse.urlsplit(base_url)
            port = parts.port
        except ValueError:
            parts, port = urllib.parse.urlsplit(""), None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"generator {name!r}: {base_url!r} is not an http:// or https:// URL")
        if not (isinstance(timeout, (int, float)) and 0 < timeout <= 3600):
            raise UsageError(f"generator {name!r}: timeout must be between 0 and 3600 seconds, not {timeout!r}")
        self.name = name
        self.model = model
        self.api_key = api_key
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.chat = chat
        self.grammar_field = grammar_field or None
        self.url = display_url(base_url).rstrip("/")
        self.compute = served(None, self.url)  # where it computes is the server's business
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, port
        self._root = parts.path.rstrip("/")
        self._local = threading.local()
        if api_key and not self._https and parts.hostname not in _LOOPBACK:
            log.warning("the API key for %s goes over plain http to %s; use https://", name, parts.hostname)

    @classmethod
    def from_entry(cls, entry: ModelEntry, environ: Mapping[str, str] | None = None) -> "OpenAIServerGenerator":
        """The generator of a manifest entry `generator NAME openai:URL [model=…] [api_key_env=…]
        [timeout=…] [chat=true] [grammar_field=…]` (see rag/models.py)."""
        if entry.served_url is None:
            raise UsageError(f"generator {entry.name!r} is not served (its source is not openai:URL)")
        environ = os.environ if environ is None else environ
        variable = entry.options.get("api_key_env")
        field = entry.options.get("grammar_field", "grammar")
        return cls(entry.name, entry.served_url, entry.options.get("model"),
                   (environ.get(variable) or None) if variable else None,
                   float(entry.options.get("timeout", DEFAULT_TIMEOUT)), chat=entry.flag("chat"),
                   grammar_field=None if field.lower() in ("", "none") else field, api_key_env=variable)

    @property
    def last_logprobs(self) -> list[float] | None:
        """Of each token written under the last constraint, when the server told them."""
        return getattr(self._local, "logprobs", None)

    @property
    def last_usage(self) -> dict[str, int]:
        return getattr(self._local, "usage", {})

    def stream(self, prompt: str, max_tokens: int = 96, temperature: float = 0.0,
               constraint: Constraint | None = None) -> Iterator[str]:
        """The model's words as the server sends them, up to the end of the first line (as
        `LlamaGenerator.stream`)."""
        self._local.logprobs = None
        chat = self.chat and constraint is None
        body: dict = {"max_tokens": max_tokens, "temperature": temperature, "top_p": 0.95, "stream": True,
                      "repeat_penalty": 1.1, "stop": list(STOP)}
        if chat:
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if self.model:
            body["model"] = self.model
        if constraint is not None:
            # as LlamaGenerator: no stop words (a span may hold "Question"), no repeat penalty
            # (copying the prompt is the task), greedy
            del body["stop"]
            body.update(temperature=0.0, repeat_penalty=1.0, logprobs=1)
            if self.grammar_field:
                _put(body, self.grammar_field, constraint.gbnf())
        path = "/chat/completions" if chat else "/completions"
        where = self.url + path
        connection, response = self._request("POST", path, body)
        text, tokens, values, told = "", 0, [], True
        usage: dict[str, int] = {}
        try:
            for event in self._events(response, where):
                usage.update(_usage(event))
                piece, found = _choice(event, chat, where)
                if found is False or (found is None and piece):
                    told = False  # a token without its log-probability: none are trusted
                elif found:
                    values += found
                if piece is None:
                    continue
                if piece:
                    tokens += 1
                piece, line_ends = line_piece(piece, text)
                text += piece
                if piece:
                    yield piece
                if line_ends or tokens > 4 * max_tokens + 16:  # a server that ignores max_tokens
                    break  # closing the connection stops the server
        finally:
            connection.close()
        if constraint is not None and told and values:
            self._local.logprobs = values
        self._local.usage = {"completion_tokens": tokens} | {
            k: v for k, v in usage.items() if k == "prompt_tokens"}

    def models(self, timeout: float = CHECK_TIMEOUT) -> list[str]:
        """The names of the models the server serves (GET {base_url}/models)."""
        where = self.url + "/models"
        connection, response = self._request("GET", "/models", None, timeout)
        try:
            data = _loads(_read_limited(response, MAX_RESPONSE, where), where)
        finally:
            connection.close()
        listed = data.get("data") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise ModelError(f"the generator server at {where} answered with no model list ('data')")
        return [str(m.get("id")) for m in listed if isinstance(m, dict) and m.get("id") is not None]

    def _request(self, method: str, path: str, body: dict | None,
                 timeout: float | None = None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request; the open connection and its response, or ModelError."""
        timeout = self.timeout if timeout is None else timeout
        where = self.url + path
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=timeout)
        headers = {"Accept": "text/event-stream, application/json", "User-Agent": "rag"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            connection.request(method, self._root + path, body=data, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise self._failure(exc, where, timeout) from None
        if response.status >= 400:
            try:
                detail = _error_text(response.read(MAX_ERROR_BODY))
            except (OSError, http.client.HTTPException):
                detail = ""
            finally:
                connection.close()
            raise ModelError(self._http_error(response.status, response.reason, detail, where))
        return connection, response

    def _events(self, response: http.client.HTTPResponse, where: str) -> Iterator[dict]:
        """The JSON objects of a server-sent event stream, up to `[DONE]` or its end; a reply that
        is one JSON object (a server that does not stream) is taken whole."""
        content_type = (response.getheader("Content-Type") or "").lower()
        if "json" in content_type:
            yield _loads(_read_limited(response, MAX_RESPONSE, where), where)
            return
        if content_type and "event-stream" not in content_type:
            raise _malformed(where, f"a reply of type {_one_line(content_type)[:60]}, not an event stream")
        deadline = time.monotonic() + MAX_STREAM_SECONDS
        total, data, kind, events = 0, [], "", 0
        while True:
            try:
                raw = response.readline(MAX_LINE + 1)
            except (OSError, http.client.HTTPException) as exc:
                raise self._failure(exc, where, self.timeout, streaming=True) from None
            if len(raw) > MAX_LINE:
                raise _malformed(where, f"a line over {MAX_LINE >> 20} MiB")
            total += len(raw)
            if total > MAX_RESPONSE:
                raise ModelError(f"the generator server at {where} sent over {MAX_RESPONSE >> 20} MiB for one answer")
            if time.monotonic() > deadline:
                raise ModelError(f"the generator server at {where} was still answering after {MAX_STREAM_SECONDS:g} s")
            try:
                line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
            except UnicodeDecodeError:
                raise _malformed(where, "bytes that are not UTF-8") from None
            if raw and line:
                if line.startswith(":"):
                    continue  # a comment: the server's keep-alive ping
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name == "event":
                    kind = value
                continue  # id:, retry: and unknown fields are ignored, as the standard says
            if data:  # a blank line, or the end of the stream, ends an event
                payload, data = "\n".join(data), []
                events += 1
                if payload.strip() == "[DONE]":
                    return
                event = _loads(payload, where)
                if kind == "error" and "error" not in event:
                    event = {"error": event}
                if "error" in event:
                    raise ModelError(f"the generator server at {where} reported an error: {_message(event)}")
                yield event
            kind = ""
            if not raw:
                if not events:  # not even [DONE]: whatever answered is no event stream
                    raise _malformed(where, "a reply without any event")
                return

    def _failure(self, exc: BaseException, where: str, timeout: float, streaming: bool = False) -> ModelError:
        if isinstance(exc, TimeoutError):
            doing = "stopped answering" if streaming else "did not answer"
            return ModelError(f"the generator server at {where} {doing} within {timeout:g} s")
        if isinstance(exc, ConnectionRefusedError):
            return ModelError(f"cannot reach the generator server at {where}: connection refused (is it running?)")
        if isinstance(exc, socket.gaierror):
            return ModelError(f"cannot reach the generator server at {where}: unknown host {self._host}")
        if isinstance(exc, ssl.SSLError):
            return ModelError(f"cannot reach the generator server at {where}: TLS error ({exc.reason or exc})")
        if isinstance(exc, (ConnectionError, http.client.HTTPException)):
            return ModelError(f"the generator server at {where} broke off the connection ({type(exc).__name__})")
        return ModelError(f"cannot reach the generator server at {where}: {_one_line(exc.strerror or str(exc))}")

    def _http_error(self, status: int, reason: str, detail: str, where: str) -> str:
        message = f"the generator server at {where} answered HTTP {status} {_one_line(reason)}".rstrip()
        if detail:
            message += f": {detail}"
        if status in (401, 403):
            message += (f"; check the API key in ${self.api_key_env}" if self.api_key_env else
                        "; the server wants an API key: add api_key_env=VARIABLE to its models.txt line")
            if self.api_key_env and not self.api_key:
                message += " (it is not set)"
        elif status == 404:
            message += "; check the URL (an API root usually ends in /v1) and the model= name"
        return message


def check_server(entry: ModelEntry, timeout: float = CHECK_TIMEOUT) -> str:
    """One line saying whether the server of a served generator answers and serves its model
    (for `rag models check`); ModelError when it does not answer."""
    generator = OpenAIServerGenerator.from_entry(entry)
    names = generator.models(timeout)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    if generator.model and names and generator.model not in names:
        return (f"the server at {generator.url} answers but does not list model {generator.model!r} "
                f"(it serves: {shown}); llama.cpp's servers take any name, vLLM and Ollama do not")
    return f"the server at {generator.url} answers" + (f"; it serves: {shown}" if shown else "")


def _choice(event: dict, chat: bool, where: str) -> tuple[str | None, list[float] | None | bool]:
    """The text of an event's first choice (None when it has no choice: a usage-only event) and
    the log-probabilities of its tokens: a list, None when not given, False when unreadable."""
    choices = event.get("choices")
    if choices is None or choices == []:
        return None, None
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise _malformed(where, "'choices' that is not a list of objects")
    choice = choices[0]
    if chat:
        message = choice.get("delta") or choice.get("message") or {}
        text = message.get("content") if isinstance(message, dict) else None
    else:
        text = choice.get("text")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise _malformed(where, "a text that is not a string")
    return text, _logprob_values(choice.get("logprobs"))


def _logprob_values(logprobs: object) -> list[float] | None | bool:
    """Log-probabilities in either layout servers use: OpenAI's completions (`token_logprobs`,
    llama-cpp-python, vLLM) or its chat (`content`: [{logprob}], llama.cpp's llama-server)."""
    if logprobs is None:
        return None
    if not isinstance(logprobs, dict):
        return False
    if "token_logprobs" in logprobs:
        raw = logprobs["token_logprobs"]
    elif "content" in logprobs:
        raw = logprobs["content"]
        raw = [x.get("logprob") if isinstance(x, dict) else None for x in raw] if isinstance(raw, list) else None
    else:
        return False
    if not isinstance(raw, list):
        return False
    values = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value > 1e-6:
            return False
        values.append(min(float(value), 0.0))
    return values


def _usage(event: dict) -> dict[str, int]:
    usage = event.get("usage")
    if not isinstance(usage, dict):
        return {}
    return {k: v for k, v in usage.items() if k in ("prompt_tokens", "completion_tokens")
            and isinstance(v, int) and not isinstance(v, bool) and v >= 0}


def _put(body: dict, field: str, value: object) -> None:
    """Set `field` of `body`, a dotted path for a nested one ("structured_outputs.grammar")."""
    *parents, last = field.split(".")
    for name in parents:
        body = body.setdefault(name, {})
    body[last] = value


def _read_limited(response: http.client.HTTPResponse, limit: int, where: str) -> bytes:
    try:
        data = response.read(limit + 1)
    except TimeoutError:
        raise ModelError(f"the generator server at {where} stopped answering") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ModelError(f"the generator server at {where} broke off the connection ({type(exc).__name__})") from None
    if len(data) > limit:
        raise ModelError(f"the generator server at {where} sent over {limit >> 20} MiB for one answer")
    return data


def _loads(payload: str | bytes, where: str) -> dict:
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        shown = payload[:60].decode("utf-8", "replace") if isinstance(payload, bytes) else payload[:60]
        raise _malformed(where, f"data that is not JSON ({_one_line(shown)!r})") from None
    if not isinstance(value, dict):
        raise _malformed(where, "JSON that is not an object")
    return value


def _malformed(where: str, what: str) -> ModelError:
    return ModelError(f"the generator server at {where} sent a malformed stream: {what}; is it an "
                      "OpenAI-compatible API root (…/v1)?")


def _error_text(body: bytes) -> str:
    """The message of an error body: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or text."""
    try:
        return _message(json.loads(body))
    except (ValueError, RecursionError):
        return _one_line(body.decode("utf-8", "replace"))


def _message(value: object) -> str:
    if isinstance(value, dict):
        for key in ("error", "message", "detail", "msg"):
            if key in value:
                return _message(value[key])
    if isinstance(value, list) and value:
        return _message(value[0])
    return _one_line(value if isinstance(value, str) else json.dumps(value)[:MAX_MESSAGE])


def _one_line(text: str) -> str:
    """A server's text on one short line, without control characters.

    >>> _one_line("bad\\n  request\\x1b[31m " + "x" * 300)[:20]
    'bad request [31m xxx'
    """
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 1] + "…"
