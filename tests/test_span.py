"""The span task: the model copies a few words of the evidence, nothing else. Fast tests with a
scripted model (and llama.cpp's grammar parser, which needs no model); one integration test with
the real generator."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rag.answer_type import expected as kind_of
from rag.chunking import Chunk
from rag.errors import UsageError
from rag.evidence import Evidence
from rag.generation import _choose, _outputs_tree, check_grammar
from rag.languages import pack
from rag.pipeline import answer
from rag.prompting import build_span_prompt
from rag.query import analyse
from rag.settings import Settings
from rag.span import (
    CONFIDENT,
    MAX_UNITS,
    SHOWN_UNITS,
    SpanChoices,
    locate,
    pick_span,
    shown,
    span_starts,
    units,
)
from rag.text import analyze
from tests.conftest import ROOT, FakeGenerator
from tests.test_integration import seeds_index  # noqa: F401 (a fixture)


def evidence(n: int, text: str, offset: int = 100, language: str = "en") -> Evidence:
    chunk = Chunk(f"c{n}", "doc.txt", offset - 10, offset + len(text) + 10, 1, "x" * 10 + text + "y" * 10, language)
    return Evidence(n, chunk, offset, offset + len(text), text, 1.0 / n, 1.0, 1.0)


class ScriptedModel:
    """Writes its reply in pieces, and records the prompt and the constraint it was given; with
    `obey`, a reply the constraint does not allow fails the test (a real generator cannot write it)."""

    name = "scripted"

    def __init__(self, reply: str, obey: bool = True):
        self.reply, self.obey = reply, obey
        self.prompts: list[str] = []
        self.constraints: list = []

    def stream(self, prompt, max_tokens, temperature, constraint=None):
        self.prompts.append(prompt)
        self.constraints.append(constraint)
        if self.obey and constraint is not None:
            assert constraint.allows((" " + self.reply + "\n").encode()), self.reply
        yield from re.findall(r"\S+\s*", " " + self.reply)


# --- what the model may write ------------------------------------------------------------------

SENTENCE = "The Old Truman Brewery, then the Black Eagle, was founded in 1724 by Joseph Truman."


def runs(sentence: str, max_units: int = MAX_UNITS, asked: frozenset[str] = frozenset()) -> set[str]:
    """Every run of units of one clause, from a word, at most max_units long, holding a word that
    is not a stop word nor one of the `asked` terms, as shown."""
    found = units(sentence)
    out = set()
    for i, first in enumerate(found):
        if not first.text[0].isalnum():
            continue
        for j in range(i, min(i + max_units, len(found))):
            if found[j].text in ",;:()":
                break
            if any(set(analyze(u.text, "en")) - asked for u in found[i : j + 1]):
                out.add("".join(u.text + (" " if u.spaced and k < j else "") for k, u in enumerate(found[i : j + 1], i)))
    return out


def test_every_run_of_a_clause_is_allowed_and_nothing_else():
    choices = SpanChoices([SENTENCE], "en")
    allowed = runs(SENTENCE)
    assert {"1724", "Joseph Truman", "founded in 1724 by Joseph Truman", "Truman."} <= allowed
    for run in allowed:
        assert choices.allows(f" {run}\n".encode()) and choices.allows(f"{run}\n".encode()), run
    for wrong in ("1725", "founded 1724", "Brewery, then", "Joseph  Truman", "the Old Truman Brewery",
                  "Old Truman Brewery, then the Black Eagle, was founded in 1724 by Joseph", "17"):
        assert not choices.allows(f" {wrong}\n".encode()), wrong
    assert choices.allows(b" Joseph Tru") and not choices.allows(b"Joseph\nTruman")


def test_a_span_says_something_the_question_does_not():
    choices = SpanChoices([SENTENCE], "en", asked=frozenset(analyze("When was the Old Truman Brewery founded?", "en")))
    assert choices.allows(b" Joseph Truman\n") and choices.allows(b" 1724\n") and choices.allows(b" was founded in")
    for restated in ("Truman", "Old Truman Brewery", "The Old Truman Brewery", "was founded", "the"):
        assert not choices.allows(f" {restated}\n".encode()), restated
    assert not choices.allows(b" Old Truman Brewery")  # the comma ends the clause before anything new
    assert not SpanChoices(["Of the and."], "en").allows(b"the\n")  # stop words alone say nothing


def test_a_span_is_at_most_max_units_long():
    choices = SpanChoices(["one two three four five"], "en", max_units=3)
    assert choices.allows(b"two three four\n") and not choices.allows(b"two three four five\n")
    assert not choices.allows(b"two three four ")


def test_the_refusal_word_is_allowed_only_when_asked_for():
    assert SpanChoices([SENTENCE], "en", refusal="unknown").allows(b" unknown\n")
    assert not SpanChoices([SENTENCE], "en").allows(b" unknown\n")


# --- the same set as a llama.cpp grammar ---------------------------------------------------------

def gbnf_language(grammar: str) -> set[str]:
    """Every string the grammar allows, for the subset of GBNF `SpanChoices.gbnf()` writes
    (literals, rule names, groups, `?`, `|`; no recursion): an independent reading of the text."""
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())
    token = re.compile(r'\s*("(?:\\.|[^"\\])*"|[A-Za-z0-9_]+|[()?|])')

    def literal(text: str) -> str:
        return re.sub(r"\\(x[0-9A-Fa-f]{2}|.)", lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "x"
                      else {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1)), text[1:-1])

    def parse(tokens: list[str], at: int) -> tuple[set[str], int]:  # alternation of sequences
        options, current = set(), {""}
        while at < len(tokens) and tokens[at] != ")":
            t = tokens[at]
            if t == "|":
                options |= current
                current, at = {""}, at + 1
                continue
            if t == "(":
                part, at = parse(tokens, at + 1)
                at += 1  # ")"
            elif t.startswith('"'):
                part, at = {literal(t)}, at + 1
            else:
                part, at = language(t), at + 1
            if at < len(tokens) and tokens[at] == "?":
                part, at = part | {""}, at + 1
            current = {a + b for a in current for b in part}
        return options | current, at

    def language(name: str) -> set[str]:
        return parse(token.findall(rules[name]), 0)[0]

    return language("root")


def test_outputs_lists_what_allows_allows():
    choices = SpanChoices([SENTENCE], "en", asked=frozenset(analyze("Who founded it?", "en")))
    assert set(choices.outputs()) == {f" {run}\n" for run in runs(SENTENCE, asked=frozenset(analyze("Who founded it?", "en")))}
    assert all(choices.allows(o.encode()) for o in choices.outputs())


def test_the_grammar_allows_exactly_what_allows_allows():
    sentences = ['He said "hi\\there" — and left, in 1724.', "L’IA coûte 5,5 M$ (environ) par an."]
    asked = frozenset({"left", "there", "ia"})
    choices = SpanChoices(sentences, "en", refusal="unknown", max_units=4, asked=asked)
    written = gbnf_language(choices.gbnf())
    expected = {f"{space}{run}\n" for s in sentences for run in runs(s, 4, asked) for space in ("", " ")}
    expected |= {"unknown\n", " unknown\n"}
    assert written == expected
    assert all(choices.allows(w.encode()) for w in written)


def test_the_grammar_of_a_sentence_with_quotes_and_backslashes_parses_in_llama_cpp():
    pytest.importorskip("llama_cpp")
    sentences = ['He said "hi\\there" — and left.', "Tab\there, «\u00a0guillemets\u00a0» and l’apostrophe."]
    check_grammar(SpanChoices(sentences, "en", refusal="inconnu").gbnf())  # raises when llama.cpp cannot parse it
    with pytest.raises(ValueError):
        check_grammar('root ::= "unclosed')


# --- from the model's words back to the file -----------------------------------------------------

def test_a_span_maps_back_to_the_exact_characters_of_the_file():
    e = evidence(1, "L’entraînement a coûté\u00a05,5 millions de dollars (selon\nDeepSeek).", offset=500)
    for written, expected in (("5,5 millions de dollars", "5,5 millions de dollars"),
                              ("L'entraînement a coûté 5,5", "L’entraînement a coûté\u00a05,5"),
                              ("DeepSeek).", "DeepSeek")):
        span = locate(written, [e])
        assert span is not None and span.text == expected == e.text[span.start:span.end]
        document = e.chunk.text
        assert document[span.source_start - e.chunk.start : span.source_end - e.chunk.start] == expected


def test_a_span_found_in_several_sentences_comes_from_the_best_one():
    first, second = evidence(1, "Truman founded it in 1724."), evidence(2, "In 1724 the brewery opened.")
    assert locate("1724", [first, second]).evidence.n == 1
    assert locate("the brewery", [first, second]).evidence.n == 2


def test_an_output_cut_by_the_token_limit_keeps_its_whole_units():
    e = evidence(1, SENTENCE)
    assert locate("Joseph Tru", [e]).text == "Joseph"
    assert locate("Joseph Trumen", [e]) is None


# --- asking the model ----------------------------------------------------------------------------

def test_pick_span_returns_the_words_and_the_sentence_they_come_from():
    chosen = [evidence(1, "The brewery stood in Brick Lane."), evidence(2, SENTENCE), evidence(3, "It closed in 1989.")]
    model = ScriptedModel("1724")
    span = pick_span(model, analyse("When was the Old Truman Brewery founded?", "en"), chosen, sentences=3)
    assert (span.text, span.evidence.n) == ("1724", 2)
    assert SENTENCE[span.start:span.end] == "1724"
    prompt = model.prompts[0]
    assert all(shown(e.text) in prompt for e in chosen) and prompt.endswith("Answer:")


def test_pick_span_shows_only_the_best_sentences():
    chosen = [evidence(1, "The brewery stood in Brick Lane."), evidence(2, SENTENCE)]
    model = ScriptedModel("Brick Lane")
    assert pick_span(model, analyse("Where was the brewery?", "en"), chosen).text == "Brick Lane"  # the best one by default
    assert SENTENCE not in model.prompts[0]
    assert not model.constraints[0].allows(b"1724\n")


def test_a_long_sentence_is_shown_around_the_question_terms_and_the_span_found_in_it_whole():
    before, after = (" ".join(f"{w}{i}" for i in range(60)) for w in ("alpha", "omega"))
    long = f"{before} and the Old Truman Brewery was founded in 1724 by Joseph Truman, {after} end."
    model = ScriptedModel("1724")
    span = pick_span(model, analyse("When was the Old Truman Brewery founded?", "en"), [evidence(1, long)])
    block = model.prompts[0].rsplit("Question:", 1)[0]
    assert "alpha0 " not in block and "omega59" not in block
    assert "alpha59 and the Old Truman Brewery was founded in 1724 by Joseph Truman, omega0" in block
    assert len(units(block.rsplit("\n", 2)[-2])) == SHOWN_UNITS + 2  # "Text", ":" and the window
    assert long[span.start:span.end] == "1724" and span.evidence.text == long


def test_pick_span_is_none_when_the_model_declines():
    model = ScriptedModel(pack("fr").span.refusal_word)
    assert pick_span(model, analyse("Qui a fondé la brasserie ?", "fr"), [evidence(1, "La brasserie date de 1724.", language="fr")],
                     refusal=True) is None
    assert "Réponse : inconnu" in model.prompts[0]  # the solved example that shows how to decline


def test_pick_span_is_none_when_a_generator_ignores_the_constraint():
    model = ScriptedModel("It was founded in 1999.", obey=False)
    assert pick_span(model, analyse("When?", "en"), [evidence(1, SENTENCE)]) is None


def test_pick_span_is_none_without_evidence():
    assert pick_span(ScriptedModel("x"), analyse("When?", "en"), []) is None


def test_a_span_starts_at_an_answer_of_the_asked_kind():
    (starts,) = span_starts([SENTENCE], kind_of("When was the Old Truman Brewery founded?", "en"), "When was the Old Truman Brewery founded?", "en")
    assert [units(SENTENCE)[i].text for i in starts] == ["1724"]
    (starts,) = span_starts([SENTENCE], kind_of("Who founded the Old Truman Brewery?", "en"), "Who founded the Old Truman Brewery?", "en")
    assert "Joseph" in [units(SENTENCE)[i].text for i in starts]
    assert "Truman" not in [units(SENTENCE)[i].text for i in starts]  # "Truman Brewery" is the question's
    # no unit of the asked kind anywhere: any word
    (starts,) = span_starts(["The brewery stood in Brick Lane."], kind_of("When was the brewery built?", "en"), "When was the brewery built?", "en")
    assert len(starts) == len(units("The brewery stood in Brick Lane.")) - 1


def test_a_date_may_start_at_its_day_and_hold_the_comma_of_its_year():
    question = "When did it end?"
    for sentence, whole in (("The war ended on 15 February 1763 with a treaty.", "15 February 1763"),
                            ("England declared war on May 18, 1756, after years of fighting.", "May 18, 1756")):
        starts = span_starts([sentence], kind_of(question, "en"), question, "en")
        assert SpanChoices([sentence], "en", starts).allows(f" {whole}\n".encode()), sentence
    # a comma between words, or after a number and before a word, still ends the clause
    assert not SpanChoices(["It had 3, then 4 ships."], "en").allows(b" 3, then\n")


def test_a_time_of_day_starts_at_its_hour_and_holds_its_colon():
    question = "What time does the bakery open?"
    sentence = "It opens at 6:30 a.m. on weekdays, in 2 : 3 of its shops."
    (starts,) = span_starts([sentence], kind_of(question, "en"), question, "en")
    assert units(sentence)[starts[0]].text == "6"
    choices = SpanChoices([sentence], "en", [starts])
    assert choices.allows(b" 6:30 a.m.\n")
    assert not SpanChoices([sentence], "en").allows(b" 2 : 3 of\n")  # a colon with spaces is a clause edge
    question = "À quelle heure la séance a-t-elle été levée ?"
    (starts,) = span_starts(["Ouverte à 16h00, la séance est levée à 16h05."], kind_of(question, "fr"), question, "fr")
    assert [units("Ouverte à 16h00, la séance est levée à 16h05.")[i].text for i in starts] == ["16h00", "16h05"]


def test_the_span_prompt_is_in_the_language_of_the_question():
    assert build_span_prompt("Quand ?", ["A."], pack("fr").span).endswith("Texte : A.\nQuestion : Quand ?\nRéponse :")
    assert "unknown" not in build_span_prompt("When?", ["A."], pack("en").span)


# --- the scan that enforces a constraint in LlamaGenerator ---------------------------------------

class FakeLlama:
    """A vocabulary of a few pieces; tokenize() spells a text with the longest pieces first, as a
    real tokenizer spells words whole."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = pieces

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        tokens = []
        while text:
            token = max((t for t, p in enumerate(self.pieces) if p and text.startswith(p)),
                        key=lambda t: len(self.pieces[t]))
            tokens.append(token)
            text = text[len(self.pieces[token]):]
        return tokens

    def token_eos(self) -> int:
        return 0


PIECES = [b"", b" ", b"1", b"7", b"2", b"4", b"\n", b" Joseph", b" Truman", b".", b" 1999", b"J", b"oseph"]


def choose(tree: dict, written: list[int], **scores: float) -> int:
    logits = np.full(len(PIECES), -5.0, dtype=np.float32)
    for piece, score in scores.items():
        logits[PIECES.index(piece.encode())] = score
    node = tree
    for token in written:
        node = node.get(token, {})
    return _choose(node, logits, end=0)[0]


def test_the_choice_is_the_most_likely_token_of_an_allowed_output_with_its_probability():
    tree = _outputs_tree(FakeLlama(PIECES), SpanChoices(["Joseph Truman 1724."], "en"))
    logits = np.array([9, 5, 0, 0, 0, 0, 0, 4, 3, 0, 8, 0, 0], dtype=np.float32)
    first, logprob = _choose(tree, logits, end=0)
    assert PIECES[first] == b" "  # end of text and " 1999" are not allowed
    assert logprob == pytest.approx(5 - np.log(np.exp(logits).sum()), abs=1e-4)
    space = PIECES.index(b" ")
    assert PIECES[choose(tree, [space], J=9.0, **{"1": 1.0})] == b"1"  # " " then digits only
    one, seven, two, four = (PIECES.index(p) for p in (b"1", b"7", b"2", b"4"))
    assert PIECES[choose(tree, [space, one, seven, two, four], **{".": 2.0, "\n": 1.0})] == b"."
    assert choose(tree, [space, one, seven, two, four, PIECES.index(b"."), PIECES.index(b"\n")], J=9.0) == 0


def test_the_choice_allows_only_the_tokenizers_spelling_of_a_word():
    tree = _outputs_tree(FakeLlama(PIECES), SpanChoices(["Joseph Truman."], "en"))
    # " " + "J" + "oseph" spells " Joseph" too, but the tokenizer writes it " Joseph"
    assert PIECES[choose(tree, [], **{" ": 9.0, " Joseph": 1.0})] == b" Joseph"


# --- the pipeline's span mode (the default with the model) ----------------------------------------

COUNT = "Combien de personnes emploie la boulangerie Martin ?"


def test_a_confident_span_is_the_answer_cited_to_its_sentence(engine_factory):
    engine = engine_factory("12 personnes")
    result = answer(COUNT, engine)
    assert result.mode == "span" and not result.refused
    assert result.text == "12 personnes [1]."
    (citation,) = result.citations
    assert "12 personnes" in citation.quote and citation.source == "alpha.txt"
    source, start, end = result.span_offsets
    assert source == citation.source and citation.start <= start < end <= citation.end
    assert engine.index.texts[source].text[start:end] == "12 personnes"
    prompt = engine.generator.prompts[0]
    assert prompt.startswith(pack("fr").span.instruction) and "emploie aujourd'hui 12 personnes" in prompt
    assert engine.generator.constraints[0] is not None


def test_a_span_the_model_is_unsure_of_gives_way_to_the_quoted_sentence(engine_factory):
    engine = engine_factory()
    engine._generator = FakeGenerator("12 personnes", confidence=CONFIDENT / 2)
    result = answer(COUNT, engine)
    assert result.mode == "extractive" and "«" in result.text and "12 personnes" in result.text
    assert result.span.text == "12 personnes" and result.span_offsets is None  # kept for `rag eval`, not shown


def test_a_generator_that_ignores_the_constraint_gets_the_quoted_sentence(engine_factory):
    engine = engine_factory()
    engine._generator = FakeGenerator("Elle emploie 45 personnes.", obey=False)
    result = answer(COUNT, engine)
    assert result.mode == "extractive" and "45" not in result.text and "12 personnes" in result.text


def test_span_mode_streams_no_draft_and_no_llm_asks_no_model(engine_factory):
    engine = engine_factory("12 personnes")
    pieces: list[str] = []
    assert answer(COUNT, engine, on_token=pieces.append).mode == "span" and pieces == []
    quiet = engine_factory("12 personnes")
    assert answer(COUNT, quiet, use_llm=False).mode == "extractive" and quiet.generator.prompts == []


def test_the_answer_mode_is_checked_where_settings_are_made():
    with pytest.raises(UsageError, match="span, generate"):
        Settings(answer_mode="free").validated()
    with pytest.raises(UsageError, match="answer mode"):
        Settings.from_env({"RAG_ANSWER_MODE": "spam"})
    assert Settings.from_env({"RAG_ANSWER_MODE": "generate"}).answer_mode == "generate"
    assert Settings().answer_mode == "span"


def test_an_unknown_answer_mode_on_the_command_line_is_a_one_line_error(tmp_path):
    from tests.test_cli import assert_one_line_error, rag

    assert_one_line_error(rag("ask", "Quand ?", "--answer-mode", "free", "--index", str(tmp_path)), 2, "span", "generate")
    assert_one_line_error(rag("eval", "--answer-mode", "free", "--index", str(tmp_path)), 2, "answer-mode")


# --- the real model ------------------------------------------------------------------------------

@pytest.mark.integration
def test_the_real_model_copies_the_answer_under_the_scan_and_the_grammar():
    from rag.pipeline import load_configured_generator
    from rag.settings import Settings

    generator = load_configured_generator(Settings(manifest_path=ROOT / "models.txt"))
    chosen = [evidence(1, "The brewery later moved to Brick Lane in London."), evidence(2, SENTENCE)]
    span = pick_span(generator, analyse("When was the Old Truman Brewery founded?", "en"), chosen, sentences=2)
    assert span is not None and span.text == "1724" and span.evidence.n == 2 and span.confidence > 0
    generator.constrain_with = "grammar"
    try:
        again = pick_span(generator, analyse("When was the Old Truman Brewery founded?", "en"), chosen, sentences=2)
    finally:
        generator.constrain_with = "scan"
    assert again is not None and (again.text, again.evidence.n) == (span.text, span.evidence.n)


@pytest.mark.integration
def test_a_real_span_answer_is_words_of_its_cited_sentence(seeds_index, monkeypatch):
    from rag import pipeline
    from rag.pipeline import Engine

    monkeypatch.setattr(pipeline, "CONFIDENT", 0.0)  # every span shown: the model's confidence is not the subject
    engine = Engine.load(Settings(index_dir=seeds_index, manifest_path=ROOT / "models.txt"))
    shown = 0
    for question in ("Combien de GPU H800 DeepSeek a-t-il utilisés ?", "Qui est le PDG de Y Combinator ?",
                     "Combien a coûté l'entraînement de R1 ?", "Quel investisseur a qualifié R1 de « moment Sputnik de l'IA » ?"):
        result = answer(question, engine)
        assert not result.refused, question
        span = result.span
        assert span is not None, question  # the real generator holds to the constraint
        assert engine.index.texts[span.evidence.source].text[span.source_start:span.source_end] == span.text
        if result.mode == "span":
            shown += 1
            citation = result.citations[0]
            assert result.text.startswith(span.text) and span.text in citation.quote
            assert citation.start <= span.source_start < span.source_end <= citation.end
    assert shown == 4


@pytest.fixture(scope="module")
def real_generator():
    from rag.pipeline import load_configured_generator

    return load_configured_generator(Settings(manifest_path=ROOT / "models.txt"))


def _decodes(generator, monkeypatch) -> list[int]:
    """The batch sizes llama.cpp is asked to decode from now on."""
    context = generator._llm._ctx
    sizes: list[int] = []
    decode = context.decode

    def counted(batch):
        sizes.append(batch.n_tokens())
        return decode(batch)

    monkeypatch.setattr(context, "decode", counted)
    return sizes


@pytest.mark.integration
def test_the_tokens_the_constraint_forces_are_read_in_one_batch(real_generator, monkeypatch):
    """' 1724' is ' ' then four digits for Gemma; once the model chose ' ', the only allowed number
    leaves no choice about the digits: they are read with it, in one batch, not one at a time."""
    question = analyse("When was the Old Truman Brewery founded?", "en")
    chosen = [evidence(1, SENTENCE)]
    pick_span(real_generator, question, chosen)  # the prompt's solved examples now in the cache
    sizes = _decodes(real_generator, monkeypatch)
    span = pick_span(real_generator, question, chosen)
    assert span is not None and span.text == "1724"
    assert len(span.logprobs) >= 6  # ' ', the four digits and the line's end, each with its probability
    assert len(sizes) <= 3, sizes  # the prompt's new tokens, then ' ' with the digits (the end is never read)


@pytest.mark.integration
def test_a_prompt_finds_its_languages_examples_kept_after_a_question_in_another_language(real_generator, monkeypatch):
    """Questions alternating between French and English: each language's solved examples are read
    once, kept, and put back when its next question comes, with the same answer."""
    english = analyse("When was the Old Truman Brewery founded?", "en")
    french = analyse("En quelle année la brasserie Truman a-t-elle été fondée ?", "fr")
    texts = [evidence(1, SENTENCE)]
    french_texts = [evidence(1, "La brasserie Truman fut fondée en 1724 sur Brick Lane.", language="fr")]
    pick_span(real_generator, french, french_texts)
    pick_span(real_generator, english, texts)  # the French prompt is kept as the English one replaces it
    sizes = _decodes(real_generator, monkeypatch)
    span = pick_span(real_generator, french, french_texts)  # the cache holds the English examples
    assert span is not None and span.text == "1724"
    assert sizes[0] < 100, sizes  # its own text and question, not the ~290 tokens of the examples
    real_generator._llm.reset()
    real_generator._kept = type(real_generator._kept)()  # nothing kept: the whole prompt is read
    again = pick_span(real_generator, french, french_texts)
    assert again is not None and again.text == span.text
    assert again.confidence == pytest.approx(span.confidence, abs=0.05)


@pytest.mark.integration
def test_warming_up_reads_the_examples_of_every_language(seeds_index, monkeypatch):
    """`rag serve` and the warm process warm up: over French documents, the first question in English
    finds its examples read already, kept beside the French ones in the cache."""
    from rag.pipeline import Engine

    engine = Engine.load(Settings(index_dir=seeds_index, manifest_path=ROOT / "models.txt"))
    engine.warm_up()
    generator = engine.generator
    assert len(generator._kept) == 1  # the English examples; the French ones (the corpus's) are in the cache
    sizes = _decodes(generator, monkeypatch)
    span = pick_span(generator, analyse("When was the Old Truman Brewery founded?", "en"), [evidence(1, SENTENCE)])
    assert span is not None and span.text == "1724"
    assert sizes[0] < 100, sizes  # the sentence and the question, not the ~230 tokens of the examples
