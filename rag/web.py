"""The Gradio chat page: streamed answers through the same `answer()` as the CLI, a sources panel
where each answer keeps its own cited quotes, a viewer showing a quote inside its whole document,
a collection picker with uploads and removals (only on loopback or behind a login), example
questions from the collection's own gold file, words in the corpus language, and one queue in
front of the model (llama.cpp is not thread-safe).

Everything taken from a document or a request is escaped: HTML panels get `html.escape`, chat
messages (which Gradio renders as Markdown) get every Markdown and HTML character escaped, so a
document holding `![x](http://…)` or `<img …>` shows that text and makes the browser fetch nothing.
"""

from __future__ import annotations

import html
import ipaddress
import queue
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag import store
from rag.collections import DEFAULT, Collection
from rag.engines import Engines, Upload, UploadLimits, safe_file_name
from rag.errors import IndexNotFound, RagError, UsageError
from rag.followup import contextualize
from rag.ingest import READERS
from rag.languages.ui import LANGUAGES, ui_count, ui_text
from rag.pipeline import Answer, Engine, answer
from rag.render import where
from rag.settings import RETRIEVAL_MODES

K_RANGE = (1, 15)  # the slider's range; /ask and /chat refuse anything else
TEMPERATURE_RANGE = (0.0, 1.5)
MAX_VIEW_CHARS = 200_000  # of a document sent to the viewer, around the quote
MAX_ANSWERS_KEPT = 30  # answers whose sources stay in the panel (and can open their document)
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
        chunks_by_quote = {e.start: e.chunk for e in result.evidence}
        for c in result.citations:
            chunk = chunks_by_quote.get(c.start)
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

def check_request(k: object, retrieval: object, temperature: object = None) -> int:
    """k within the slider's range, a known retrieval mode, a temperature in range; UsageError else."""
    if isinstance(k, bool) or not isinstance(k, (int, float)) or k != int(k) or not K_RANGE[0] <= k <= K_RANGE[1]:
        raise UsageError(f"k must be a whole number between {K_RANGE[0]} and {K_RANGE[1]}, not {k!r}")
    if retrieval not in RETRIEVAL_MODES:
        raise UsageError(f"retrieval must be one of {', '.join(RETRIEVAL_MODES)}, not {retrieval!r}")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not TEMPERATURE_RANGE[0] <= temperature <= TEMPERATURE_RANGE[1]):
        raise UsageError(f"temperature must be between {TEMPERATURE_RANGE[0]} and {TEMPERATURE_RANGE[1]}, "
                         f"not {temperature!r}")
    return int(k)


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

    def respond(message: str, history: list, chosen: str, k: float, retrieval: str, use_llm: bool,
                temperature: float, turns: list) -> Iterator[tuple]:
        history = list(history or [])
        turns = list(turns or [])
        i = turns[-1]["i"] + 1 if turns else 0
        name = chosen or default_name()
        message = message or ""
        history.append({"role": "user", "content": escape_markdown(message)})
        history.append({"role": "assistant", "content": ""})
        language = lang0
        try:
            check_request(k, retrieval, temperature)
            engine = engine_for(name, language)
            language = engine.index.language if engine.index.language in LANGUAGES else "en"
        except RagError as exc:
            history[-1]["content"] = ui_text(language, "error", message=escape_markdown(str(exc)))
            yield history, gr.update(), "", "", turns
            return
        query = contextualize(message, [t["question"] for t in turns])
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

        name = collection or default_name()
        try:
            k = check_request(k, retrieval)
            engine = engine_for(name, "en")
            result = answer_json(answer(question, engine, k=k, mode=retrieval, use_llm=bool(use_llm)))
        except RagError as exc:
            raise gr.Error(str(exc)) from None
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

    def switch(chosen: str, turns: list):
        return view_updates(describe(chosen or default_name()), turns)

    def on_load(chosen: str, turns: list):
        name = chosen or default_name()
        names = collection_names(name if describe(name).built else None)
        dropdown = gr.update(choices=names, value=name, visible=len(names) > 1)
        return [dropdown, *switch(name, turns)]

    def refused_upload() -> None:
        raise gr.Error(ui_text("en", "uploads_off"))  # for API clients, as every library error

    def upload(files, chosen: str, turns: list):
        if not uploads_allowed:
            refused_upload()
        name = (chosen or "").strip() or default_name()
        language = language_of_page[0]
        paths = [Path(p) for p in (files if isinstance(files, list) else [files] if files else [])]
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
            status = upload_summary(indexed.corpus, [safe_file_name(u.name) for u in accepted], rejected,
                                    len(indexed.corpus.documents), name, view.language)
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
        new_name = (new_name or "").strip()
        language = describe(chosen or default_name()).language
        try:
            engines.collection(new_name)  # the naming rule
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
        if not uploads_allowed:
            refused_upload()
        name = chosen or default_name()
        view = describe(name)
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
    with gr.Blocks(title=ui_text(lang0, "page_title")) as demo:
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

        question.submit(respond, [question, chatbot, picker, k, retrieval, use_llm, temperature, turns],
                        [chatbot, sources, timings, question, turns], api_name="chat", concurrency_id="model",
                        concurrency_limit=1)
        gr.api(ask, api_name="ask", concurrency_id="model", concurrency_limit=1)
        files.upload(upload, [files, picker, turns], [status, picker, files, *VIEW_OUTPUTS], api_name="upload",
                     concurrency_id="index", concurrency_limit=1)
        create_button.click(create, [new_name, picker, turns], [status, picker, new_name, *VIEW_OUTPUTS], **private,
                            **light)
        new_name.submit(create, [new_name, picker, turns], [status, picker, new_name, *VIEW_OUTPUTS], **private,
                        **light)
        remove_button.click(remove, [remove_pick, picker, turns], [status, *VIEW_OUTPUTS], api_name="remove",
                            concurrency_id="index", concurrency_limit=1)
        picker.input(switch, [picker, turns], VIEW_OUTPUTS, **private, **light)
        examples.click(lambda sample: (sample or [""])[0], examples, question, **private, **light)
        sources.open_document(open_document, [turns], [viewer_box, viewer], **private, **light) \
            .then(None, js=SCROLL_TO_MARK_JS, **private)
        close.click(lambda: gr.update(visible=False), None, viewer_box, **private, **light)
        chatbot.clear(clear_chat, None, [turns, sources], **private, **light)
        demo.load(on_load, [picker, turns], [picker, *VIEW_OUTPUTS], **private, **light)
    demo.rag_uploads_allowed = uploads_allowed  # read by serve(): Gradio's own upload route gets no room otherwise
    return demo


def _valid_name(engines: Engines, name: str) -> bool:
    try:
        engines.collection(name)
        return True
    except RagError:
        return False


def serve(demo, host: str = "127.0.0.1", port: int = 7860, auth=None, block: bool = True):
    """Start a page built by `build_app` (never a public share link)."""
    # Gradio accepts files on its own route before any event sees them: bound what it takes, and
    # take next to nothing where this page accepts no upload.
    max_file_size = UPLOAD_LIMITS.max_bytes if getattr(demo, "rag_uploads_allowed", True) else 4096
    demo.queue(default_concurrency_limit=1, max_size=200)
    demo.launch(server_name=host, server_port=port, share=False, auth=auth, prevent_thread_lock=not block,
                css=CSS, js=JS, show_error=False, quiet=not block, max_file_size=max_file_size)
    return demo


def launch(engines: Engines, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           block: bool = True, collection: str | None = None):
    """Start the server; uploads are allowed behind a login or on a loopback address only.
    Returns the Blocks app."""
    demo = build_app(engines, uploads_permitted(host, auth), collection)
    return serve(demo, host, port, auth, block)
