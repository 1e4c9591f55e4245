"""The Gradio chat page: streamed answers through the same `answer()` as the CLI, a sources panel
with each cited quote highlighted in its paragraph, per-session history, settings that apply at
once, and one queue in front of the model (llama.cpp is not thread-safe)."""

from __future__ import annotations

import html
import queue
import re
import threading
from collections.abc import Iterator

from rag.errors import RagError
from rag.followup import contextualize
from rag.pipeline import Answer, Engine, answer
from rag.settings import RETRIEVAL_MODES

EXAMPLES = [
    "Combien de GPU H800 DeepSeek a-t-il utilisés ?",
    "Combien a coûté l'entraînement de R1 ?",
    "De combien la capitalisation boursière de Nvidia a-t-elle été amputée ?",
    "Who called DeepSeek R1 the Sputnik moment of AI?",
]
CSS = """
#sources .source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 8px; }
#sources .source:target, #sources .source.active { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
#sources .source h4 { margin: 0 0 4px 0; font-size: 0.9em; }
#sources mark { background: #ffe58a; color: inherit; padding: 0 2px; }
#sources .muted, #timings { color: var(--body-text-color-subdued); font-size: 0.85em; }
"""
# Clicking [n] in the chat highlights and scrolls to source card n, in place (no new tab).
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
_MARKER = re.compile(r"\[(\d+)\]")
_DONE = object()


def message_text(message: dict) -> str:
    """Text of a chat message, whether its content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def answer_markdown(result: Answer) -> str:
    """The checked answer, each [n] a link to its card in the sources panel."""
    text = html.escape(result.text, quote=False)
    return _MARKER.sub(lambda m: f"[\\[{m.group(1)}\\]](#src-{m.group(1)})", text)


def sources_html(result: Answer, documents: dict[str, dict]) -> str:
    if result.refused:
        cards = [
            f"<div class='source'><h4>{html.escape(h.chunk.source)}, §{h.chunk.paragraph}</h4>"
            f"{html.escape(h.chunk.text)}</div>"
            for h in result.hits[:3]
        ]
        title = "Closest passages" if result.language == "en" else "Passages les plus proches"
        return f"<p class='muted'>{title}</p>" + "".join(cards)
    chunks_by_quote = {e.start: e.chunk for e in result.evidence}
    cards = []
    for c in result.citations:
        chunk = chunks_by_quote.get(c.start)
        if chunk is None:  # evidence from the wider pool: find the passage among the hits
            chunk = next((h.chunk for h in result.hits if h.chunk.source == c.source and h.chunk.start <= c.start < h.chunk.end), None)
        if chunk is not None:
            a, b = c.start - chunk.start, c.end - chunk.start
            body = (html.escape(chunk.text[:a]) + f"<mark>{html.escape(c.quote)}</mark>" + html.escape(chunk.text[b:]))
        else:
            body = f"<mark>{html.escape(c.quote)}</mark>"
        title = (documents.get(c.source) or {}).get("title")
        subtitle = f" <span class='muted'>{html.escape(title)}</span>" if title else ""
        cards.append(
            f"<div class='source' id='src-{c.n}' data-n='{c.n}'><h4>[{c.n}] {html.escape(c.source)}, §{c.paragraph}"
            f" ({c.start}–{c.end}){subtitle}</h4>{body}</div>"
        )
    return "".join(cards) or "<p class='muted'>No source.</p>"


def timings_text(result: Answer) -> str:
    t = result.timings
    return (f"retrieval {t['retrieve']:.0f} ms · first token {t['first_token']:.0f} ms · "
            f"total {t['total']:.0f} ms · {result.mode}")


def build_app(engine: Engine):
    """The page; `engine` is loaded once by the caller and shared by every session."""
    import gradio as gr

    settings = engine.settings
    documents = engine.index.documents

    def respond(message: str, history: list, k: float, retrieval: str, use_llm: bool,
                temperature: float) -> Iterator[tuple]:
        history = list(history or [])
        previous = [message_text(m) for m in history if m.get("role") == "user"]
        history.append({"role": "user", "content": message or ""})
        history.append({"role": "assistant", "content": ""})
        query = contextualize(message or "", previous)
        pieces: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["answer"] = answer(query, engine, k=int(k), mode=retrieval, use_llm=bool(use_llm),
                                           temperature=float(temperature), on_token=pieces.put)
            except RagError as exc:
                outcome["error"] = str(exc)
            except Exception as exc:  # a bug must not take the page down or show a stack trace
                outcome["error"] = f"internal error ({type(exc).__name__}: {exc})"
            finally:
                pieces.put(_DONE)

        threading.Thread(target=work, daemon=True).start()
        draft = ""
        while (piece := pieces.get()) is not _DONE:
            draft += piece
            history[-1]["content"] = html.escape(draft, quote=False)
            yield history, gr.update(), "", ""
        if "error" in outcome:
            history[-1]["content"] = f"⚠️ {outcome['error']}"
            yield history, "<p class='muted'>—</p>", "", ""
            return
        result: Answer = outcome["answer"]
        shown = answer_markdown(result)
        if query != message:
            shown += f"\n\n<small>(compris comme : « {html.escape(query)} »)</small>"
        history[-1]["content"] = shown
        yield history, sources_html(result, documents), timings_text(result), ""

    def ask(question: str, k: int = settings.k, retrieval: str = settings.retrieval, use_llm: bool = settings.use_llm) -> dict:
        """Answer one question; returns the same JSON object as `rag ask --json`."""
        from rag.render import answer_json

        try:
            return answer_json(answer(question, engine, k=int(k), mode=retrieval, use_llm=bool(use_llm)))
        except RagError as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(title="rag · questions sur vos documents") as demo:
        gr.Markdown("### Questions sur vos documents\nChaque réponse est vérifiée contre les passages cités. "
                    "Cliquez sur un [n] pour voir la citation dans son paragraphe.")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(height=460, elem_id="chat", label="Conversation", feedback_options=None,
                                     buttons=["copy"])
                question = gr.Textbox(placeholder="Posez une question… / Ask a question…", show_label=False,
                                      elem_id="question", submit_btn=True, max_length=settings.max_question_chars)
                timings = gr.Markdown(elem_id="timings")
                gr.Examples(EXAMPLES, inputs=question, label="Exemples")
            with gr.Column(scale=2):
                gr.Markdown("**Sources**")
                sources = gr.HTML("<p class='muted'>Les passages cités apparaîtront ici.</p>", elem_id="sources")
                with gr.Accordion("Réglages", open=False):
                    k = gr.Slider(1, 15, value=settings.k, step=1, label="Passages (k)")
                    retrieval = gr.Radio(list(RETRIEVAL_MODES), value=settings.retrieval, label="Recherche")
                    use_llm = gr.Checkbox(value=settings.use_llm, label="Réponse rédigée par le modèle (sinon : extraits)")
                    temperature = gr.Slider(0.0, 1.5, value=settings.temperature, step=0.1, label="Température")
        question.submit(respond, [question, chatbot, k, retrieval, use_llm, temperature],
                        [chatbot, sources, timings, question], api_name="chat", concurrency_id="model",
                        concurrency_limit=1)
        gr.api(ask, api_name="ask", concurrency_id="model", concurrency_limit=1)
    return demo


def launch(engine: Engine, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           block: bool = True):
    """Start the server (never a public share link). Returns the Blocks app."""
    demo = build_app(engine)
    demo.queue(default_concurrency_limit=1, max_size=200)
    demo.launch(server_name=host, server_port=port, share=False, auth=auth, prevent_thread_lock=not block,
                css=CSS, js=JS, show_error=False, quiet=not block)
    return demo
