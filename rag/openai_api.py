"""The OpenAI-compatible API `rag serve` answers beside the page: `POST /v1/chat/completions` (JSON,
or `chat.completion.chunk` server-sent events ending with `data: [DONE]`) and `GET /v1/models` (`rag`
is the page's default collection, `rag:NAME` a collection).

The last message is the question; earlier user messages complete a follow-up, as on the page. The
content is the checked answer with its [n] markers and a "Sources:" list; the extension fields
`citations` (as `rag ask --json` gives them) and `rag` (refusal, mode, score, timings) carry the rest;
the model's unchecked draft is never sent. Requests pass the page's checks, a body is bounded before
it is parsed, and every failure is OpenAI's error JSON. Behind the page's login a request needs
`Authorization: Bearer <password>` (a client's api_key) or HTTP Basic, checked by its `LoginThrottle`;
cross-origin browser requests are refused. The API and the page's model queue share one lock."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import inspect
import json
import logging
import math
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rag.collections import DEFAULT
from rag.errors import RagError, UsageError
from rag.followup import contextualize
from rag.pipeline import Answer, answer, validate_question
from rag.render import answer_json, safe_terminal, where
from rag.settings import RETRIEVAL_MODES
from rag.web import K_RANGE, _brief, bound_history, check_flag, check_question, check_request

log = logging.getLogger("rag")
MODEL = "rag"  # the default collection's model id; "rag:NAME" names a collection
MAX_BODY = 1 << 20  # bytes of a request body, read before anything is parsed
MAX_WAITING = 16  # API requests waiting for the model; more are told the server is busy (503)
KEEP_ALIVE_S = 10.0  # while a streamed request waits for the model, an SSE comment this often
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class ApiError(Exception):
    """A request the API refuses: an HTTP status and OpenAI's error JSON."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 kind: str = "invalid_request_error", headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param, self.kind, self.headers = status, code, param, kind, headers or {}

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}

    def response(self):
        return _json(self.body(), self.status, self.headers)


def from_rag_error(exc: Exception) -> ApiError:
    """A library error as the client sees it: a usage error is the request's fault (400), any other
    RagError says what to do on the server (500), anything else is named, never traced."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UsageError):
        return ApiError(400, str(exc))
    if isinstance(exc, RagError):
        return ApiError(500, str(exc), kind="server_error")
    log.error("the OpenAI-compatible API failed", exc_info=exc)
    return ApiError(500, f"internal error ({type(exc).__name__})", kind="server_error")


# ---------------------------------------------------------------- one answer at a time

_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(engines) -> threading.Lock:
    """The lock every answer of this `Engines` runs under (its collections share one generator:
    llama.cpp runs one prompt at a time, and a span's confidence is read off the generator after it)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(engines, threading.Lock())


def share_model_lock(demo, lock: threading.Lock) -> int:
    """Run the page's events of its model queue (concurrency_id "model": /chat, /ask) under `lock`
    too, so the page and the API never answer at once; returns how many events were wrapped."""
    wrapped = 0
    for block_fn in demo.fns.values():
        fn = block_fn.fn
        if block_fn.concurrency_id == "model" and fn is not None and not getattr(fn, "_rag_locked", False):
            block_fn.fn = _locked(fn, lock)
            wrapped += 1
    return wrapped


def _locked(fn, lock: threading.Lock):
    if inspect.isgeneratorfunction(fn):  # the chat streams: the lock is held until its last update
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with lock:
                yield from fn(*args, **kwargs)
    else:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with lock:
                return fn(*args, **kwargs)
    run._rag_locked = True
    return run


# ---------------------------------------------------------------- requests

@dataclass
class ChatRequest:
    collection: str
    question: str  # as answered: a follow-up completed with the previous question's names
    stream: bool = False
    include_usage: bool = False
    options: dict = field(default_factory=dict)  # answer()'s k, mode, use_llm, temperature
    prompt_chars: int = 0


def resolve_model(model: object, names: list[str], default: str) -> str:
    """The collection a model id names: "rag" (or none) the default, "rag:NAME" or "NAME" a built one.

    >>> resolve_model("rag:handbook", ["default", "handbook"], "default"), resolve_model(None, ["default"], "default")
    ('handbook', 'default')
    """
    if model is not None and not isinstance(model, str):
        raise ApiError(400, f"model must be a string such as {MODEL!r}, not {type(model).__name__}", param="model")
    name = default if model in (None, "", MODEL) else model.removeprefix(MODEL + ":")
    if name not in names:
        raise ApiError(404, f"the model {_brief(model)} does not exist; GET /v1/models lists them",
                       code="model_not_found", param="model")
    return name


def message_text(content: object, where_: str) -> str:
    """A message's text: a string, or a list of text parts (any other part is refused)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise ApiError(400, f"{where_} must be text or a list of text parts, not {type(content).__name__}",
                       param=where_)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            shown = _brief(kind) if kind is not None else type(part).__name__
            raise ApiError(400, f"{where_}[{j}]: only text parts are read, not {shown}", param=where_)
        texts.append(part["text"])
    return "\n".join(texts)


def parse_chat(body: bytes, settings, names: list[str], default: str) -> ChatRequest:
    """A chat completion request, checked as the page checks its own (ApiError else)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
        raise ApiError(400, "the body must be a JSON object (a chat completion request)") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the body must be a JSON object, not {type(data).__name__}")
    collection = resolve_model(data.get("model"), names, default)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list of {role, content} objects", param="messages")
    texts = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(400, f"messages[{i}] must be an object whose role is one of {', '.join(ROLES)}",
                           param=f"messages[{i}]")
        texts.append((role, message_text(message.get("content"), f"messages[{i}].content")))
    if texts[-1][0] != "user":
        raise ApiError(400, f"the last message must be the user's question (role user), not {texts[-1][0]}",
                       param="messages")
    request = ChatRequest(collection, "", prompt_chars=sum(len(t) for _, t in texts))
    try:
        question = validate_question(check_question(texts[-1][1], settings), settings)
        history = bound_history([{"role": r, "content": t} for r, t in texts[:-1]])
        previous = [m["content"] for m in history if m["role"] == "user"]
        request.question = contextualize(question, previous, settings.max_question_chars)
        if data.get("k") is not None:
            request.options["k"] = check_request(data["k"], RETRIEVAL_MODES[0])
        if data.get("retrieval") is not None:
            check_request(K_RANGE[0], data["retrieval"])
            request.options["mode"] = data["retrieval"]
        if data.get("temperature") is not None:
            check_request(K_RANGE[0], RETRIEVAL_MODES[0], data["temperature"])
            request.options["temperature"] = float(data["temperature"])
        if data.get("use_llm") is not None:
            request.options["use_llm"] = check_flag(data["use_llm"], "use_llm")
        request.stream = data.get("stream") is not None and check_flag(data["stream"], "stream")
        options = data.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise UsageError("stream_options must be an object")
        usage_flag = (options or {}).get("include_usage")
        request.include_usage = usage_flag is not None and check_flag(usage_flag, "stream_options.include_usage")
    except UsageError as exc:
        raise ApiError(400, str(exc)) from None
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise ApiError(400, f"n must be 1 (one checked answer), not {_brief(n)}", param="n")
    return request


# ---------------------------------------------------------------- answers as OpenAI sees them

def content_parts(result: Answer) -> list[str]:
    """The reply's text in pieces: the checked answer, then its "Sources:" list (none for a refusal),
    as the terminal shows them: a document's control characters are escaped (`citations` keeps them)."""
    parts = [result.text]
    if not result.refused and result.citations:
        parts.append("\n\nSources:\n" + "\n".join(
            f"[{c.n}] {where(c.source, c.paragraph, c.page, c.heading)} ({c.start}-{c.end}): "
            f"\"{' '.join(c.quote.split())}\"" for c in result.citations))
    return [safe_terminal(part, keep_newlines=True) for part in parts]


def extensions(result: Answer, collection: str) -> dict:
    """`citations` exactly as `rag ask --json` gives them, and what the assistant decided."""
    return {"citations": answer_json(result)["citations"],
            "rag": {"collection": collection, "question": result.question, "refused": result.refused,
                    "refusal_reason": result.refusal_reason or None, "mode": result.mode,
                    "score": round(result.score, 4), "language": result.language, "timings": result.timings}}


def usage(prompt_chars: int, content: str) -> dict:
    """Token counts estimated at four characters a token (the answer is not all the model's)."""
    prompt, completion = math.ceil(prompt_chars / 4), math.ceil(len(content) / 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(result: Answer, request: ChatRequest, rid: str, created: int) -> dict:
    content = "".join(content_parts(result))
    return {"id": rid, "object": "chat.completion", "created": created, "model": f"{MODEL}:{request.collection}",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": usage(request.prompt_chars, content), **extensions(result, request.collection)}


def chunk(rid: str, created: int, model: str, delta: dict, finish: str | None = None, **extra) -> dict:
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}


def _sse(data: object) -> bytes:
    return b"data: " + (data if isinstance(data, bytes) else _dumps(data)) + b"\n\n"


def _dumps(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=True).encode("ascii")  # ASCII: a lone surrogate cannot break it


def _json(data: object, status: int = 200, headers: dict | None = None):
    from starlette.responses import Response

    return Response(_dumps(data), status, headers, media_type="application/json")


# ---------------------------------------------------------------- the routes

class OpenAIRoutes:
    """ASGI middleware answering /v1/... itself and passing every other request to the page."""

    def __init__(self, app, engines, collection: str | None = None, login=None) -> None:
        self.app, self.engines, self.collection, self.login = app, engines, collection, login
        self.user = login._user.decode("utf-8", "surrogatepass") if login is not None else None
        self.lock = model_lock(engines)
        self.limiter = None  # anyio's, made in the server's event loop: one API answer at a time
        self.waiting = 0

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope.get("type") != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        try:
            response = await self.handle(scope, receive, path.rstrip("/"), scope.get("method", ""))
        except Exception as exc:  # noqa: BLE001 - every failure is an error JSON
            response = from_rag_error(exc).response()
        await response(scope, receive, send)

    async def handle(self, scope, receive, path: str, method: str):
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        if not _same_origin(headers.get("origin"), headers.get("host", "")):
            raise ApiError(403, "cross-origin browser requests are not accepted; call the API from a program",
                           code="cross_origin")
        if not await self.authorized(headers.get("authorization", "")):
            raise ApiError(401, "a valid api key is needed: Authorization: Bearer <the server's password>",
                           code="invalid_api_key", headers={"www-authenticate": 'Bearer realm="rag"'})
        names = self.engines.names()
        default = self.collection or (DEFAULT if DEFAULT in names or not names else names[0])
        if path == "/v1/chat/completions":
            _allow(method, "POST")
            return await self.chat(parse_chat(await read_body(scope, receive), self.engines.settings, names, default))
        if path == "/v1/models":
            _allow(method, "GET")
            ids = ([MODEL] if default in names else []) + [f"{MODEL}:{n}" for n in names]
            return _json({"object": "list", "data": [_model(i) for i in ids]})
        if path.startswith("/v1/models/"):
            _allow(method, "GET")
            model = path.removeprefix("/v1/models/")
            resolve_model(model, names, default)
            return _json(_model(model))
        raise ApiError(404, f"no route {method} {_brief(path)}: this server answers POST /v1/chat/completions "
                            "and GET /v1/models", code="unknown_url")

    async def authorized(self, header: str) -> bool:
        """No login: open, as the page is. Else the password as a bearer token, or HTTP Basic."""
        if self.login is None:
            return True
        scheme, _, value = header.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and value:
            user, password = self.user, value
        elif scheme == "basic" and value:
            try:
                user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, ValueError):
                return False
            if not sep:
                return False
            user = user.strip()  # as the page's login form
        else:
            return False  # no credentials: nothing to count
        return await self.login.login(user, password)

    async def chat(self, request: ChatRequest):
        import anyio
        from starlette.responses import StreamingResponse

        engine = await anyio.to_thread.run_sync(self.engines.get, request.collection)  # loaded once
        if self.waiting >= MAX_WAITING:
            raise ApiError(503, "the model is busy: too many requests are waiting; try again shortly",
                           kind="server_error", code="overloaded")
        self.waiting += 1
        task = asyncio.ensure_future(self._answer(request, engine))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures are reported below
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if request.stream:
            return StreamingResponse(self.events(task, request, rid, created), headers=_SSE_HEADERS,
                                     media_type="text/event-stream")
        try:
            result = await task
        except Exception as exc:  # noqa: BLE001
            raise from_rag_error(exc) from None
        return _json(completion(result, request, rid, created))

    async def _answer(self, request: ChatRequest, engine) -> Answer:
        import anyio

        if self.limiter is None:
            self.limiter = anyio.CapacityLimiter(1)

        def work() -> Answer:
            with self.lock:  # the page's model queue takes it too
                return answer(request.question, engine, **request.options)

        try:
            return await anyio.to_thread.run_sync(work, limiter=self.limiter)
        finally:
            self.waiting -= 1

    async def events(self, task: asyncio.Future, request: ChatRequest, rid: str, created: int):
        """The streamed reply: the role at once (comments while the model is busy), then the checked
        answer and its sources, a last chunk with finish_reason "stop" and the extensions, [DONE]."""
        model = f"{MODEL}:{request.collection}"
        try:
            yield _sse(chunk(rid, created, model, {"role": "assistant", "content": ""}))
            while not (await asyncio.wait({task}, timeout=KEEP_ALIVE_S))[0]:
                yield b": waiting for the model\n\n"
            try:
                result = task.result()
            except Exception as exc:  # noqa: BLE001
                yield _sse(from_rag_error(exc).body())
                yield _sse(b"[DONE]")
                return
            parts = content_parts(result)
            for part in parts:
                yield _sse(chunk(rid, created, model, {"content": part}))
            yield _sse(chunk(rid, created, model, {}, "stop", **extensions(result, request.collection)))
            if request.include_usage:
                yield _sse({**chunk(rid, created, model, {}), "choices": [],
                            "usage": usage(request.prompt_chars, "".join(parts))})
            yield _sse(b"[DONE]")
        finally:
            if not task.done():
                task.cancel()  # the client went away: a request still waiting for the model is dropped


def _same_origin(origin: str | None, host: str) -> bool:
    """Whether a request comes from a program (browsers send an Origin) or from this server's own pages."""
    try:
        return origin is None or urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise ApiError(405, f"use {allowed} here, not {_brief(method)}", code="method_not_allowed",
                       headers={"allow": allowed})


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "rag"}


async def read_body(scope, receive, limit: int = MAX_BODY) -> bytes:
    """The request's body, refused (413) as soon as it is known to exceed `limit` bytes."""
    too_large = ApiError(413, f"the request body exceeds {limit // 1024} KB", code="request_too_large")
    length = dict(scope.get("headers") or []).get(b"content-length", b"")
    if length.isdigit() and int(length) > limit:
        raise too_large
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client went away before sending its request")
        parts.append(message.get("body", b""))
        size += len(parts[-1])
        if size > limit:
            raise too_large
        if not message.get("more_body"):
            return b"".join(parts)


def api_middleware(demo):
    """The `Middleware` serving the API of a page made by `web.build_app` (its engines and default
    collection), behind its login where it has one; the page's model queue shares the API's lock."""
    from starlette.middleware import Middleware

    engines = demo.rag_engines
    share_model_lock(demo, model_lock(engines))
    return Middleware(OpenAIRoutes, engines=engines, collection=getattr(demo, "rag_collection", None),
                      login=getattr(demo, "rag_login", None))
