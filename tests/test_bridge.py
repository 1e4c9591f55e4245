"""The bridge between languages: a question in one language over documents in another."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from rag.evidence import unfound_details
from rag.pipeline import answer, decision_for
from rag.query import analyse
from rag.retrieval import QueryTerms
from rag.text import analyze
from tests.conftest import FakeEmbedder, engine_over


class TranslatingEmbedder(FakeEmbedder):
    """The fake's bag of stems, where a French word and its English translation are one stem
    (as a multilingual embedder puts them close)."""

    SAME = {"telephon": "phon", "etat": "stat", "unis": "unit", "bresil": "brazil", "command": "order",
            "formulair": "form", "grandebretagn": "britain", "ecol": "school"}

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            whole = analyze(text.replace("-", ""), "fr")  # a compound as one stem
            terms = [self.SAME.get(t, t) for t in whole] if len(whole) == 1 else \
                [self.SAME.get(t, t) for t in analyze(text, "fr")]
            for term in terms or ["empty"]:
                out[row, hash_of(term) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def hash_of(term: str) -> int:
    return int(hashlib.md5(term.encode()).hexdigest(), 16)


MIXED = {
    "mairie.txt": "La mairie\n\nLe téléphone de la mairie est en panne depuis lundi ; les formulaires sont "
                  "au guichet.\n",
    "help.txt": "Getting help\n\nIn the United States, you can phone 1-800-829-3676 to order forms and "
                "publications. Brazil and Britain have their own services.\n",
}


def test_in_a_corpus_of_two_languages_a_word_both_use_also_stands_for_its_translation(tmp_path: Path):
    """'téléphone' is a word of the French document too: before, only words no document used were
    translated, and the English document's 'phone' never counted for it."""
    engine = engine_over(tmp_path, MIXED, embedder=TranslatingEmbedder())
    assert set(engine.index.languages) == {"fr", "en"}
    query = analyse("Quel téléphone pour commander des formulaires ?", engine.index.language, engine.index.languages)
    terms = engine.retriever.query_terms(query)
    assert "telephon" in engine.index.lexical.vocabulary
    assert "phone" in terms.stand_ins["telephon"]
    assert "order" in terms.stand_ins["command"]
    result = answer(query.text, engine, use_llm=False)
    assert not result.refused and "1-800-829-3676" in result.text


def test_in_a_corpus_of_one_language_a_known_word_stands_for_itself_alone(tmp_path: Path):
    engine = engine_over(tmp_path, {"mairie.txt": MIXED["mairie.txt"]}, embedder=TranslatingEmbedder())
    query = analyse("Le téléphone de la mairie est-il en panne ?", engine.index.language, engine.index.languages)
    assert engine.retriever.query_terms(query).stand_ins.get("telephon", {}) == {}


def test_a_question_in_another_language_than_the_corpus_translates_the_words_it_also_uses(tmp_path: Path):
    """'school' is a word of the French text (in a name), and 'école' the one that answers."""
    engine = engine_over(tmp_path, {"ecole.txt": "L'école\n\nLa Huguenot School est une école de tissage "
                                                 "fondée à Canterbury en 1700 par des réfugiés.\n"},
                         embedder=TranslatingEmbedder())
    query = analyse("When was the weaving school founded?", engine.index.language, engine.index.languages)
    assert (query.language, engine.index.languages) == ("en", ("fr",))
    assert "school" in engine.index.lexical.vocabulary
    assert "ecol" in engine.retriever.query_terms(query).stand_ins["school"]


def test_a_hyphenated_name_is_translated_whole(tmp_path: Path):
    engine = engine_over(tmp_path, MIXED, embedder=TranslatingEmbedder())
    query = analyse("Quel service a la Grande-Bretagne ?", engine.index.language, engine.index.languages)
    terms = engine.retriever.query_terms(query)
    assert "britain" in terms.stand_ins["bretagn"]


def test_a_name_held_by_its_translation_is_found():
    """'Brazil' is how the English text writes 'Brésil': not another name that shares a stem."""
    q = analyse("Qui a colonisé le Brésil ?", "fr")
    assert unfound_details(q, QueryTerms(q.weights, {"bresil": {"brazil": 0.86}}), "Portugal colonized Brazil.", "en") == ()
    assert unfound_details(q, QueryTerms(q.weights), "Portugal colonized Brazil.", "en") == ("bresil",)


def test_in_a_corpus_of_two_languages_common_words_one_side_lacks_refuse_nothing(tmp_path: Path):
    """'soulevés' and 'contre' are in no document: in a French corpus the question is about what
    the documents never speak of; next to English documents they may just say it in English."""
    question = "Contre qui les camisards se sont-ils soulevés ?"
    (tmp_path / "fr").mkdir()
    french = engine_over(tmp_path / "fr", {"mairie.txt": MIXED["mairie.txt"],
                                           "cevennes.txt": "Les Cévennes\n\nLes camisards vivaient dans les Cévennes.\n"})
    assert decision_for(question, french, 5).reason == "unknown-terms"
    (tmp_path / "mixed").mkdir()
    mixed = engine_over(tmp_path / "mixed", MIXED | {
        "camisards.txt": "The Camisards\n\nThe Camisards rose against the Catholic Church in 1702.\n"})
    assert decision_for(question, mixed, 5).reason != "unknown-terms"


def test_a_negated_question_is_compared_with_a_text_in_another_language_through_its_translations():
    """Before, any negation of an English text answered a negated French question."""
    from rag.policy import negated_terms, negates_what_is_asked
    q = analyse("Qui n'avait pas le droit de s'installer dans les colonies ?", "fr")
    assert {"droit", "install"} <= negated_terms(q)
    terms = QueryTerms(q.weights, {"droit": {"right": 0.8}, "install": {"settl": 0.8}})
    recovered, settled = "The kingdom did not recover for years.", "Dissenters were not allowed to settle in the colony."
    assert not negates_what_is_asked(q, recovered, "en", terms)
    assert negates_what_is_asked(q, settled, "en", terms)
    assert negates_what_is_asked(q, recovered, "en")  # nothing to compare with: any negation counts


def test_a_name_spelled_as_the_other_language_spells_it_is_found():
    """'Henri' is how French writes 'Henry': in a text of another language than the question, a
    name one letter or an ending away is the same name; in a text of its own language it is not."""
    def unfound(question: str, text: str) -> tuple[str, ...]:
        query = analyse(question, "fr", ("fr",))
        return unfound_details(query, QueryTerms(query.weights), text, "fr")

    french = "Henri de Navarre accéda au trône de France sous le nom d'Henri IV."
    assert analyse("What was Henry IV known as before taking the throne?", "fr", ("fr",)).language == "en"
    assert "henry" not in unfound("What was Henry IV known as before taking the throne?", french)
    assert "florid" not in unfound("Which city of Florida was founded in 1565?",
                                   "Saint Augustine, en Floride, fut fondée en 1565.")
    assert "henry" in unfound("Quand Henry IV est-il monté sur le trône ?", french)


class BlurredEmbedder(TranslatingEmbedder):
    """A translation 0.8 from its word, as a real embedder puts them: near, not on each other
    ('forts' and 'forts' 0.95, 'chaque' and 'every' 0.9, 'oiseau' and 'bird' 0.83)."""

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in analyze(text, "fr") or ["empty"]:
                if term in self.SAME:
                    out[row, hash_of(self.SAME[term]) % self.dim] += 0.8
                    out[row, hash_of(term) % self.dim] += 0.6
                else:
                    out[row, hash_of(term) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_a_word_the_documents_write_in_another_language_is_held_as_far_as_its_translation_reaches(tmp_path: Path):
    """An English question over French documents: 'phone' is 'téléphone' at 0.8, and a sentence
    holding 'téléphone' holds all the documents can say of it; before, it held 0.8 of it, and a
    question asked in another language than the documents scored less and was refused more."""
    engine = engine_over(tmp_path, {"mairie.txt": MIXED["mairie.txt"]}, embedder=BlurredEmbedder())
    english = analyse("Since when is the phone broken?", engine.index.language, engine.index.languages)
    assert (english.language, engine.index.languages) == ("en", ("fr",))
    terms = engine.retriever.query_terms(english)
    phone = analyze("phone", english.terms_language)[0]
    assert abs(terms.stand_ins[phone]["telephon"] - 0.8) < 0.01
    assert abs(terms.reach[phone] - 0.8) < 0.01
    assert terms.credit(phone, {"telephon"}) == 1.0
    assert terms.credit(phone, {"mairi"}) == 0.0
    # a question in the documents' own language: a stand-in is another word, held at its similarity
    french = analyse("Depuis quand le téléphone sonne-t-il ?", engine.index.language, engine.index.languages)
    assert engine.retriever.query_terms(french).reach == {}
