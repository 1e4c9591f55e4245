"""Language packs: what the pipeline knows about a language (stop words, stemmer, number
conventions, number words, question kinds, follow-up markers, prompt and answer strings) lives in
data, one file per language in `packs/<code>.toml`. A new language is a new file; the pipeline
code holds no word lists.

    >>> pack("en").stem("colonies"), pack("fr").stem("colonies")
    ('coloni', 'colon')
    >>> detect("Who founded the company?"), detect("Qui a fondé l'entreprise ?"), detect("Кто основал компанию?")
    ('en', 'fr', None)
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKS = Path(__file__).parent / "packs"
KIND_ORDER = ("time", "year", "date", "duration", "person", "person_by_role", "name", "place", "count", "figure")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class SpanExample:
    """A solved example of the span task: the text's lines, a question, the words that answer it."""
    text: tuple[str, ...]
    question: str
    answer: str


@dataclass(frozen=True)
class SpanTask:
    """The strings of the span task (rag/span.py, rag/prompting.py) in one language."""
    instruction: str
    text_label: str
    question_label: str
    answer_label: str
    refusal_word: str  # what the model may write when the text does not answer
    examples: tuple[SpanExample, ...]  # answers inside long sentences, not always on line 1
    unanswered: SpanExample  # a question its text does not answer, solved with `refusal_word`


def _span_task(data: dict) -> SpanTask:
    word = data["refusal_word"]
    return SpanTask(data["instruction"], data["text_label"], data["question_label"], data["answer_label"], word,
                    tuple(SpanExample(tuple(e["text"]), e["question"], e["answer"]) for e in data["examples"]),
                    SpanExample(tuple(data["unanswered"]["text"]), data["unanswered"]["question"], word))


@dataclass(frozen=True, eq=False)  # one instance per language (cached): compared and hashed by identity
class LanguagePack:
    code: str
    name: str
    stemmer_name: str
    stem_accented: bool  # the stemmer reads words with their accents ("opposèrent"), folded afterwards
    lemmas: bool  # words go to their dictionary form first (simplemma): "promis" -> "promettre"
    decimal_separator: str
    thousands_separators: tuple[str, ...]
    elisions: tuple[str, ...]
    contractions: tuple[str, ...]
    stopwords: frozenset[str]  # folded
    markers: frozenset[str]  # folded function words that tell the language apart
    negation: re.Pattern  # on folded text: the sentence or question negates
    number_words: frozenset[str]
    number_values: dict[str, int]  # written numbers that name one on their own: "eight" -> 8
    ordinals: dict[str, int]  # ordinal words and their rank: "third" -> 3
    magnitudes: dict[str, float]
    time_units: frozenset[str]
    one_words: frozenset[str]  # "un", "a": one only before a unit of time ("un an", "a year")
    since_words: frozenset[str]  # "since", "depuis": before a year, a duration given by its start
    agent_words: frozenset[str]  # "by", "par": before who did what the word before says ("designed by Eiffel")
    event_words: frozenset[str]  # "before", "pendant": before a named event, a time
    calendar: frozenset[str]
    year_prefixes: tuple[str, ...]  # words before a three-digit year ("in 732")
    label_words: frozenset[str]  # folded: words before a number that names, not counts ("n° 13", "article 6")
    measures: dict[str, tuple[frozenset[str], frozenset[str]]]  # measure -> (the
    # folded words that ask for it, "distance"; the units its figures are written in, "km")
    time_ago: re.Pattern | None  # on folded text: a time counted back from now ("300 years ago"), which answers "when"
    clock: re.Pattern | None  # on folded text: a time of day ("16h05", "4:05 pm"), which answers "what time"
    century: re.Pattern | None  # on folded text: a century by its number, group 1 ("XVIe siècle", "16th century")
    currencies: dict[str, str]
    money_words: frozenset[str]
    range_start: tuple[str, ...]
    range_join: tuple[str, ...]
    of_words: tuple[str, ...]
    kinds: dict[str, re.Pattern]  # compiled question-kind patterns, in KIND_ORDER
    person_nouns: frozenset[str]
    name_particles: frozenset[str]  # lower-case words inside a person's name ("Osama bin Laden", "Jessé de Forest")
    sort_words: frozenset[str]  # words for a kind of thing ("what kind of lens", "quel type de"): they say what is asked
    named_things: frozenset[str]
    followup_openers: tuple[str, ...]
    followup_pronouns: frozenset[str]
    sentence_pronouns: tuple[str, ...]
    inversion: re.Pattern | None  # a pronoun after the verb ("a-t-il") that is no follow-up marker
    abbreviations: frozenset[str]
    articles: tuple[str, ...] = ()  # dropped by SQuAD-style answer normalisation; "l'": elided
    not_negating: re.Pattern | None = None  # on folded text: a negation that says when, not what did not
    # happen ("tant que ... n'avait pas", "until")
    complement_links: frozenset[str] = frozenset()  # folded: words that tie a noun to its complement ("of", "des")
    duration_measures: dict[str, str] = field(default_factory=dict)  # folded words asking for a
    # duration that ask for a measure as well, and which: "how long" -> "length" ("14 characters long")
    strings: dict[str, str] = field(default_factory=dict)
    span: SpanTask | None = None

    def stem(self, word: str) -> str:
        return _stemmer(self.stemmer_name).stemWord(word)

    def lemma(self, word: str) -> str:
        """The dictionary form of a lower-case word (simplemma's dictionary for the language), or
        the word itself where the dictionary has none or the pack asks for none.

        >>> pack("fr").lemma("promis"), pack("fr").lemma("arrivèrent"), pack("fr").lemma("montpellier")
        ('promettre', 'arriver', 'montpellier')
        >>> pack("en").lemma("began")  # the English pack asks for none (measured: no answer gained)
        'began'
        """
        return _lemma(word, self.code) if self.lemmas else word

    def text(self, key: str) -> str:
        return self.strings[key]

    @property
    def antonyms(self) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
        """(word, its antonym, the antonym's irregular forms) from `packs/<code>-antonyms.tsv`,
        read on first use; empty for a language without that file.

        >>> [(a, b, forms) for a, b, forms in pack("en").antonyms if a == "win"]
        [('win', 'lose', ('lost',))]
        """
        return _antonyms(self.code)

    def negates(self, text: str) -> bool:
        """Whether the text negates what it says ("n'a pas", "did not", "never").

        >>> pack("fr").negates("Il n'a jamais été élu."), pack("fr").negates("Une personne morale.")
        (True, False)
        >>> pack("en").negates("It didn't happen."), pack("en").negates("No later than 1754.")
        (True, False)
        >>> pack("en").negates("How many non-Muslims live there?"), pack("en").negates("Infantry No. 15")
        (True, False)
        """
        return bool(self.negations(_fold(text).replace("\u2019", "'")))

    def negations(self, folded: str) -> list[re.Match]:
        """The negations of a folded text (`negation`), but for those the pack's `not_negating`
        says negate nothing that happened: "tant que Loudoun n'avait pas validé" is "until
        Loudoun approved".

        >>> [m.group(0) for m in pack("fr").negations("il refusait d'agir tant que loudoun n'avait pas valide")]
        []
        >>> [m.group(0) for m in pack("fr").negations("il n'a pas agi tant que loudoun hesitait")]
        ["n'a pas"]
        """
        if self.not_negating is not None:
            folded = self.not_negating.sub(lambda m: " " * len(m.group(0)), folded)
        return list(self.negation.finditer(folded))


@lru_cache(maxsize=None)
def _stemmer(name: str):
    import Stemmer

    return Stemmer.Stemmer(name)


LEMMA_STEPS = 3  # dictionary forms followed: 'empreintes' -> 'empreinte' -> 'empreint' -> 'empreindre'


@lru_cache(maxsize=1 << 16)
def _lemma(word: str, code: str) -> str:
    """The word's dictionary form, followed while that form has another one of its own: the
    dictionary gives 'soutenus' the adjective 'soutenu', whose own form is 'soutenir', the form it
    gives 'soutenu' (likewise 'connus', 'perdus', 'transmises'); stopping at the first left a
    question's 'soutenu' and a text's 'soutenus' two terms."""
    seen = {word}
    for _ in range(LEMMA_STEPS if len(word) > 2 else 1):
        found = _dictionary().get_lemma(word, code)
        found = found.lower() if found else word
        if found in seen:
            break
        seen.add(found)
        word = found
    return word


@lru_cache(maxsize=1)
def _dictionary():  # the language's dictionary loads on its first word (~0.3 s)
    from simplemma.strategies import DictionaryLookupStrategy

    return DictionaryLookupStrategy()


@lru_cache(maxsize=None)
def _antonyms(code: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    path = PACKS / f"{code}-antonyms.tsv"
    if not path.is_file():
        return ()
    pairs = []
    for line in path.read_text("utf-8").splitlines():
        if line and not line.startswith("#"):
            word, antonym, forms = (line.split("\t") + [""])[:3]
            pairs.append((word, antonym, tuple(forms.split())))
    return tuple(pairs)


def codes() -> tuple[str, ...]:
    """The languages a pack covers, e.g. ('en', 'fr')."""
    return tuple(sorted(p.stem for p in PACKS.glob("*.toml")))


def _expand(pattern: str, kinds: dict) -> str:
    """A kind's pattern with each "{list}" it names (a word list of the pack's [kinds]: person_nouns,
    named_things, measure_nouns) written as alternatives."""
    return re.sub(r"\{(\w+)\}", lambda m: "|".join(map(re.escape, kinds[m.group(1)])), pattern)


@lru_cache(maxsize=None)
def pack(code: str) -> LanguagePack:
    """The pack of a language code; a KeyError names the languages there are."""
    path = PACKS / f"{code}.toml"
    if not re.fullmatch(r"[a-z]{2,3}", code or "") or not path.is_file():
        raise KeyError(f"no language pack for {code!r}; there are: {', '.join(codes())}")
    data = tomllib.loads(path.read_text("utf-8"))
    numbers, kinds, followup = data["numbers"], data["kinds"], data["followup"]
    compiled = {k: re.compile(_expand(kinds[k], kinds)) for k in KIND_ORDER}
    return LanguagePack(
        code=data["code"], name=data["name"], stemmer_name=data["stemmer"],
        stem_accented=bool(data.get("stem_accented", False)), lemmas=bool(data.get("lemmas", False)),
        decimal_separator=data["decimal_separator"], thousands_separators=tuple(data["thousands_separators"]),
        elisions=tuple(data["elisions"]), contractions=tuple(data["contractions"]),
        stopwords=frozenset(_fold(w) for w in data["stopwords"]),
        markers=frozenset(_fold(w) for w in data["markers"]),
        negation=re.compile(data["negation"]),
        not_negating=re.compile(data["not_negating"]) if data.get("not_negating") else None,
        number_words=frozenset(numbers["words"]), number_values=dict(numbers.get("values", {})),
        ordinals=dict(numbers.get("ordinals", {})), magnitudes=dict(numbers["magnitudes"]),
        time_units=frozenset(numbers["time_units"]), one_words=frozenset(numbers["one_words"]),
        since_words=frozenset(numbers.get("since_words", ())),
        event_words=frozenset(numbers.get("event_words", ())),
        agent_words=frozenset(kinds.get("agent_words", ())),
        calendar=frozenset(numbers["calendar"]),
        year_prefixes=tuple(numbers["year_prefixes"]),
        label_words=frozenset(_fold(w) for w in numbers.get("label_words", ())),
        measures={name: (frozenset(_fold(w) for w in m["asked"]), frozenset(_fold(w) for w in m["units"]))
                  for name, m in numbers.get("measures", {}).items()},
        duration_measures={_fold(k): v for k, v in numbers.get("duration_measures", {}).items()},
        time_ago=re.compile(numbers["time_ago"]) if numbers.get("time_ago") else None,
        clock=re.compile(numbers["clock"]) if numbers.get("clock") else None,
        century=re.compile(numbers["century"]) if numbers.get("century") else None,
        currencies=dict(numbers["currencies"]), money_words=frozenset(numbers["money_words"]),
        range_start=tuple(numbers["range_words"]["start"]), range_join=tuple(numbers["range_words"]["join"]),
        of_words=tuple(numbers["of_words"]), kinds=compiled, person_nouns=frozenset(kinds["person_nouns"]),
        name_particles=frozenset(kinds.get("name_particles", ())),
        sort_words=frozenset(_fold(w) for w in kinds.get("sort_words", ())),
        named_things=frozenset(kinds["named_things"]),
        followup_openers=tuple(followup["openers"]), followup_pronouns=frozenset(followup["pronouns"]),
        sentence_pronouns=tuple(followup["sentence_pronouns"]),
        inversion=re.compile(followup["inversion"]) if followup.get("inversion") else None,
        abbreviations=frozenset(w.lower() for w in data["sentences"]["abbreviations"]),
        articles=tuple(data["articles"]),
        complement_links=frozenset(_fold(w) for w in data.get("complement_links", ())),
        strings=dict(data["strings"]),
        span=_span_task(data["span"]),
    )


def packs() -> list[LanguagePack]:
    return [pack(c) for c in codes()]


def _script_letters(text: str) -> tuple[int, int]:
    """(Latin letters, other letters) of a text."""
    latin = other = 0
    for c in text:
        if c.isalpha():
            if c < "\u0250" or unicodedata.name(c, "").startswith("LATIN"):
                latin += 1
            else:
                other += 1
    return latin, other


_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


def detect(text: str, default: str | None = "fr") -> str | None:
    """The code of the pack whose function words the text uses most; `default` (the corpus's
    language) when no word tells; None when the text is mostly in a script no pack covers
    (Cyrillic, Arabic, Chinese...)."""
    latin, other = _script_letters(text)
    if other > latin:
        return None
    tokens = _WORD.findall(_fold(text).replace("\u2019", "'"))
    scores = {p.code: sum(t in p.markers or t in p.stopwords for t in tokens) for p in packs()}
    best = max(scores.values(), default=0)
    leaders = [c for c, s in scores.items() if s == best]
    if best == 0 or len(leaders) > 1:
        return default if default in scores else leaders[0]
    return leaders[0]
