"""The model picks the answer span: given the question and the best evidence sentences, a small
model writes a few words COPIED from one of them, and nothing else is possible. The answer is then
a quote by construction, with its exact offsets in the file.

A sentence is cut into units (words, numbers, punctuation marks). `SpanChoices` is the set of
outputs allowed: a run of at most MAX_UNITS units of one sentence, inside one clause, starting at
an allowed unit, then a line break. `LlamaGenerator` enforces it by taking, at each step, the
model's most likely token that continues an allowed output as the tokenizer spells it. The same
set written as a llama.cpp grammar (`SpanChoices.gbnf()`, one rule per unit and remaining length:

    s0u4r3 ::= "founded" (" " s0u5r2)?

and a root alternating the allowed starts) parses in under 2 ms but samples 2 times slower per
token (llama.cpp checks all 262k tokens of Gemma's vocabulary at every step).

A span must hold a word that is not the question's (restating the question answers nothing), and
when the question asks for a kind of answer (a year, a figure, a person...: `rag.answer_type`), it
starts at a unit of that kind where a sentence has one. Optionally the set also holds one refusal
word (`pick_span` then returns None when the model writes it); measured, the model almost never
writes it, for unanswerable questions no more than for answerable ones.

Measured (benchmarks/span_benchmark.py): from the best sentence alone the span holds the answer
less often than the sentence does (seeds 0.75 vs 0.93, SQuAD 0.53 vs 0.70); offered the best
three, the model takes the wrong one nearly half the time. Its `confidence` tells the good spans:
above CONFIDENT the span is as right as the sentence, in a few words."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from rag import answer_type
from rag.answer_type import AnswerType
from rag.evidence import Evidence
from rag.generation import Generator
from rag.prompting import build_span_prompt
from rag.query import Query
from rag.text import Lang, analyze, normalize

# A unit: a word or number with its inner apostrophes, hyphens, dots and commas ("l'IA", "5,5",
# "1,000", "GPT-4"), or any other single character that is not a space.
_UNIT = re.compile(r"\w+(?:[.,'’\-]\w+)*|[^\w\s]")
# Units a span may start at: a word or a number.
_START = re.compile(r"\w")
# Punctuation a span should not begin or end with ("1724." at the end of a sentence); a span starts
# at a word, so a closing bracket or quote at its end is unbalanced.
_LEADING = set(",.;:!?)]}»”—–-")
_TRAILING = set(",.;:!?([{«“—–-)]}»”")

MAX_SPAN_TOKENS = 24  # a longer output (digits are one token each) is cut to whole units
# Below this `Span.confidence` the sentence is quoted instead of the span. Chosen with `rag eval`
# (the span and its confidence are in each record) as the lowest round value at which no devset
# loses accuracy against the quoted sentence: squad2-en, seeds, realdocs and the CNIL questions
# (375 answerable). At 0.5, 4 sets kept their accuracy but squad2-en lost 1 of 240 (a span naming
# the other battle of its sentence, confidence 0.557); at 0.4, squad2-en lost 4, cnil-fr none. At 0.6,
# squad2-fr (French, written later) lost 1 of 120: "Quel gouverneur … est mort en 1752 ?" answered by
# the successor the sentence also names (confidence 0.601); 0.65 keeps the six sets' accuracy.
CONFIDENT = 0.65
# Of a longer evidence sentence, the model is shown the SHOWN_UNITS words and signs around the
# question's terms (`window`): its prompt is read at about 270 tokens/s on two cores, and a CNIL FAQ
# sentence cost 152 new tokens. With 32 (four spans' length) the four sets kept their accuracy and
# refusals, SQuAD F1 rose or held (squad2-en 0.145 -> 0.149, cnil-fr 0.078 -> 0.079; 5 answers of 519
# changed, 3 gaining a span, 2 losing one) and the time to the answer fell (cnil-fr p50 711 -> 448 ms)
SHOWN_UNITS = 32
MAX_UNITS = 8  # words and signs in a span; 90% of the devsets' answers have at most 4 words
# Units a span never holds: the edges of clauses.
_BOUNDARY = set(",;:()[]{}")


@dataclass(frozen=True)
class Span:
    text: str  # == evidence.text[start:end]
    evidence: Evidence  # the sentence it was copied from
    start: int  # offsets inside evidence.text
    end: int
    logprobs: tuple[float, ...] = ()  # of each token the model wrote, where the generator tells

    @property
    def confidence(self) -> float | None:
        """The model's mean probability per token of what it wrote (a geometric mean, counting the
        final line break): low when the constraint forced tokens it did not want. None when the
        generator does not tell."""
        if not self.logprobs:
            return None
        return math.exp(sum(self.logprobs) / len(self.logprobs))

    @property
    def source_start(self) -> int:
        """Offset of the span in the source file (as `Evidence.start`)."""
        return self.evidence.start + self.start

    @property
    def source_end(self) -> int:
        return self.evidence.start + self.end


@dataclass(frozen=True)
class Unit:
    text: str  # as shown to the model and allowed by the grammar (normalize(): straight apostrophes)
    start: int  # offsets of the unit in the sentence
    end: int
    spaced: bool  # a space separates it from the next unit


def units(sentence: str) -> list[Unit]:
    """The units of a sentence, each with its offsets.

    >>> [(u.text, u.spaced) for u in units("Founded in 1724, by Truman’s father.")]
    [('Founded', True), ('in', True), ('1724', False), (',', True), ('by', True), ("Truman's", True), ('father', False), ('.', False)]
    """
    found = list(_UNIT.finditer(sentence))
    return [Unit(normalize(m.group()), m.start(), m.end(),
                 i + 1 < len(found) and found[i + 1].start() > m.end()) for i, m in enumerate(found)]


def shown(sentence: str) -> str:
    """The sentence as the model sees it: units with single spaces, exactly what the grammar allows.

    >>> shown("Il a coûté\\n 5,5 millions ( environ ) .")
    'Il a coûté 5,5 millions ( environ ) .'
    """
    return "".join(u.text + (" " if u.spaced else "") for u in units(sentence)).strip()


def _literal(text: str) -> str:
    """A GBNF string literal: quotes and backslashes escaped, control characters as \\xHH."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


class SpanChoices:
    """What the model may write: an optional space, a run of units of one sentence beginning at
    one of its `starts` (unit indices; by default every word or number), at most `max_units`
    long, inside one clause (no comma, semicolon, colon or bracket: 9 of the 240 answerable SQuAD
    questions of the devset need one, and without them the model stops at the end of the phrase
    instead of copying to the end of the sentence), holding a word or number that is not one of
    the question's terms `asked` (`rag.text.analyze` stems: restating the question answers
    nothing), then a line break; or the `refusal` word and a line break."""

    def __init__(self, sentences: list[str], lang: Lang, starts: list[list[int]] | None = None,
                 refusal: str | None = None, max_units: int = MAX_UNITS, asked: frozenset[str] = frozenset()):
        self.units = [units(s) for s in sentences]
        self.refusal = refusal
        self.max_units = max_units
        self.new = [[_is_new(u, asked, lang) for u in found] for found in self.units]
        starts = starts if starts is not None else [
            [i for i, u in enumerate(found) if _START.match(u.text)] for found in self.units]
        # a start from which no span can hold a new word is no start
        self.starts = [[i for i in allowed if self.first_new(j, i) is not None] for j, allowed in enumerate(starts)]
        # per sentence: the text shown, as bytes; per start, its offset, how far a span from it may
        # reach and where it may end at the earliest (after its first new unit); where units end
        self._shown: list[tuple[bytes, list[tuple[int, int, int]], set[int]]] = []
        for j, (found, allowed) in enumerate(zip(self.units, self.starts)):
            text, offsets, ends = b"", [], []
            for i, unit in enumerate(found):
                offsets.append(len(text))
                text += unit.text.encode("utf-8")
                ends.append(len(text))
                if unit.spaced and i + 1 < len(found):
                    text += b" "
            self._shown.append((text, [(offsets[i], ends[i + self.reach(j, i) - 1], ends[self.first_new(j, i)])
                                       for i in allowed], set(ends)))

    def reach(self, j: int, i: int) -> int:
        """How many units a span of sentence j starting at unit i may hold."""
        found, n = self.units[j], 1
        while n < self.max_units and i + n < len(found) and \
                (found[i + n].text not in _BOUNDARY or _joins_numbers(found, i + n)):
            n += 1
        return n

    def first_new(self, j: int, i: int) -> int | None:
        """The first unit a span of sentence j starting at unit i may hold that is not a question term."""
        return next((k for k in range(i, i + self.reach(j, i)) if self.new[j][k]), None)

    def outputs(self) -> list[str]:
        """Every allowed output, as the model writes it after "Answer:" (a space first).

        >>> SpanChoices(["Founded in 1724, by Truman."], "en", asked=frozenset({"truman"})).outputs()
        [' Founded\\n', ' Founded in\\n', ' Founded in 1724\\n', ' in 1724\\n', ' 1724\\n']
        """
        out = []
        for j, allowed in enumerate(self.starts):
            found = self.units[j]
            for i in allowed:
                for end in range(self.first_new(j, i), i + self.reach(j, i)):
                    out.append(" " + "".join(u.text + (" " if u.spaced and k < end else "")
                                             for k, u in enumerate(found[i : end + 1], i)) + "\n")
        if self.refusal is not None:
            out.append(f" {self.refusal}\n")
        return list(dict.fromkeys(out))

    def allows(self, prefix: bytes) -> bool:
        r"""Whether some allowed output begins with `prefix` (the first space is optional).

        >>> c = SpanChoices(["Founded in 1724, by Truman."], "en", refusal="unknown", asked=frozenset({"truman"}))
        >>> [c.allows(x) for x in (b" 17", b"in 1724\n", b"in 172\n", b"1724,", b"1724\nx", b"unk", b"by Truman.\n")]
        [True, True, False, False, False, True, False]
        """
        body = prefix[1:] if prefix.startswith(b" ") else prefix
        closed = body.endswith(b"\n")
        if closed:
            body = body[:-1]
        if b"\n" in body:
            return False
        if self.refusal is not None:
            word = self.refusal.encode("utf-8")
            if (body == word) if closed else word.startswith(body):
                return True
        if not body:
            return not closed
        for text, spans, ends in self._shown:
            for at, limit, earliest in spans:
                end = at + len(body)
                if end <= limit and text.startswith(body, at) and (not closed or (end in ends and end >= earliest)):
                    return True
        return False

    def gbnf(self) -> str:
        """The same set as a llama.cpp grammar; rule sNuIrK is unit I of sentence N followed by at
        most K - 1 more units, sNuIrKn the same when no new unit has come yet (it cannot end there).

        >>> print(SpanChoices(['Le "test" rapide, oui.'], "fr", max_units=4, asked=frozenset({"test"})).gbnf())
        root ::= " "? (s0u2r3n | s0u4r1 | s0u6r2) "\\n"
        s0u2r3n ::= "test" s0u3r2n
        s0u3r2n ::= "\\"" " " s0u4r1
        s0u4r1 ::= "rapide"
        s0u6r2 ::= "oui" (s0u7r1)?
        s0u7r1 ::= "."
        """
        rules: dict[str, str] = {}
        choices = []

        def rule(j: int, i: int, left: int, needs_new: bool) -> str:
            needs_new = needs_new and not self.new[j][i]  # still, after this unit
            name = f"s{j}u{i}r{left}" + ("n" if needs_new else "")
            if name not in rules:
                found = self.units[j]
                rules[name] = _literal(found[i].text)
                if left > 1:
                    step = ('" " ' if found[i].spaced else "") + rule(j, i + 1, left - 1, needs_new)
                    rules[name] += f" {step}" if needs_new else f" ({step})?"
            return name

        for j, allowed in enumerate(self.starts):
            choices += [rule(j, i, self.reach(j, i), True) for i in allowed]
        if self.refusal is not None:
            choices.append(_literal(self.refusal))
        if not choices:
            raise ValueError("no sentence has a word to copy")
        return f'root ::= " "? ({" | ".join(choices)}) "\\n"\n' + "\n".join(
            f"{name} ::= {rules[name]}" for name in sorted(rules, key=_rule_order))


def _joins_numbers(found: list[Unit], k: int) -> bool:
    """Whether unit k is a comma between two numbers, as in a date ("May 18, 1756"), or a colon
    between an hour and its minutes ("4:05 pm"): no clause edge. (A thousands separator is inside
    its unit: "1,000" is one.)"""
    if not (0 < k < len(found) - 1 and found[k - 1].text.isdigit() and found[k + 1].text.isdigit()):
        return False
    if found[k].text == ":":  # touching both: "4:05", not "in 2 : 3 of them"
        return found[k - 1].end == found[k].start and found[k].end == found[k + 1].start and len(found[k + 1].text) == 2
    return found[k].text == ","


def _rule_order(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name))


def _is_new(unit: Unit, asked: frozenset[str], lang: Lang) -> bool:
    """Whether a unit says something the question does not: a content word or number that is not
    one of its terms (a stop word or a sign says nothing by itself)."""
    terms = set(analyze(unit.text, lang))
    return bool(terms) and not terms <= asked


def span_starts(sentences: list[str], wanted: AnswerType | None, question: str, lang: Lang) -> list[list[int]]:
    """Per sentence (in language `lang`), the units a span may start at: any word or number; when
    the question asks for a kind of answer (`wanted`, `Query.kind`), a unit of that kind, where
    some sentence has one.

    >>> from rag.answer_type import expected
    >>> q = "When did Truman found it?"
    >>> span_starts(["Truman founded it in 1724 in London."], expected(q, "en"), q, "en")
    [[4]]
    >>> span_starts(["Truman founded it in 1724 in London."], None, "Where was it founded by Truman?", "en")
    [[0, 1, 2, 3, 4, 5, 6]]
    """
    every = [[i for i, u in enumerate(found) if _START.match(u.text)] for found in map(units, sentences)]
    if wanted is None:
        return every
    kind = [[i for i in allowed if _of_kind(wanted, units(s), i, question, lang)] for s, allowed in zip(sentences, every)]
    return kind if any(kind) else every


def _of_kind(wanted: AnswerType, found: list[Unit], i: int, question: str, lang: Lang) -> bool:
    """Whether an answer of the wanted kind begins at unit i: the unit is a year, a figure, a name
    (`answer_type.fits` on the unit, or on the units after a figure for counts and durations)."""
    def window(n: int) -> str:
        # fits() ignores a name that opens its text (a sentence's capitalised first word)
        return "x " + " ".join(u.text for u in found[i : i + n])

    if wanted.kind in ("count", "duration") or (wanted.kind == "figure" and wanted.measure):  # "23 milles"
        return answer_type.fits(AnswerType("figure"), window(1), question, lang) and \
            answer_type.fits(wanted, window(4), question, lang)
    if wanted.kind == "person":
        return found[i].text[:1].isupper() and answer_type.fits(wanted, window(3), question, lang)
    if wanted.kind == "name":  # a name the question gives may begin the answer ("New Rochelle")
        return found[i].text[:1].isupper()
    if wanted.kind == "time":  # a time of day begins here ("4 : 05 pm" is four units)
        return answer_type.starts_with_clock(window(4)[2:], lang) and answer_type.fits(wanted, window(4), question, lang)
    if wanted.kind == "date" and found[i].text.isdigit() and len(found[i].text) <= 2 and i + 1 < len(found):
        # a day before its month: "15 February 1763"
        return answer_type.fits(wanted, window(2), question, lang)
    return answer_type.fits(wanted, window(1), question, lang)


def window(sentence: str, question: str, lang: Lang, size: int | None = None) -> str:
    """The part of a long sentence the model is shown: the `size` units (SHOWN_UNITS) that hold
    the most of the question's terms, with them nearest its middle on a tie (the answer may be
    before or after them); a shorter sentence whole.

    >>> window("A b c d e f Paris g h i j.", "Where is Paris?", "en", 4)
    'e f Paris g'
    """
    size = SHOWN_UNITS if size is None else size
    found = units(sentence)
    if len(found) <= size:
        return sentence
    asked = set(analyze(question, lang))
    hits = [bool(asked & set(analyze(u.text, lang))) for u in found]
    at = [k for k, hit in enumerate(hits) if hit]
    centre = sum(at) / len(at) if at else 0.0
    best = max(range(len(found) - size + 1),
               key=lambda i: (sum(hits[i:i + size]), -abs(i + (size - 1) / 2 - centre), -i))
    return sentence[found[best].start:found[best + size - 1].end]


def locate(output: str, evidence: list[Evidence]) -> Span | None:
    """The span of the first (best) evidence sentence that `output` copies, trimmed of the
    punctuation around it; None when no sentence holds it. An output cut short inside a unit
    (the token limit) keeps its whole units.

    >>> from rag.chunking import Chunk
    >>> c = Chunk("x", "a.txt", 0, 40, 1, "Fondée en 1724, par Truman.")
    >>> e = Evidence(1, c, 0, 27, c.text, 1.0, 1.0, 1.0)
    >>> s = locate(" 1724,", [e]); (s.text, s.start, s.end)
    ('1724', 10, 14)
    >>> locate("1724, par Tru", [e]).text
    '1724, par'
    >>> locate("1725", [e]) is None, locate("Fondée en 1999", [e]) is None
    (True, True)
    """
    output = output.strip()
    for e in evidence:
        found = units(e.text)
        runs = [(i, end) for i in range(len(found)) if (end := _follow(output, found, i)) is not None]
        if not runs:
            continue
        i, end = max(runs, key=lambda r: r[1] - r[0])  # the first of the longest
        while i < end and found[i].text in _LEADING:
            i += 1
        while end > i and found[end - 1].text in _TRAILING:
            end -= 1
        if i < end:
            a, b = found[i].start, found[end - 1].end
            return Span(e.text[a:b], e, a, b)
    return None


def _follow(output: str, found: list[Unit], i: int) -> int | None:
    """The end (exclusive unit index) of the run of units from `i` that `output` copies, when it
    copies it whole or stops inside its next unit; None when it writes anything else."""
    at, j = 0, i
    while j < len(found):
        piece = found[j].text + (" " if found[j].spaced and j + 1 < len(found) else "")
        if output.startswith(piece, at):
            at, j = at + len(piece), j + 1
        elif output.startswith(found[j].text, at) and at + len(found[j].text) == len(output):
            return j + 1  # the last unit, without the space after it
        else:
            break
    rest = output[at:]
    if j == i or (rest and not (j < len(found) and found[j].text.startswith(rest.rstrip()))):
        return None
    return j


def pick_span(generator: Generator, query: Query, evidence: list[Evidence], *, sentences: int = 1,
              refusal: bool = False, examples: int | None = None, typed: bool = True,
              max_tokens: int = MAX_SPAN_TOKENS) -> Span | None:
    """Ask the model for the words of the best `sentences` evidence sentences that answer the
    question; None when it writes the refusal word (`refusal=True`), or writes something that is
    not a span of them (a generator that ignores constraints). The prompt and its solved examples
    are in the question's language (its pack's `span` strings); the sentences are analysed in the
    language of the best one."""
    chosen = evidence[:sentences]
    if not chosen:
        return None
    lang = chosen[0].language
    texts = [window(e.text, query.text, lang) for e in chosen]
    task = query.pack.span
    word = task.refusal_word if refusal else None
    starts = span_starts(texts, query.kind if typed else None, query.text, lang)
    choices = SpanChoices(texts, lang, starts, word, asked=frozenset(analyze(query.text, lang)))
    if not any(choices.starts):
        return None
    prompt = build_span_prompt(query.text, [shown(t) for t in texts], task, refusal=refusal, examples=examples)
    output = "".join(generator.stream(prompt, max_tokens, 0.0, constraint=choices)).strip()
    if word is not None and output == word:
        return None
    span = locate(output, chosen)
    logprobs = getattr(generator, "last_logprobs", None)
    return dataclasses.replace(span, logprobs=tuple(logprobs)) if span and logprobs else span
