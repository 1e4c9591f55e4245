"""Evidence selection: which sentences are embedded, and that the pick does not depend on it when
the answering sentence is among the best-covered ones."""

from conftest import FakeEmbedder

from rag import evidence
from rag.chunking import Chunk
from rag.evidence import select_evidence
from rag.lexical import LexicalIndex
from rag.query import analyse
from rag.retrieval import Hit

FILLER = [f"Le rapport numéro {i} traite de la météo des régions et des saisons agricoles." for i in range(30)]
ANSWER = "La boulangerie Martin emploie douze personnes à temps plein."


def _hits(sentences: list[str]) -> list[Hit]:
    text = " ".join(sentences)
    chunk = Chunk("c1", "doc.txt", 0, len(text), 1, text, "fr")
    return [Hit(chunk, 1, 1.0)]


def test_only_the_best_covered_sentences_are_embedded(monkeypatch):
    monkeypatch.setattr(evidence, "EMBEDDED_SENTENCES", 5)
    sentences = FILLER[:15] + [ANSWER] + FILLER[15:]
    hits = _hits(sentences)
    lexical = LexicalIndex.build(sentences, ["fr"] * len(sentences))
    embedder = FakeEmbedder()
    query = analyse("Combien de personnes emploie la boulangerie Martin ?")
    picked = select_evidence(query, hits, lexical, embedder, limit=4)
    question, *embedded = embedder.texts[:6]
    assert question == query.text and len(embedded) == 5 and ANSWER in embedded
    assert not any(text in FILLER for text in embedder.texts[6:]), "the rest were not embedded as sentences"
    assert picked[0].text == ANSWER and picked[0].similarity > 0
    assert all(e.similarity == 0 for e in picked if e.text not in embedded)


def test_the_pick_is_the_same_as_embedding_every_sentence(monkeypatch):
    sentences = FILLER[:15] + [ANSWER] + FILLER[15:]
    lexical = LexicalIndex.build(sentences, ["fr"] * len(sentences))
    query = analyse("Combien de personnes emploie la boulangerie Martin ?")
    every = select_evidence(query, _hits(sentences), lexical, FakeEmbedder(), limit=4)
    monkeypatch.setattr(evidence, "EMBEDDED_SENTENCES", 8)
    few = select_evidence(query, _hits(sentences), lexical, FakeEmbedder(), limit=4)
    assert few[0].text == every[0].text == ANSWER
    assert (few[0].score, few[0].coverage, few[0].similarity) == (every[0].score, every[0].coverage, every[0].similarity)


def test_a_detail_in_the_title_or_headings_above_a_table_row_is_found():
    """A table row does not repeat what its document is about: the regulation's number in the
    heading above the row holds for it; the same row in a document without that heading lacks it."""
    from rag.documents import Document

    intro = "Le présent règlement fixe une contribution pour les travaux municipaux."
    row = "Nombre estimé de nouvelles unités construites pendant les travaux | 891"
    text = f"{intro}\n\n{row}"
    chunk = Chunk("c1", "doc.pdf", 0, len(text), 1, text, "fr")
    lexical = LexicalIndex.build([text, "Règlement 1324 et règlement 1200."], ["fr", "fr"])
    query = analyse("Combien de nouvelles unités seront construites selon le règlement 1324 ?")
    titled = Document("doc.pdf", text, "0", headings=((0, "RÈGLEMENT 1324", 1),))
    plain = Document("doc.pdf", text, "0")
    found = select_evidence(query, [Hit(chunk, 1, 1.0)], lexical, FakeEmbedder(), 4, documents={"doc.pdf": titled})
    lacking = select_evidence(query, [Hit(chunk, 1, 1.0)], lexical, FakeEmbedder(), 4, documents={"doc.pdf": plain})
    assert found[0].text == lacking[0].text == row and found[0].fits
    assert found[0].unfound == () and lacking[0].unfound == ("1324",)
    # and the heading's number counts in the row's coverage of the question, as its own words do
    assert found[0].coverage > lacking[0].coverage


def test_a_hyphenated_name_written_in_the_text_is_held_in_another_language():
    """'Station-de-Biologie' in an English question is analysed by the English stemmer, in a French
    text by the French one: the terms differ, but the name written in the text is held."""
    from rag.evidence import unfound_details
    from rag.retrieval import QueryTerms

    query = analyse("How many bird species visit the Station-de-Biologie reserve?", "en", ("fr", "en"))
    terms = QueryTerms(query.weights)
    held = unfound_details(query, terms, "La réserve de la Station-de-Biologie accueille 85 espèces.", "fr")
    missing = unfound_details(query, terms, "La réserve du Mont-Tremblant accueille 85 espèces.", "fr")
    assert held == () and "biologi" in missing


def test_a_sentence_that_only_restates_the_question_answers_nothing():
    """A heading that repeats the question's words ranks high on them and says nothing more: the
    sentence that names the collective answers."""
    heading = "Une candidature collective à la présidence du comité"
    answer = "La candidature est portée par le collectif Rogue, soutenu par de nombreux chercheurs."
    text = "\n\n".join([heading, answer] + FILLER[:5])
    lexical = LexicalIndex.build([text, FILLER[5]], ["fr", "fr"])
    query = analyse("Quel collectif porte la candidature collective à la présidence du comité ?")
    hits = [Hit(Chunk("c1", "doc.txt", 0, len(text), 1, text, "fr"), 1, 1.0)]
    picked = select_evidence(query, hits, lexical, FakeEmbedder(), limit=4)
    assert picked[0].text == answer and picked[0].fits
    restated = [e for e in picked if e.text == heading]
    assert restated and not restated[0].fits


def test_names_carry_through_a_paragraph_and_stop_at_its_end():
    """'The city' and 'Tension with the capital' are still about Montpellier two sentences on, in
    the same paragraph; after a blank line the same sentence is about whatever that paragraph is."""
    def siege_sentence(paragraphs: list[str]):
        text = "\n\n".join(paragraphs)
        lexical = LexicalIndex.build([text] + FILLER[:3], ["en"] * 4)
        query = analyse("France laid siege to Montpellier in what year?", "en")
        hits = [Hit(Chunk("c1", "doc.txt", 0, len(text), 1, text, "en"), 1, 1.0)]
        return {e.text: e for e in select_evidence(query, hits, lexical, FakeEmbedder(), limit=4)}

    first = "Montpellier was among the most important of the towns that the edict granted to the Huguenots."
    second = "The city's political institutions and the university were all handed over to them."
    third = "Tension with the capital led to a siege by the royal army in 1622."
    together = siege_sentence([f"{first} {second} {third}"])
    apart = siege_sentence([f"{first} {second}", third])
    assert together[third].coverage > apart[third].coverage


def test_a_who_question_prefers_the_one_its_verb_says_did_it(monkeypatch):
    """'Qui a conçu le canal ?': 'conçu par Pierre-Paul Riquet' names who did it; a sentence that
    only names other things ('le canal de Garonne') comes after it."""
    other = "Avec le canal de Garonne, il forme le canal des Deux-Mers, qui joint l'Atlantique à la Méditerranée."
    doer = "Le projet est conçu par Pierre-Paul Riquet, un fermier général de la gabelle en Languedoc."
    text = "\n\n".join([other, doer] + FILLER[:3])
    lexical = LexicalIndex.build([text] + FILLER[3:6], ["fr"] * 4)
    query = analyse("Qui a conçu le canal ?", "fr")
    hits = [Hit(Chunk("c1", "doc.txt", 0, len(text), 1, text, "fr"), 1, 1.0)]
    scores = {e.text: e.score for e in select_evidence(query, hits, lexical, FakeEmbedder(), limit=4)}
    monkeypatch.setattr(evidence, "AGENT_BONUS", 0.0)
    plain = {e.text: e.score for e in select_evidence(query, hits, lexical, FakeEmbedder(), limit=4)}
    assert abs(scores[doer] - plain[doer] - 0.15) < 1e-3 and scores[other] == plain[other]


def test_a_sentence_under_a_title_holding_the_setting_ranks_by_what_it_says():
    """Minutes state the meeting's date and body once, in their title and their first line; the
    sentence that says when the meeting closed names neither. It leaves them to the title, so it
    ranks above the first line, which only shares the question's setting; its coverage, which the
    refusal reads, gains the title's date (a detail) but not the title's other words."""
    from rag.documents import Document

    opening = "Réunion publique tenue le 12 mars, à 18h00, dans la salle des fêtes."
    closing = "La réunion est levée à 19h40."
    text = f"{opening}\n\nLes comptes de l'année sont présentés.\n\n{closing}"
    chunk = Chunk("c1", "pv.pdf", 0, len(text), 1, text, "fr")
    lexical = LexicalIndex.build([text, "Le conseil de quartier du 3 avril.", "La salle des fêtes est louée."],
                                 ["fr", "fr", "fr"])
    query = analyse("À quelle heure la réunion du conseil de quartier du 12 mars a-t-elle été levée ?")
    titled = Document("pv.pdf", text, "0", title="Conseil de quartier — réunion du 12 mars")
    plain = Document("pv.pdf", text, "0")
    under_title = select_evidence(query, [Hit(chunk, 1, 1.0)], lexical, FakeEmbedder(), 4, documents={"pv.pdf": titled})
    untitled = select_evidence(query, [Hit(chunk, 1, 1.0)], lexical, FakeEmbedder(), 4, documents={"pv.pdf": plain})
    assert under_title[0].text == closing
    assert untitled[0].text == opening, "without a title, the setting is the first line's alone"
    # the title's date counts in the coverage (a detail held above the sentence), its other words do not
    dated = Document("pv.pdf", text, "0", title="12 mars")
    under_date = select_evidence(query, [Hit(chunk, 1, 1.0)], lexical, FakeEmbedder(), 4, documents={"pv.pdf": dated})
    coverage = {e.text: e.coverage for e in under_date}
    assert under_title[0].coverage == coverage[closing] and under_title[0].unfound == ()


def test_a_where_question_ranks_the_sentence_naming_a_place_first():
    """"Where did they go?" over two sentences that share its words: the one naming a place the
    question does not ranks first; asked "why", the same sentences keep their order."""
    unnamed = "After the fire, most of the bakers had to go and leave the old quarter behind them."
    named = "Most of the bakers went to Cuba after the fire."
    sentences = [unnamed, named]
    lexical = LexicalIndex.build(sentences + ["The mill stands by the river."], ["en"] * 3)
    text = " ".join(sentences)
    hits = [Hit(Chunk("c1", "doc.txt", 0, len(text), 1, text, "en"), 1, 1.0)]
    where = select_evidence(analyse("Where did most of the bakers go after the fire?", "en"), hits, lexical, FakeEmbedder(), 4)
    assert where[0].text == named
    why = select_evidence(analyse("Why did most of the bakers go after the fire?", "en"), hits, lexical, FakeEmbedder(), 4)
    assert why[0].text == unnamed


def test_a_scraped_faq_is_quoted_by_its_own_sentences():
    """Text scraped from a web FAQ lost the spaces between its sentences ("6 mois.A noter:",
    "(PIA).Le"): the evidence quotes the sentence that answers, not the glued run around it."""
    text = ("Un registre des traitements est tenu par le responsable (RGPD).La CNIL recommande de conserver "
            "le refus des cookies pendant une durée de 6 mois.A noter: la durée de 6 mois constitue une bonne "
            "pratique qui peut être appréciée au cas par cas.")
    chunk = Chunk("c1", "faq.txt", 0, len(text), 1, text, "fr")
    lexical = LexicalIndex.build([text, "Les cookies de mesure d'audience.", "Le registre des traitements."], ["fr"] * 3)
    query = analyse("Pendant combien de temps la CNIL recommande-t-elle de conserver le refus des cookies ?")
    picked = select_evidence(query, [Hit(chunk, 1, 1.0)], lexical, FakeEmbedder(), 4)
    best = picked[0]
    assert best.text == "La CNIL recommande de conserver le refus des cookies pendant une durée de 6 mois."
    assert text[best.start : best.end] == best.text


def test_a_complement_close_in_meaning_to_the_question_s_is_no_change():
    """'le prix du billet' over 'le prix du ticket': another word for the same thing (the
    embedder puts them within CLOSE_WORD), not another thing; 'le prix du parking' is another."""
    import numpy as np

    from rag.evidence import changed_complements
    from rag.query import analyse
    from rag.retrieval import QueryTerms

    class Words:
        vectors = {"billet": [1.0, 0.0], "ticket": [0.9, 0.436], "parking": [0.0, 1.0]}

        def embed(self, texts):
            return np.array([self.vectors[t] for t in texts])

    q = analyse("Quel est le prix du billet à Corbie ?", "fr")
    terms = QueryTerms(q.weights)
    ticket = "À Corbie, le prix du ticket est de 5 euros."
    parking = "À Corbie, le prix du parking est de 5 euros."
    assert changed_complements(q, terms, ticket, ticket, "fr") == ("billet",)  # without an embedder
    assert changed_complements(q, terms, ticket, ticket, "fr", Words()) == ()
    assert changed_complements(q, terms, parking, parking, "fr", Words()) == ("billet",)
