"""The Gradio chat page: streamed answers through the same `answer()` as the CLI, a sources panel
where each answer keeps its own cited quotes, a viewer showing a quote inside its whole document,
a collection picker with uploads and removals (only on loopback or behind a login), example
questions from the collection's own gold file, words in the corpus language, and one queue in
front of the model (llama.cpp is not thread-safe).

Everything taken from a document or a request is escaped: HTML panels get `html.escape`, chat
messages (which Gradio renders as Markdown) get every Markdown and HTML character escaped, so a
document holding `![x](http://…)` or `<img …>` shows that text and makes the browser fetch nothing.

Every parameter of every API endpoint (/ask, /chat, /upload, /remove) goes through the checks of
"requests" below (types, sizes, names) and a malformed one is answered with a clear `gr.Error`; the
chat history a client sends is cut to its last text messages; Gradio's own upload route takes nothing
where the page takes no upload (`UploadGuard`); a login slows down repeated failures
(`LoginThrottle`); the server prints no share hint and sends Gradio no telemetry.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import ipaddress
import math
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag import store
from rag.collections import DEFAULT, Collection, check_name
from rag.engines import Engines, Upload, UploadLimits, safe_file_name
from rag.errors import IndexNotFound, RagError, UsageError
from rag.followup import contextualize
from rag.ingest import READERS
from rag.languages.ui import LANGUAGES, ui_count, ui_text
from rag.pipeline import Answer, Engine, answer, validate_question
from rag.render import where
from rag.settings import RETRIEVAL_MODES

K_RANGE = (1, 15)  # the slider's range; /ask and /chat refuse anything else
TEMPERATURE_RANGE = (0.0, 1.5)
MAX_VIEW_CHARS = 200_000  # of a document sent to the viewer, around the quote
MAX_ANSWERS_KEPT = 30  # answers whose sources stay in the panel (and can open their document)
MAX_HISTORY_MESSAGES = 2 * MAX_ANSWERS_KEPT  # of the chat history a client sends back: as many exchanges
MAX_MESSAGE_CHARS = 4000  # per message of that history (a question is at most 2000, escaped it may double)
MAX_DOCUMENT_NAME = 1000  # characters of a document name given to /remove
MAX_EXAMPLES = 4
EXAMPLE_FILES = ("gold.jsonl", "questions.jsonl")  # in the collection's documents folder
UPLOAD_LIMITS = UploadLimits()

CSS = """
#sources .answer-sources { margin-bottom: 14px; }
#sources .answer-sources > h3 { font-size: 0.85em; margin: 4px 0 6px 0; color: var(--body-text-color-subdued); }
#sources .source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 8px; }
#sources .source:target, #sources .source.active { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
#sources .source h4 { margin: 0 0 4px 0; font-size: 0.9em; }
#sources .passage { white-space: pre-wrap; }
#sources mark, #viewer mark { background: #ffe58a; color: inherit; padding: 0 2px; }
#sources button.open-doc { margin-top: 6px; font-size: 0.8em; padding: 2px 8px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); color: var(--body-text-color); }
#sources .muted, #timings, #viewer .muted, #documents .muted { color: var(--body-text-color-subdued); font-size: 0.85em; }
#viewer .viewer-body { white-space: pre-wrap; max-height: 60vh; overflow-y: auto; border: 1px solid var(--border-color-primary);
  border-radius: 8px; padding: 8px 10px; font-size: 0.9em; line-height: 1.45; }
#viewer .viewer-head { margin-bottom: 6px; }
#documents table { width: 100%; font-size: 0.85em; }
#create-collection, #remove-document { align-self: center; }
#chat .draft-label { display: inline-block; color: var(--body-text-color-subdued); font-size: 0.8em; font-style: italic;
  border: 1px dashed var(--border-color-primary); border-radius: 6px; padding: 0 6px; margin-bottom: 4px; }
#chat .draft { color: var(--body-text-color-subdued); }
"""
# Clicking [n] in an answer highlights and scrolls to that answer's card n, in place (no new tab).
JS = """
() => {
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[href^="#src-"]');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const card = document.getElementById(link.getAttribute('href').slice(1));
    document.querySelectorAll('#sources .source.active').forEach((el) => el.classList.remove('active'));
    if (card) { card.classList.add('active'); card.scrollIntoView({behavior: 'smooth', block: 'center'}); }
  }, true);
}
"""
# "Open the document" in a card asks the server (a Gradio event, behind the page's login).
SOURCES_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button.open-doc');
  if (!button) return;
  event.preventDefault();
  trigger('open_document', {answer: button.dataset.answer, card: button.dataset.card});
});
"""
SCROLL_TO_MARK_JS = """
() => {
  const seek = (tries) => {
    const mark = document.querySelector('#viewer mark');
    if (mark) mark.scrollIntoView({block: 'center'});
    else if (tries > 0) setTimeout(() => seek(tries - 1), 100);
  };
  setTimeout(() => seek(30), 150);
}
"""
_MARKER = re.compile(r"\[(\d+)\]")
_DONE = object()


# ---------------------------------------------------------------- escaping and rendering

_HTML_IN_MARKDOWN = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|~$:@=^")  # ':' and '@' too: no autolinks


def escape_markdown(text: str) -> str:
    r"""Text a Markdown renderer that also accepts HTML shows as itself: HTML characters become
    entities, every other Markdown character is backslash-escaped (no link, image, emphasis, code,
    autolink nor formula can start).

    >>> escape_markdown("![x](http://h/a.png) <b>1*2</b>")
    '\\!\\[x\\]\\(http\\://h/a\\.png\\) &lt;b&gt;1\\*2&lt;/b&gt;'
    """
    return "".join(_HTML_IN_MARKDOWN.get(ch) or ("\\" + ch if ch in _MARKDOWN_SPECIAL else ch) for ch in text)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def answer_markdown(text: str, i: int, numbers: set[int] | None = None) -> str:
    """The checked answer for the chat: escaped, each [n] a link to card n *of answer i*.

    >>> answer_markdown("Douze [1]. Voir [9].", 3, {1})
    'Douze [\\\\[1\\\\]](#src-3-1)\\\\. Voir \\\\[9\\\\]\\\\.'
    """
    parts, last = [], 0
    for match in _MARKER.finditer(text):
        n = int(match.group(1))
        if numbers is not None and n not in numbers:
            continue
        parts.append(escape_markdown(text[last:match.start()]))
        parts.append(f"[\\[{n}\\]](#src-{i}-{n})")
        last = match.end()
    parts.append(escape_markdown(text[last:]))
    return "".join(parts)


def draft_markdown(draft: str, language: str) -> str:
    """The streamed, unchecked draft: labelled as such and greyed until the checked answer replaces it."""
    return (f"<span class='draft-label'>{_esc(ui_text(language, 'draft'))}</span>\n\n"
            f"<span class='draft'>{escape_markdown(draft)}</span>")


def _open_button(i: int, key: str, language: str) -> str:
    return (f"<button type='button' class='open-doc' data-answer='{i}' data-card='{_esc(key)}'>"
            f"{_esc(ui_text(language, 'open_document'))}</button>")


def sources_section(result: Answer, i: int, question: str, documents: dict[str, dict],
                    language: str) -> tuple[str, dict[str, dict]]:
    """The cards of answer `i` (ids `src-{i}-{n}`), and what each card's viewer button opens."""
    cards, opens = [], {}
    if result.refused:
        cards.append(f"<p class='muted'>{_esc(ui_text(language, 'closest'))}</p>")
        for j, hit in enumerate(result.hits[:3], start=1):
            c, key = hit.chunk, f"p{j}"
            opens[key] = {"source": c.source, "start": c.start, "end": c.end, "quote": c.text}
            cards.append(f"<div class='source' id='src-{i}-{key}'><h4>{_esc(where(c.source, c.paragraph))}</h4>"
                         f"<div class='passage'>{_esc(c.text)}</div>{_open_button(i, key, language)}</div>")
    else:
        chunks_by_quote = {(e.source, e.start): e.chunk for e in result.evidence}
        for c in result.citations:
            chunk = chunks_by_quote.get((c.source, c.start))
            if chunk is None:  # evidence from the wider pool: find the passage among the hits
                chunk = next((h.chunk for h in result.hits
                              if h.chunk.source == c.source and h.chunk.start <= c.start < h.chunk.end), None)
            if chunk is not None and chunk.start <= c.start and c.end <= chunk.end:
                a, b = c.start - chunk.start, c.end - chunk.start
                body = _esc(chunk.text[:a]) + f"<mark>{_esc(c.quote)}</mark>" + _esc(chunk.text[b:])
            else:
                body = f"<mark>{_esc(c.quote)}</mark>"
            title = (documents.get(c.source) or {}).get("title")
            subtitle = f" <span class='muted'>{_esc(title)}</span>" if title else ""
            key = str(c.n)
            opens[key] = {"source": c.source, "start": c.start, "end": c.end, "quote": c.quote}
            cards.append(
                f"<div class='source' id='src-{i}-{c.n}' data-answer='{i}' data-n='{c.n}'>"
                f"<h4>[{c.n}] {_esc(where(c.source, c.paragraph, c.page, c.heading))} ({c.start}–{c.end}){subtitle}</h4>"
                f"<div class='passage'>{body}</div>{_open_button(i, key, language)}</div>")
        if not result.citations:
            cards.append(f"<p class='muted'>{_esc(ui_text(language, 'no_source'))}</p>")
    heading = f"{ui_text(language, 'answer_n', n=i + 1)} · {_short(question, 120)}"
    return (f"<section class='answer-sources' id='answer-{i}'><h3>{_esc(heading)}</h3>{''.join(cards)}</section>",
            opens)


def sources_panel(turns: list[dict], language: str) -> str:
    """Every kept answer's cards, newest first: clicking [1] in an old answer still finds its quote."""
    sections = [t["html"] for t in reversed(turns) if t.get("html")]
    return "".join(sections) or f"<p class='muted'>{_esc(ui_text(language, 'sources_empty'))}</p>"


def document_html(document, card: dict, language: str, collection: str) -> str:
    """The whole extracted text of a document (at most MAX_VIEW_CHARS around the quote), escaped,
    one paragraph a line, the quote marked."""
    if document is None:
        return f"<p class='muted'>{_esc(ui_text(language, 'viewer_missing', collection=collection))}</p>"
    text, quote = document.text, card.get("quote") or ""
    start, end = int(card.get("start", 0)), int(card.get("end", 0))
    notes = []
    if not (0 <= start <= end <= len(text)) or text[start:end] != quote:
        found = text.find(quote) if quote else -1
        if found >= 0:
            start, end = found, found + len(quote)
        else:
            start = end = None
            notes.append(ui_text(language, "viewer_moved"))
    if start is None:
        lo, hi = 0, min(len(text), MAX_VIEW_CHARS)
        body = _esc(text[lo:hi])
    else:
        end = min(end, start + MAX_VIEW_CHARS)
        room = MAX_VIEW_CHARS - (end - start)
        lo = max(0, start - room // 2)
        hi = min(len(text), lo + MAX_VIEW_CHARS)
        lo = max(0, hi - MAX_VIEW_CHARS) if hi == len(text) else lo
        body = _esc(text[lo:start]) + f"<mark id='viewer-mark'>{_esc(text[start:end])}</mark>" + _esc(text[end:hi])
    if lo > 0:
        body = f"<span class='muted'>{_esc(ui_text(language, 'viewer_cut', count=lo))}</span>\n" + body
    if hi < len(text):
        body += f"\n<span class='muted'>{_esc(ui_text(language, 'viewer_cut', count=len(text) - hi))}</span>"
    title = document.title or document.name
    head = (f"<div class='viewer-head'><b>{_esc(title)}</b><br><span class='muted'>{_esc(document.name)} · "
            f"{_esc(ui_text(language, 'viewer_head', format=document.format.upper(), chars=len(text)))}</span></div>")
    warning = "".join(f"<p class='muted'>{_esc(n)}</p>" for n in notes)
    return head + warning + f"<div class='viewer-body'>{body}</div>"


def status_html(text: str) -> str:
    """The one-line outcome of an upload, creation or removal: names and reasons escaped, and as
    readable as plain text for API clients."""
    return html.escape(text, quote=False)


def documents_html(entries: list[dict], language: str) -> str:
    """The collection's documents: name, format, pages (escaped: names come from uploads)."""
    if not entries:
        return f"<p class='muted'>{_esc(ui_text(language, 'no_documents'))}</p>"
    rows = "".join(
        f"<tr><td title='{_esc(e.get('title') or '')}'>{_esc(e['name'])}</td><td>{_esc(str(e.get('format') or 'txt').upper())}</td>"
        f"<td>{_esc(e.get('pages') or '—')}</td></tr>" for e in entries)
    head = "".join(f"<th>{_esc(ui_text(language, key))}</th>" for key in ("col_name", "col_format", "col_pages"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def timings_text(result: Answer, language: str) -> str:
    t = result.timings
    return ui_text(language, "timings", retrieve=f"{t['retrieve']:.0f}", first=f"{t['first_token']:.0f}",
                   total=f"{t['total']:.0f}", mode=result.mode)


def _short(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- requests, collections, uploads

_GIVEN = object()  # check_request's temperature: checked only where the endpoint takes one


def _brief(value: object) -> str:
    """A client's value for an error message: its repr, bounded (a 100 000-character value is not echoed)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_request(k: object, retrieval: object, temperature: object = _GIVEN) -> int:
    """k within the slider's range, a known retrieval mode, a temperature in range (where one is
    given, None included); UsageError else.

    >>> check_request(5.0, "hybrid", 0.3)
    5
    >>> check_request([5], "hybrid")
    Traceback (most recent call last):
    ...
    rag.errors.UsageError: k must be a whole number between 1 and 15, not [5]
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k != int(k) \
            or not K_RANGE[0] <= k <= K_RANGE[1]:
        raise UsageError(f"k must be a whole number between {K_RANGE[0]} and {K_RANGE[1]}, not {_brief(k)}")
    if not isinstance(retrieval, str) or retrieval not in RETRIEVAL_MODES:
        raise UsageError(f"retrieval must be one of {', '.join(RETRIEVAL_MODES)}, not {_brief(retrieval)}")
    if temperature is not _GIVEN and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                      or not TEMPERATURE_RANGE[0] <= temperature <= TEMPERATURE_RANGE[1]):
        raise UsageError(f"temperature must be between {TEMPERATURE_RANGE[0]} and {TEMPERATURE_RANGE[1]}, "
                         f"not {_brief(temperature)}")
    return int(k)


def check_question(question: object, settings) -> str:
    """The question as text ("" for none: `answer()` says it is empty) within the settings' length.

    >>> from rag.settings import Settings
    >>> check_question(None, Settings()), check_question("Qui ?", Settings())
    ('', 'Qui ?')
    >>> check_question(["Qui ?"], Settings())
    Traceback (most recent call last):
    ...
    rag.errors.UsageError: the question must be text, not list
    """
    if question is None:
        return ""
    if not isinstance(question, str):
        raise UsageError(f"the question must be text, not {type(question).__name__}")
    if question.strip():
        validate_question(question, settings)  # the length limit, in the CLI's words
    return question


def check_collection(name: object) -> str:
    """A collection name as the naming rule allows it, or "" for the page's default.

    >>> check_collection(None), check_collection(" handbook ")
    ('', 'handbook')
    >>> check_collection("../x")
    Traceback (most recent call last):
    ...
    rag.errors.UsageError: collection name '../x' is not valid: use 1-63 letters, digits, '-' or '_'
    """
    if name is None:
        return ""
    if not isinstance(name, str):
        raise UsageError(f"the collection must be a name, not {type(name).__name__}")
    name = name.strip()
    if len(name) > 200:
        raise UsageError(f"collection name {_brief(name)} is not valid: use 1-63 letters, digits, '-' or '_'")
    return check_name(name) if name else ""


def check_flag(value: object, what: str) -> bool:
    """A checkbox's value: True or False, nothing else (bool("no") is True).

    >>> check_flag(False, "use_llm")
    False
    >>> check_flag("no", "use_llm")
    Traceback (most recent call last):
    ...
    rag.errors.UsageError: use_llm must be true or false, not 'no'
    """
    if not isinstance(value, bool):
        raise UsageError(f"{what} must be true or false, not {_brief(value)}")
    return value


def check_document(name: object) -> str:
    """A document name given to /remove, as text ("" for none) of bounded length; whether it is one of
    the collection's documents is the caller's to check."""
    if name is None:
        return ""
    if not isinstance(name, str) or len(name) > MAX_DOCUMENT_NAME or "\x00" in name:
        raise UsageError(f"the document must be a name of at most {MAX_DOCUMENT_NAME} characters, "
                         f"not {_brief(name) if isinstance(name, str) else type(name).__name__}")
    return name


def check_files(files: object, limits: UploadLimits) -> list[Path]:
    """The files of an upload (paths Gradio stored), at most `limits.max_files`."""
    if files is None:
        return []
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise UsageError("files must be a list of uploaded files")
    if len(files) > limits.max_files:
        raise UsageError(f"{len(files)} files at once; the limit is {limits.max_files}")
    return [Path(f) for f in files]


def bound_history(history: object) -> list[dict]:
    """The chat history a client sent, as the page uses it: text messages of the user and the
    assistant only (no system, file or component message), the last MAX_HISTORY_MESSAGES, each cut
    to MAX_MESSAGE_CHARS. It only feeds the display: the questions follow-ups lean on and each
    answer's sources are kept on the server (`turns`, a gr.State a client cannot send).

    >>> bound_history([{"role": "system", "content": [{"type": "text", "text": "x"}]},
    ...                {"role": "user", "content": [{"type": "text", "text": "Qui ?"}]}])
    [{'role': 'user', 'content': 'Qui ?'}]
    >>> len(bound_history([{"role": "user", "content": "y" * 9000}])[0]["content"]) == MAX_MESSAGE_CHARS
    True
    """
    if not isinstance(history, list):
        return []
    kept = []
    for message in history[-MAX_HISTORY_MESSAGES:]:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        text = _message_text(message.get("content"))
        if text:
            cut = text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 1] + "…"
            kept.append({"role": message["role"], "content": cut})
    return kept


def _message_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [p["text"] for p in content[:20]
             if isinstance(p, dict) and p.get("type", "text") == "text" and isinstance(p.get("text"), str)]
    return "\n\n".join(parts)


# ---------------------------------------------------------------- the login and Gradio's routes

def parse_credentials(text: str, origin: str) -> tuple[str, str]:
    """`user:password` (the password may hold ':'); a UsageError naming where it came from, never
    showing the password.

    >>> parse_credentials(" ana :pa:ss", "RAG_AUTH")
    ('ana', 'pa:ss')
    """
    user, sep, password = (text or "").partition(":")
    user = user.strip()  # as Gradio's login form does with the name typed
    if not (sep and user and password):
        raise UsageError(f"{origin} must be user:password")
    return user, password


def read_auth_file(path) -> tuple[str, str]:
    """The login of `rag serve --auth-file PATH`: the file's first line, user:password."""
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8") as handle:
            line = handle.readline(4096)
    except UnicodeDecodeError:
        raise UsageError(f"--auth-file {path}: not UTF-8 text; its first line must be user:password") from None
    except OSError as exc:
        raise UsageError(f"--auth-file {path}: cannot read it ({(exc.strerror or 'error').lower()})") from None
    return parse_credentials(line.rstrip("\r\n"), f"--auth-file {path}: its first line")


class LoginThrottle:
    """The page's login: user and password compared in constant time, repeated failures slowed down.

    Gradio does not give the login function the client's address, so failures are counted per user
    name tried (every unknown name shares one count, so memory does not grow). After FREE_FAILURES,
    an attempt waits until FIRST_DELAY, doubling with each further failure up to MAX_DELAY, has passed
    since the last failure; attempts for one name are checked one at a time, so parallel guesses wait
    their turn too, and beyond MAX_WAITING waiting ones each waits MAX_DELAY before its check. A success, or
    FORGET_AFTER seconds without a failure, forgets them. A right login with no failure before it
    never waits. `login` is the coroutine given to Gradio (awaited in its login route: the server
    goes on meanwhile).
    """

    FREE_FAILURES = 3
    FIRST_DELAY = 0.25
    MAX_DELAY = 2.0
    FORGET_AFTER = 15 * 60
    MAX_WAITING = 8

    def __init__(self, user: str, password: str, clock=time.monotonic, sleep=asyncio.sleep) -> None:
        self._user, self._password = _utf8(user), _utf8(password)
        self._clock, self._sleep = clock, sleep
        self._failures: dict[str, tuple[int, float]] = {}  # key: (count, time of the last failure)
        self._locks = {"user": asyncio.Lock(), "other": asyncio.Lock()}
        self._waiting = {"user": 0, "other": 0}

    def _key(self, username: str) -> str:
        return "user" if hmac.compare_digest(_utf8(username), self._user) else "other"

    def failures(self, username: str) -> int:
        """The failures counted for this name now (0 once forgotten)."""
        count, last = self._failures.get(self._key(username), (0, 0.0))
        return count if self._clock() - last <= self.FORGET_AFTER else 0

    def _wait(self, key: str) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        if count < self.FREE_FAILURES or self._clock() - last > self.FORGET_AFTER:
            return 0.0
        delay = min(self.FIRST_DELAY * 2 ** (count - self.FREE_FAILURES), self.MAX_DELAY)
        return max(0.0, last + delay - self._clock())

    async def login(self, username: str, password: str) -> bool:
        key = self._key(username)
        if self._waiting[key] >= self.MAX_WAITING:
            # A flood of guesses for this name: this one waits the longest delay, then is checked
            # (turning it away unchecked would let a flood lock the real user out).
            await self._sleep(self.MAX_DELAY)
            return self._check(key, username, password)
        self._waiting[key] += 1
        try:
            async with self._locks[key]:
                wait = self._wait(key)
                if wait > 0:
                    await self._sleep(wait)
                return self._check(key, username, password)
        finally:
            self._waiting[key] -= 1

    def _check(self, key: str, username: str, password: str) -> bool:
        right_user = hmac.compare_digest(_utf8(username), self._user)
        right_password = hmac.compare_digest(_utf8(password), self._password)
        if right_user and right_password:
            self._failures.pop(key, None)
            return True
        self._failures[key] = (self.failures(username) + 1, self._clock())
        return False


def _utf8(text: object) -> bytes:
    return str(text or "").encode("utf-8", "surrogatepass")  # bytes: compare_digest refuses non-ASCII str


class UploadGuard:
    """ASGI middleware in front of Gradio's own upload route, which stores the files of any request
    before an event sees them: it stops, as the request streams in, one holding more than
    `limits.max_files` files or more bytes than they may hold (413, and Gradio deletes what it had
    written; Gradio's `max_file_size` bounds each file). Where the page takes no upload, `limits` is
    OFF_LIMITS: one small file, just enough for the upload event to answer "uploads are turned off"."""

    ROUTE = "/gradio_api/upload"
    OFF_LIMITS = UploadLimits(max_files=1, max_bytes=4096)

    def __init__(self, app, limits: UploadLimits = UPLOAD_LIMITS) -> None:
        self.app, self.limits = app, limits
        self.max_body = limits.max_files * (limits.max_bytes + 16 * 1024)

    async def __call__(self, scope, receive, send) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" \
                or not scope.get("path", "").rstrip("/").endswith(self.ROUTE):
            await self.app(scope, receive, send)
            return
        from starlette.formparsers import MultiPartException

        size = self.limits.max_bytes
        too_much = (f"this upload exceeds the maximum allowed size: the limit is {self.limits.max_files} file(s) of "
                    f"{f'{size // 2**20} MB' if size >= 2**20 else f'{size // 1024} KB'}")
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await _plain_response(send, 413, too_much)
            return
        found = re.search(rb'boundary="?([^";,\s]+)', headers.get(b"content-type", b""), re.IGNORECASE)
        delimiter = b"--" + found.group(1) if found else None
        seen = {"bytes": 0, "delimiters": 0, "tail": b""}
        started = False

        async def guarded_receive():
            message = await receive()
            if message.get("type") == "http.request":
                body = message.get("body", b"")
                seen["bytes"] += len(body)
                if delimiter:  # n parts have n + 1 delimiters; one may straddle two chunks
                    data = seen["tail"] + body
                    seen["delimiters"] += data.count(delimiter)
                    seen["tail"] = data[-(len(delimiter) - 1):]
                if seen["delimiters"] > self.limits.max_files + 1 or seen["bytes"] > self.max_body:
                    raise MultiPartException(too_much)  # Gradio's parser cleans up and answers 413
            return message

        async def tracked_send(message) -> None:
            nonlocal started
            started = started or message.get("type") == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracked_send)
        except MultiPartException:
            if started:
                raise
            await _plain_response(send, 413, too_much)


async def _plain_response(send, status: int, text: str) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only.

    >>> [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "192.168.1.2")]
    [True, True, True, False, False]
    """
    host = (host or "").strip().strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uploads_permitted(host: str, auth) -> bool:
    """Uploads change what the server answers from: only behind a login or on this machine."""
    return bool(auth) or is_loopback(host)


def example_questions(collection: Collection | None) -> list[str]:
    """The first answerable questions of the collection's own gold file (gold.jsonl or
    questions.jsonl in its documents folder); none when it has none (nothing is invented)."""
    from rag.evaluation import read_gold

    folder = collection.corpus_dir if collection is not None else None
    if folder is None:
        return []
    for name in EXAMPLE_FILES:
        path = Path(folder) / name
        if path.is_file():
            try:
                gold = read_gold(path)
            except (RagError, OSError):
                continue
            return [q.question for q in gold if not q.unanswerable and q.question.strip()][:MAX_EXAMPLES]
    return []


@dataclass
class View:
    """What the page shows of one collection."""

    name: str
    language: str
    documents: list[dict] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    built: bool = False


def upload_summary(corpus, uploaded: list[str], rejected: list[tuple[str, str]], total: int, collection: str,
                   language: str) -> str:
    """"read 2 document(s) (1 PDF, 1 DOCX) · skipped: x.png: unsupported format (.png) · “c”: 7 document(s)"."""
    names = set(uploaded)
    read = [d for d in corpus.documents if d.name in names]
    skipped = rejected + [(s.name, s.reason) for s in corpus.skipped if s.name in names]
    formats = Counter(str(d.format).upper() for d in read)
    parts = [ui_count(language, "read", len(read), formats=", ".join(f"{n} {f}" for f, n in formats.most_common()))
             if read else ui_text(language, "read_none")]
    if skipped:
        parts.append(ui_text(language, "skipped", items="; ".join(f"{name}: {why}" for name, why in skipped)))
    parts.append(ui_count(language, "total", total, collection=collection))
    return " · ".join(parts)


# ---------------------------------------------------------------- the page

def build_app(engines: Engines, uploads_allowed: bool, collection: str | None = None):
    """The page; `engines` (shared by every session) loads each collection once."""
    import gradio as gr

    settings = engines.settings
    index_lock = threading.Lock()  # one upload or removal at a time; questions go on meanwhile

    def collection_names(extra: str | None = None) -> list[str]:
        names = engines.names()
        if extra and extra not in names:
            names.append(extra)
        return names

    def default_name() -> str:
        names = engines.names()
        return collection or (DEFAULT if DEFAULT in names or not names else names[0])

    def describe(name: str) -> View:
        try:
            found = engines.collection(name)
        except RagError:
            return View(name, "en")
        try:
            manifest = store.load_manifest(found.index_dir)
        except RagError:
            return View(name, language_of_page[0], examples=example_questions(found))
        language = manifest.get("language") if manifest.get("language") in LANGUAGES else "en"
        return View(name, language, list(manifest.get("documents") or []), example_questions(found), True)

    def engine_for(name: str, language: str) -> Engine:
        """The engine of a built collection; a clear UsageError for a bad or empty one."""
        if not engines.collection(name).built:  # a malformed name: UsageError with the naming rule
            raise UsageError(ui_text(language, "not_built", name=name))
        try:
            return engines.get(name)
        except IndexNotFound:
            raise UsageError(ui_text(language, "not_built", name=name)) from None

    language_of_page = ["en"]  # the words for a collection that has none yet: the first one's
    first = describe(default_name())
    language_of_page[0] = lang0 = first.language

    # ------------------------------------------------------------ handlers

    def refuse(exc: RagError | str):
        """A clear error for the client (an API caller or the page's toast, which renders HTML: the
        client's values in the message are escaped)."""
        raise gr.Error(html.escape(str(exc), quote=False)) from None

    def respond(message: str, history: list, chosen: str, k: float, retrieval: str, use_llm: bool,
                temperature: float, turns: list) -> Iterator[tuple]:
        # Registered with preprocess=False: the client's raw values reach these checks.
        try:
            message = check_question(message, settings)
            name = check_collection(chosen) or default_name()
            check_request(k, retrieval, temperature)
            use_llm = check_flag(use_llm, "use_llm")
        except RagError as exc:
            refuse(exc)
        history = bound_history(history)[-(MAX_HISTORY_MESSAGES - 2):]
        turns = list(turns or [])
        i = turns[-1]["i"] + 1 if turns else 0
        history.append({"role": "user", "content": escape_markdown(message)})
        history.append({"role": "assistant", "content": ""})
        language = lang0
        try:
            engine = engine_for(name, language)
            language = engine.index.language if engine.index.language in LANGUAGES else "en"
        except RagError as exc:
            history[-1]["content"] = ui_text(language, "error", message=escape_markdown(str(exc)))
            yield history, gr.update(), "", "", turns
            return
        query = contextualize(message, [t["question"] for t in turns], settings.max_question_chars)
        pieces: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["answer"] = answer(query, engine, k=int(k), mode=retrieval, use_llm=bool(use_llm),
                                           temperature=float(temperature), on_token=pieces.put)
            except RagError as exc:
                outcome["error"] = str(exc)
            except Exception as exc:  # a bug must not take the page down or show a stack trace
                outcome["error"] = ui_text(language, "internal_error", kind=type(exc).__name__)
            finally:
                pieces.put(_DONE)

        threading.Thread(target=work, daemon=True).start()
        draft = ""
        while (piece := pieces.get()) is not _DONE:
            draft += piece
            history[-1]["content"] = draft_markdown(draft, language)
            yield history, gr.update(), "", "", turns
        if "error" in outcome:
            history[-1]["content"] = ui_text(language, "error", message=escape_markdown(outcome["error"]))
            yield history, gr.update(), "", "", turns
            return
        result: Answer = outcome["answer"]
        shown = answer_markdown(result.text, i, {c.n for c in result.citations})
        if query != message:
            shown += f"\n\n<small>({escape_markdown(ui_text(language, 'understood_as', query=query))})</small>"
        history[-1]["content"] = shown
        section, opens = sources_section(result, i, message, engine.index.documents, language)
        turns.append({"i": i, "question": message, "collection": name, "language": language,
                      "html": section, "cards": opens})
        turns = turns[-MAX_ANSWERS_KEPT:]
        yield history, sources_panel(turns, language), timings_text(result, language), "", turns

    def ask(question: str, k: int = settings.k, retrieval: str = settings.retrieval,
            use_llm: bool = settings.use_llm, collection: str = "") -> dict:
        """Answer one question in a collection ("" for the page's default); returns the same JSON
        object as `rag ask --json`, plus the collection's name."""
        from rag.render import answer_json

        try:
            question = check_question(question, settings)
            name = check_collection(collection) or default_name()
            k = check_request(k, retrieval)
            use_llm = check_flag(use_llm, "use_llm")
            engine = engine_for(name, "en")
            result = answer_json(answer(question, engine, k=k, mode=retrieval, use_llm=use_llm))
        except RagError as exc:
            refuse(exc)
        except Exception as exc:  # never a traceback to the client
            raise gr.Error(f"internal error ({type(exc).__name__})") from None
        return {**result, "collection": name}

    def view_updates(view: View, turns: list | None) -> list:
        """Updates of VIEW_OUTPUTS for a collection: its words, documents, examples."""
        lang = view.language
        return [
            documents_html(view.documents, lang),
            gr.update(choices=[d["name"] for d in view.documents], value=None, label=ui_text(lang, "remove_pick")),
            gr.Dataset(samples=[[q] for q in view.examples], visible=bool(view.examples), label=ui_text(lang, "examples")),
            f"### {ui_text(lang, 'title')}\n{ui_text(lang, 'intro')}",
            gr.update(label=ui_text(lang, "chat")),
            gr.update(placeholder=ui_text(lang, "placeholder")),
            f"**{ui_text(lang, 'sources')}**",
            gr.update(label=ui_text(lang, "settings")),
            gr.update(label=ui_text(lang, "k")),
            gr.update(label=ui_text(lang, "retrieval")),
            gr.update(label=ui_text(lang, "use_llm")),
            gr.update(label=ui_text(lang, "temperature")),
            gr.update(label=ui_text(lang, "documents")),
            gr.update(label=ui_text(lang, "upload")),
            gr.update(label=ui_text(lang, "new_collection"), placeholder=ui_text(lang, "new_collection_hint")),
            gr.update(value=ui_text(lang, "create")),
            gr.update(value=ui_text(lang, "remove")),
            gr.update(value=ui_text(lang, "close")),
            gr.update() if turns else sources_panel([], lang),
        ]

    def picked(chosen: object) -> str:
        """The picker's value for the page's own events: a malformed one is the default collection."""
        return chosen.strip() if isinstance(chosen, str) and chosen.strip() else default_name()

    def switch(chosen: str, turns: list):
        return view_updates(describe(picked(chosen)), turns)

    def on_load(chosen: str, turns: list):
        name = picked(chosen)
        names = collection_names(name if describe(name).built else None)
        dropdown = gr.update(choices=names, value=name, visible=len(names) > 1)
        return [dropdown, *switch(name, turns)]

    def refused_upload() -> None:
        raise gr.Error(ui_text("en", "uploads_off"))  # for API clients, as every library error

    def upload(files, chosen: str, turns: list):
        if not uploads_allowed:
            refused_upload()
        try:
            name = check_collection(chosen) or default_name()
            paths = check_files(files, UPLOAD_LIMITS)
        except RagError as exc:
            refuse(exc)
        language = language_of_page[0]
        try:
            target = engines.collection(name)  # a malformed name: the naming rule
            language = describe(name).language
            if not paths:
                raise UsageError(ui_text(language, "no_file"))
            accepted, rejected = [], []
            for path in paths:
                suffix = path.suffix.lower()
                if suffix in READERS:
                    accepted.append(Upload(path.name, path))
                else:
                    rejected.append((safe_file_name(path.name), ui_text(language, "unsupported", suffix=suffix or "—")))
            if not accepted:
                raise UsageError(ui_text(language, "skipped", items="; ".join(f"{n}: {why}" for n, why in rejected)))
            if target.built and target.corpus_dir is None:
                raise UsageError(ui_text(language, "no_folder", name=name))
            with index_lock:
                indexed = engines.add(name, accepted, UPLOAD_LIMITS)
            view = describe(name)
            status = upload_summary(indexed.corpus, indexed.stored, rejected,
                                    len(indexed.corpus.documents), name, view.language)
            renamed = [f"{safe_file_name(u.name)} → {kept}" for u, kept in zip(accepted, indexed.stored)
                       if safe_file_name(u.name) != kept]
            if renamed:
                status += " · " + ui_text(view.language, "renamed", items="; ".join(renamed))
        except RagError as exc:
            view = describe(name) if _valid_name(engines, name) else describe(default_name())
            status = ui_text(language, "error", message=str(exc))
        except Exception as exc:  # never a traceback
            view = describe(default_name())
            status = ui_text(language, "error", message=ui_text(language, "internal_error", kind=type(exc).__name__))
        names = collection_names(view.name if _valid_name(engines, view.name) else None)
        dropdown = gr.update(choices=names, value=view.name, visible=len(names) > 1)
        return [status_html(status), dropdown, None, *view_updates(view, turns)]

    def create(new_name: str, chosen: str, turns: list):
        if not uploads_allowed:
            refused_upload()
        new_name = new_name.strip() if isinstance(new_name, str) else ""
        language = describe(picked(chosen)).language
        try:
            check_name(new_name)  # the naming rule ("" included: no collection without a name)
        except RagError as exc:
            return [status_html(ui_text(language, "error", message=str(exc))), gr.update(), new_name,
                    *[gr.update() for _ in VIEW_OUTPUTS]]
        names = collection_names(new_name)
        view = describe(new_name)
        if not view.built:
            view.language = language
        return [status_html(ui_text(view.language, "created", name=new_name)),
                gr.update(choices=names, value=new_name, visible=True), "", *view_updates(view, turns)]

    def remove(document: str, chosen: str, turns: list):
        # Registered with preprocess=False: the client's raw values reach these checks.
        if not uploads_allowed:
            refused_upload()
        try:
            name = check_collection(chosen) or default_name()
            document = check_document(document)
        except RagError as exc:
            refuse(exc)
        view = describe(name)
        if document and document not in {d.get("name") for d in view.documents}:
            # Only an indexed document: not the gold file, nor any other file of the folder.
            refuse(f"{_brief(document)} is not a document of collection {name!r}")
        try:
            if not document:
                raise UsageError(ui_text(view.language, "remove_pick"))
            with index_lock:
                indexed = engines.remove(name, document)
            view = describe(name)
            status = ui_text(view.language, "removed", name=document,
                             total=ui_count(view.language, "total", len(indexed.corpus.documents), collection=name))
        except RagError as exc:
            status = ui_text(view.language, "error", message=str(exc))
        except Exception as exc:
            status = ui_text(view.language, "error", message=ui_text(view.language, "internal_error", kind=type(exc).__name__))
        return [status_html(status), *view_updates(view, turns)]

    def open_document(turns: list, evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        try:
            i, key = int(data.get("answer")), str(data.get("card"))
        except (TypeError, ValueError):
            return gr.update(), gr.update()
        turn = next((t for t in turns or [] if t.get("i") == i), None)
        card = (turn or {}).get("cards", {}).get(key)
        if card is None:
            return gr.update(), gr.update()
        language = turn.get("language", "en")
        try:
            document = engines.get(turn["collection"]).index.texts.get(card["source"])
        except RagError:
            document = None
        return gr.update(visible=True), document_html(document, card, language, turn["collection"])

    open_document.__annotations__["evt"] = gr.EventData  # resolved here: gradio is imported in this function

    def clear_chat():
        return [], sources_panel([], language_of_page[0])

    # ------------------------------------------------------------ layout

    names0 = collection_names(first.name if first.built else None)
    with gr.Blocks(title=ui_text(lang0, "page_title"), analytics_enabled=False) as demo:  # no telemetry
        turns = gr.State([])
        header = gr.Markdown(f"### {ui_text(lang0, 'title')}\n{ui_text(lang0, 'intro')}")
        with gr.Row():
            with gr.Column(scale=3):
                picker = gr.Dropdown(names0 or [first.name], value=first.name, label=ui_text(lang0, "collection"),
                                     visible=len(names0) > 1, allow_custom_value=True, elem_id="collection",
                                     interactive=True)
                chatbot = gr.Chatbot(height=460, elem_id="chat", label=ui_text(lang0, "chat"), feedback_options=None,
                                     buttons=["copy"], latex_delimiters=[])
                question = gr.Textbox(placeholder=ui_text(lang0, "placeholder"), show_label=False, elem_id="question",
                                      submit_btn=True, max_length=settings.max_question_chars)
                timings = gr.Markdown(elem_id="timings")
                examples = gr.Dataset(components=[question], samples=[[q] for q in first.examples],
                                      label=ui_text(lang0, "examples"), visible=bool(first.examples),
                                      elem_id="examples")
            with gr.Column(scale=2):
                with gr.Column(visible=False, elem_id="viewer-box") as viewer_box:
                    viewer = gr.HTML(elem_id="viewer")
                    close = gr.Button(ui_text(lang0, "close"), size="sm", elem_id="viewer-close")
                sources_title = gr.Markdown(f"**{ui_text(lang0, 'sources')}**")
                sources = gr.HTML(sources_panel([], lang0), elem_id="sources", js_on_load=SOURCES_JS, max_height=560)
                with gr.Accordion(ui_text(lang0, "documents"), open=False, elem_id="documents") as documents_box:
                    documents = gr.HTML(documents_html(first.documents, lang0), elem_id="document-list")
                    status = gr.HTML(elem_id="upload-status")  # always given escaped text (status_html)
                    with gr.Column(visible=uploads_allowed, elem_id="upload-controls"):
                        files = gr.File(file_count="multiple", label=ui_text(lang0, "upload"), elem_id="upload",
                                        type="filepath", height=110)
                        with gr.Row():
                            new_name = gr.Textbox(label=ui_text(lang0, "new_collection"), elem_id="new-collection",
                                                  placeholder=ui_text(lang0, "new_collection_hint"), scale=3,
                                                  max_length=63)
                            create_button = gr.Button(ui_text(lang0, "create"), size="sm", scale=1,
                                                      elem_id="create-collection")
                        with gr.Row():
                            remove_pick = gr.Dropdown([d["name"] for d in first.documents], value=None,
                                                      label=ui_text(lang0, "remove_pick"), scale=3,
                                                      elem_id="remove-pick", allow_custom_value=True)
                            remove_button = gr.Button(ui_text(lang0, "remove"), size="sm", scale=1,
                                                      variant="stop", elem_id="remove-document")
                with gr.Accordion(ui_text(lang0, "settings"), open=False) as settings_box:
                    k = gr.Slider(*K_RANGE, value=min(max(settings.k, K_RANGE[0]), K_RANGE[1]), step=1,
                                  label=ui_text(lang0, "k"))
                    retrieval = gr.Radio(list(RETRIEVAL_MODES), value=settings.retrieval, label=ui_text(lang0, "retrieval"))
                    use_llm = gr.Checkbox(value=settings.use_llm, label=ui_text(lang0, "use_llm"))
                    temperature = gr.Slider(*TEMPERATURE_RANGE, value=min(settings.temperature, TEMPERATURE_RANGE[1]),
                                            step=0.1, label=ui_text(lang0, "temperature"))

        VIEW_OUTPUTS = [documents, remove_pick, examples, header, chatbot, question, sources_title,
                        settings_box, k, retrieval, use_llm, temperature, documents_box, files, new_name,
                        create_button, remove_button, close, sources]
        private = {"api_visibility": "private"}
        light = {"concurrency_id": "page", "concurrency_limit": None}  # never waits behind the model

        raw = {"preprocess": False}  # the handler checks every value itself, with a clear error
        question.submit(respond, [question, chatbot, picker, k, retrieval, use_llm, temperature, turns],
                        [chatbot, sources, timings, question, turns], api_name="chat", concurrency_id="model",
                        concurrency_limit=1, **raw)
        gr.api(ask, api_name="ask", concurrency_id="model", concurrency_limit=1)
        files.upload(upload, [files, picker, turns], [status, picker, files, *VIEW_OUTPUTS], api_name="upload",
                     concurrency_id="index", concurrency_limit=1)
        create_button.click(create, [new_name, picker, turns], [status, picker, new_name, *VIEW_OUTPUTS], **private,
                            **light)
        new_name.submit(create, [new_name, picker, turns], [status, picker, new_name, *VIEW_OUTPUTS], **private,
                        **light)
        remove_button.click(remove, [remove_pick, picker, turns], [status, *VIEW_OUTPUTS], api_name="remove",
                            concurrency_id="index", concurrency_limit=1, **raw)
        picker.input(switch, [picker, turns], VIEW_OUTPUTS, **private, **light)
        examples.click(lambda sample: (sample or [""])[0], examples, question, **private, **light)
        sources.open_document(open_document, [turns], [viewer_box, viewer], **private, **light) \
            .then(None, js=SCROLL_TO_MARK_JS, **private)
        close.click(lambda: gr.update(visible=False), None, viewer_box, **private, **light)
        chatbot.clear(clear_chat, None, [turns, sources], **private, **light)
        demo.load(on_load, [picker, turns], [picker, *VIEW_OUTPUTS], **private, **light)
    demo.rag_uploads_allowed = uploads_allowed  # read by serve(): Gradio's own upload route gets no room otherwise
    demo.rag_engines, demo.rag_collection = engines, collection  # read by serve(): the OpenAI-compatible API
    return demo


def _valid_name(engines: Engines, name: str) -> bool:
    try:
        engines.collection(name)
        return True
    except RagError:
        return False


def serve(demo, host: str = "127.0.0.1", port: int = 7860, auth=None, block: bool = True):
    """Start a page built by `build_app`: never a public share link, and quiet (no share hint nor
    Gradio's banner: the caller says where it listens). `auth`, (user, password), is checked by a
    `LoginThrottle` (kept as `demo.rag_login`)."""
    from starlette.middleware import Middleware

    # Gradio accepts files on its own route before any event sees them: UploadGuard bounds their
    # number and bytes (next to nothing where this page accepts no upload), max_file_size each one.
    limits = UPLOAD_LIMITS if getattr(demo, "rag_uploads_allowed", True) else UploadGuard.OFF_LIMITS
    if isinstance(auth, (tuple, list)) and len(auth) == 2 and all(isinstance(a, str) for a in auth):
        demo.rag_login = LoginThrottle(*auth)
        auth = demo.rag_login.login  # a coroutine function: Gradio awaits it
    middleware = [Middleware(UploadGuard, limits=limits)]
    if getattr(demo, "rag_engines", None) is not None:  # /v1/...: the OpenAI-compatible API, behind the same login
        from rag.openai_api import api_middleware

        middleware.append(api_middleware(demo))
    demo.queue(default_concurrency_limit=1, max_size=200)
    demo.launch(server_name=host, server_port=port, share=False, auth=auth, prevent_thread_lock=not block,
                css=CSS, js=JS, show_error=False, quiet=True, max_file_size=limits.max_bytes,
                enable_monitoring=False, mcp_server=False, app_kwargs={"middleware": middleware})
    return demo


def launch(engines: Engines, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           block: bool = True, collection: str | None = None):
    """Start the server; uploads are allowed behind a login or on a loopback address only.
    Returns the Blocks app."""
    demo = build_app(engines, uploads_permitted(host, auth), collection)
    return serve(demo, host, port, auth, block)
