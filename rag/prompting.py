"""The prompts, in the question's language (its pack's strings).

`build_prompt`: a compact, numbered evidence list and the question, for a free one-sentence answer
(`answer_mode="generate"`). Documents are data: evidence is quoted inside the prompt, and whatever
the model writes is checked against it afterwards. There is no worked example: measured with
`rag eval`, a one-shot example made the base model copy it into 8% of its drafts (which the checks
then removed, but which had already streamed), and dropping it raised accuracy, F1 and citation
recall and shortened the wait.

`build_span_prompt`: the span task (rag/span.py), a page of solved text/question/answer triples.
The examples are a fixed prefix, so llama.cpp keeps them in its cache from one question to the
next; the constraint stops the model from copying them."""

from __future__ import annotations

from rag import languages
from rag.evidence import Evidence
from rag.languages import SpanTask
from rag.text import normalize

SPAN_EXAMPLES = 4  # solved examples in the span prompt (2 measured lower: benchmarks/span_benchmark.py)


def _one_line(text: str) -> str:
    return " ".join(normalize(text).split())


def build_prompt(question: str, evidence: list[Evidence], language: str) -> str:
    pack = languages.pack(language)
    lines = [f"[{e.n}] {_one_line(e.text)}" for e in evidence]
    return (pack.text("instruction") + pack.text("excerpts_label") + "\n" + "\n".join(lines)
            + f"\n{pack.text('question_label')} {_one_line(question)}\n{pack.text('answer_label')}")


def build_span_prompt(question: str, sentences: list[str], task: SpanTask, *, refusal: bool = False,
                      examples: int | None = None) -> str:
    """A page of solved text/question/answer triples (the first `examples` of `task`, a pack's
    `span`) ending with the question to answer; the sentences are shown one per line, as
    `rag.span.shown()` writes them. With `refusal`, one example question that its text does not
    answer is solved with the refusal word.

    >>> from rag.languages import pack
    >>> print(build_span_prompt("Who?", ["A b."], pack("en").span, examples=0))
    Answer each question with the few words of the text that answer it.
    <BLANKLINE>
    Text: A b.
    Question: Who?
    Answer:
    """
    solved = list(task.examples[: SPAN_EXAMPLES if examples is None else examples])
    if solved and refusal:
        solved.insert(1, task.unanswered)
    blocks = [f"{task.text_label} " + "\n".join(e.text) + f"\n{task.question_label} {e.question}\n"
              f"{task.answer_label} {e.answer}" for e in solved]
    blocks.append(f"{task.text_label} " + "\n".join(sentences)
                  + f"\n{task.question_label} {_one_line(question)}\n{task.answer_label}")
    return task.instruction + "\n\n".join(blocks)
