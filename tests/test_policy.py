"""The answer policy: what refuses a question the documents do not answer, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.evidence import best_answering, relevance, unfound_details
from rag.pipeline import Engine, answer, decision_for, gather, gather_evidence
from rag.policy import negated_terms
from rag.query import analyse, with_corpus_names
from rag.render import answer_json
from rag.retrieval import QueryTerms
from tests.conftest import engine_over


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return engine_over(tmp_path, {
        "war.txt": "The war\n\nThe French and Indian War began in 1754 in the Ohio Country. The British colonists "
                   "outnumbered the French settlers by about twenty to one.\nThe colonization of India occurred in "
                   "the 18th century under the East India Company.\n",
        "abbey.txt": "The abbey\n\nThe abbey was founded in 1102 by monks from Burgundy. Its library holds 4,000 books.\n",
    })


def test_a_question_the_documents_answer_is_answered(engine):
    decision = decision_for("When did the colonization of India occur?", engine, 5)
    assert decision.reason == "" and not decision.refuse(engine.settings.refusal_threshold)
    result = answer("When did the colonization of India occur?", engine, use_llm=False)
    assert not result.refused and "18th century" in result.text and result.score == decision.score


def test_a_negated_question_is_not_answered_by_the_sentence_that_does_not_negate(engine):
    result = answer("When did the colonization of India not occur?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "negation" and result.citations == []


def test_a_question_about_the_non_members_is_not_answered_by_a_sentence_about_the_members(engine):
    """"non-" negates what follows: the French settlers are not the non-French ones."""
    refused = answer("How many non-French settlers were outnumbered by the British colonists?", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "negation"
    plain = answer("How many French settlers were outnumbered by the British colonists?", engine, use_llm=False)
    assert not plain.refused and "twenty to one" in plain.text


def test_a_question_about_what_the_corpus_never_mentions_is_refused(engine):
    result = answer("How many manuscripts did the abbey's scriptorium copy?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "unknown-terms"


def test_the_word_for_the_kind_of_thing_asked_is_no_unknown_detail(engine):
    # "monastery" is nowhere in the corpus, but it is what is asked for, not a detail of it
    decision = decision_for("Which monastery was founded in 1102?", engine, 5)
    assert decision.reason != "unknown-terms"


def test_eval_sees_the_policy_score(engine):
    from rag.evaluation import question_answerability

    assert question_answerability("When did the colonization of India not occur?", engine, 5) == 0.0
    assert question_answerability("When did the colonization of India occur?", engine, 5) > 0.0


# --- the detail asked about (names, numbers) must be where the answer is ---------------------------


def _unfound(question: str, text: str, lang: str, embedder=None) -> tuple[str, ...]:
    query = analyse(question, lang)
    return unfound_details(query, QueryTerms(query.weights), text, lang, embedder)


def test_a_year_the_sentence_does_not_state_is_unfound():
    assert _unfound("How many Huguenots lived in Amsterdam in 1705?",
                    "In 1628 the Huguenots of New Amsterdam built a church.", "en") == ("1705",)
    assert _unfound("How many Huguenots lived in Amsterdam in 1628?",
                    "In 1628 the Huguenots of New Amsterdam built a church.", "en") == ()


def test_a_century_is_held_by_a_year_of_it():
    assert _unfound("Quel fort du XVIe siècle fut bâti près d'Alby ?", "En 1564, Fort Corbie fut bâti près d'Alby.", "fr") == ()
    assert _unfound("Quel fort du XVIIe siècle fut bâti près d'Alby ?", "En 1564, Fort Corbie fut bâti près d'Alby.", "fr") == ("xvii",)
    assert _unfound("What 16th-century fort was built near Alby?", "In 1564, Fort Corbie was built near Alby.", "en") == ()
    assert _unfound("What 17th-century fort was built near Alby?", "In 1564, Fort Corbie was built near Alby.", "en") == ("17th", "centuri")


def test_a_century_asked_in_english_over_french_documents_is_held_by_a_year_of_it():
    """The question's terms are then analysed as French words (the corpus's language), but its
    century is written the English way: "16th century" is found by the English pack."""
    query = analyse("Which 16th century fort was built near Alby?", "fr", ("fr",))
    assert (query.language, query.terms_language) == ("en", "fr") and "16th" in query.strong
    text = "En 1564, le fort Corbie fut bâti près d'Alby."
    assert unfound_details(query, QueryTerms(query.weights), text, "fr") == ()
    later = "En 1664, le fort Corbie fut bâti près d'Alby."
    assert unfound_details(query, QueryTerms(query.weights), later, "fr") == ("16th",)


def test_a_swapped_name_is_unfound_in_french():
    assert _unfound("Combien de temps le fichier FICOVIE conserve-t-il les données ?",
                    "Le fichier FICOBA conserve les données dix ans.", "fr") == ("ficov",)
    assert _unfound("Combien de temps le fichier FICOBA conserve-t-il les données ?",
                    "Le fichier FICOBA conserve les données dix ans.", "fr") == ()


def test_a_name_glued_to_another_word_is_found():
    # text that lost its spaces between HTML elements
    assert _unfound("À partir de quel montant un contrat est-il recensé dans FICOVIE ?",
                    "Pour y accéder : droit d'accès indirectFICOVIE: le fichier des contrats de plus de 7 500 euros.",
                    "fr") == ()


def test_a_name_is_not_matched_by_its_stem_alone():
    # the English stemmer makes 'Regexator' 'regex'
    assert _unfound("How much does a Regexator license cost?", "Table 10: Regex options.", "en") == ("regex",)
    assert _unfound("How much does a Regexator license cost?", "A Regexator license costs $30.", "en") == ()
    assert _unfound("When did the Huguenots arrive?", "The Huguenot refugees arrived in 1685.", "en") == ()


def test_a_detail_in_the_next_sentence_counts_but_not_one_further_in_the_passage(tmp_path: Path):
    from rag.chunking import Chunk
    from rag.evidence import neighbourhood

    text = "The fort fell in 1758.\n\nIts commander was Montcalm.\n\nThe war went on.\n\nQuebec fell next."
    chunk = Chunk("c", "f.txt", 0, len(text), 1, text, "en")
    start = text.index("Its")
    around = neighbourhood(chunk, start, start + len("Its commander was Montcalm."))
    assert _unfound("Who commanded the fort in 1758?", around, "en") == ()
    assert _unfound("Who commanded the fort at Quebec?", around, "en") == ("quebec",)


class _WordVectors:
    """An embedder that knows which words mean the same ('Swiss' for 'Switzerland')."""

    name, dim = "words", 3

    def embed(self, texts):
        import numpy as np

        meaning = {"switzerland": 0, "swiss": 0, "politician": 1}
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, meaning.get(text.lower(), 2)] = 1.0
        return out


def test_a_word_close_in_meaning_holds_the_detail_only_with_an_embedder():
    sentence = "The nickname may refer to the Swiss politician Besancon Hugues."
    question = "Which politician from Switzerland gave the term?"
    assert _unfound(question, sentence, "en") == ("switzerland",)
    assert _unfound(question, sentence, "en", _WordVectors()) == ()


@pytest.fixture
def files_engine(tmp_path: Path) -> Engine:
    return engine_over(tmp_path, {
        "ficoba.txt": "FICOBA\n\nLe fichier FICOBA conserve les données des comptes bancaires pendant dix ans "
                      "après la clôture du compte.\n",
        "ficovie.txt": "FICOVIE\n\nLe fichier FICOVIE recense les contrats d'assurance-vie souscrits auprès des "
                       "assureurs.\n",
        "abbey.txt": "The abbey\n\nThe abbey was founded in 1102 by monks from Burgundy. Its library held 4,000 books "
                     "in 1450.\n",
        "town.txt": "The town\n\nA fire destroyed the town in 1620.\n",
    })


def test_a_question_on_another_file_than_the_answer_names_is_refused(files_engine):
    threshold = files_engine.settings.refusal_threshold
    question = "Combien de temps FICOVIE conserve-t-il les données des comptes ?"
    _, pool = gather_evidence(question, files_engine, 5)
    assert relevance(best_answering(pool[:4])) >= threshold  # its words alone match the FICOBA sentence
    swapped = decision_for(question, files_engine, 5)
    assert swapped.reason == "missing-detail" and swapped.refuse(threshold)
    asked = decision_for("Combien de temps FICOBA conserve-t-il les données des comptes ?", files_engine, 5)
    assert asked.reason == "" and not asked.refuse(threshold)


def test_a_question_with_another_year_than_the_answer_is_refused(files_engine):
    threshold = files_engine.settings.refusal_threshold
    _, pool = gather_evidence("How many books did the library hold in 1620?", files_engine, 5)
    assert relevance(best_answering(pool[:4])) >= threshold
    result = answer("How many books did the library hold in 1620?", files_engine, use_llm=False)
    assert result.refused and result.refusal_reason == "missing-detail"
    result = answer("How many books did the library hold in 1450?", files_engine, use_llm=False)
    assert not result.refused and "4,000" in result.text
    assert decision_for("How many books did the library hold in 1450?", files_engine, 5).score >= threshold


# --- a price with no sum of money -------------------------------------------------------------------

def test_a_price_is_not_answered_by_a_figure_that_is_no_sum_of_money(tmp_path: Path):
    engine = engine_over(tmp_path, {
        "carte.txt": "La carte\n\nLa carte de lecteur de la bibliothèque est valable 3 ans depuis 2019.\n",
        "card.txt": "The card\n\nThe museum card was renamed in 2021 after three years of debate.\n",
        "wing.txt": "The wing\n\nThe cost of the new wing was never published.\n",
    })
    result = answer("Combien coûte la carte de lecteur de la bibliothèque ?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "no-amount"
    result = answer("How much does the museum card cost?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "no-amount"


def test_a_price_stated_with_its_currency_is_answered(tmp_path: Path):
    engine = engine_over(tmp_path, {
        "carte.txt": "La carte\n\nLa carte de lecteur de la bibliothèque coûte 12 € par an depuis 2019.\n",
        "card.txt": "The card\n\nThe museum card costs 30 dollars since 2021.\n",
    })
    result = answer("Combien coûte la carte de lecteur de la bibliothèque ?", engine, use_llm=False)
    assert not result.refused and "12 €" in result.text
    result = answer("How much does the museum card cost?", engine, use_llm=False)
    assert not result.refused and "30 dollars" in result.text


def test_a_count_asked_in_the_other_language_of_the_corpus_is_answered_by_a_figure(tmp_path: Path):
    engine = engine_over(tmp_path, {
        "reserve.txt": "La réserve\n\nLa réserve Laurentides de la station de biologie accueille 85 espèces "
                       "d'oiseaux migrateurs, selon le rapport de la station.\n",
        "park.txt": "The park\n\nThe city park was opened to the public after the station was closed. Birds and other "
                    "species of the region live in the park, which the city maintains.\n",
    })
    assert set(engine.index.languages) == {"fr", "en"}
    result = answer("How many bird species visit the Laurentides biology station reserve?", engine, use_llm=False)
    assert not result.refused and "85 espèces" in result.text


def test_the_sentence_after_the_one_naming_the_subject_answers_what_it_did(tmp_path: Path):
    # the answer ('the Pakistan movement') is in a sentence that names its subject only as 'this
    # address': the question's name ('Allahabad') in the sentence before it still counts for it
    engine = engine_over(tmp_path, {
        "iqbal.txt": "Iqbal\n\nIn his Allahabad address of December 1930, Iqbal outlined a vision of a state for "
                     "the provinces of the north. This address later inspired the Pakistan movement, which grew "
                     "over the following decade.\n\nMany other speeches of the period inspired poems and songs "
                     "across the provinces of India.\n",
        "other.txt": "Speeches\n\nSpeeches were given in many cities of India during the decade of 1930, and "
                     "an address was printed in every newspaper.\n",
    })
    _, pool = gather_evidence("What did the Allahabad address inspire?", engine, 5)
    assert "Pakistan movement" in best_answering(pool).text


def test_a_question_counting_with_another_written_number_than_the_text_is_refused(tmp_path: Path):
    """'eight lectures' over 'seven lectures': the text counts the same thing otherwise. The same
    number, in words or in digits, still answers."""
    engine = engine_over(tmp_path, {
        "talks.txt": "Talks\n\nMarta Ruiz's seven English lectures were published in 1934 in a book titled The Reconstruction.\n",
        "cours.txt": "Les cours\n\nLes 8 cours du soir de l'université ont été publiés en 1950 sous le titre Leçons.\n",
    })
    refused = answer("What book were Marta Ruiz's eight English lectures published as?", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "other-number"
    same = answer("What book were Marta Ruiz's seven English lectures published as?", engine, use_llm=False)
    assert not same.refused and "Reconstruction" in same.text
    digits = answer("Sous quel titre les huit cours du soir de l'université ont-ils été publiés ?", engine, use_llm=False)
    assert not digits.refused and "Leçons" in digits.text
    other = answer("Sous quel titre les neuf cours du soir de l'université ont-ils été publiés ?", engine, use_llm=False)
    assert other.refused and other.refusal_reason == "other-number"


def test_a_question_ranking_with_another_ordinal_than_the_text_is_refused(tmp_path: Path):
    """'third in command' asked over 'his second in command': another rank; the text's own rank answers."""
    engine = engine_over(tmp_path, {
        "army.txt": "The army\n\nIn 1756 Marta Ruiz named Tomas Alby as her second in command at Corbie.\n",
    })
    refused = answer("Who did Marta Ruiz name as her third in command at Corbie?", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "other-number"
    same = answer("Who did Marta Ruiz name as her second in command at Corbie?", engine, use_llm=False)
    assert not same.refused and "Tomas Alby" in same.text


def test_a_french_rank_after_its_noun_is_another_rank_all_the_same(tmp_path: Path):
    """French ranks after the noun: 'commandant en troisième' asked over 'commandant en second'."""
    engine = engine_over(tmp_path, {
        "armee.txt": "L'armée\n\nEn 1756, Marta Ruiz nomma Tomas Alby commandant en second à Corbie.\n",
    })
    refused = answer("Qui Marta Ruiz a-t-elle nommé commandant en troisième ?", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "other-number"
    same = answer("Qui Marta Ruiz a-t-elle nommé commandant en second ?", engine, use_llm=False)
    assert not same.refused and "Tomas Alby" in same.text


def test_a_negated_question_needs_the_negation_to_bear_on_what_it_asks(tmp_path: Path):
    """A negation elsewhere in the sentence ('do not match') does not answer 'when was it not
    repaired'; a sentence negating the repair does."""
    engine = engine_over(tmp_path, {
        "bridge.txt": "The bridge\n\nThe records do not match those of the war, when the stone bridge of Alby was "
                      "repaired in 1760.\n",
        "mill.txt": "The mill\n\nThe water mill of Corbie was not repaired in 1871, after the great flood.\n",
    })
    refused = answer("When was the stone bridge of Alby not repaired?", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "negation"
    answered = answer("When was the water mill of Corbie not repaired?", engine, use_llm=False)
    assert not answered.refused and "1871" in answered.text


def test_a_question_typed_without_ne_is_negated_all_the_same(tmp_path: Path):
    """'vivaient pas', 'aucun … est parti': French typed as spoken drops "ne"; the question still
    asks about what did not happen, and the sentence saying where they lived does not answer it."""
    engine = engine_over(tmp_path, {
        "colonie.txt": "La colonie\n\nLes colons de Corbie vivaient surtout le long de la côte est, de la Nouvelle-Alby "
                       "à la Géorgie. La plupart des colons catholiques partirent pour Cuba en 1764.\n",
    })
    refused = answer("où est-ce que les colons de corbie vivaient pas", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "negation"
    assert not answer("où est-ce que les colons de corbie vivaient", engine, use_llm=False).refused
    assert sorted(negated_terms(analyse("où aucun colon catholique est parti", "fr"))) == ["cathol", "colon"]
    assert not analyse("Les colons avançaient-ils pas à pas ?", "fr").negated
    assert not analyse("Quel fut le premier pas des colons ?", "fr").negated


def test_a_negation_the_sentence_shares_with_the_question_answers_it(tmp_path: Path):
    """'si ruiz avait pas validé' negates what Ruiz did, as the sentence's 'si Marta Ruiz n'avait
    pas approuvé' does: the word before a negation is what it bears on too."""
    engine = engine_over(tmp_path, {
        "siege.txt": "Le siège\n\nÀ son arrivée à Corbie, Tomas Alby refusa d'agir si "
                     "Marta Ruiz n'avait pas approuvé ses plans.\n",
    })
    answered = answer("qui refusait d'agir si marta ruiz avait pas validé les plans", engine, use_llm=False)
    assert not answered.refused and "Tomas Alby" in answered.text
    assert "ruiz" in negated_terms(analyse("qui refusait d'agir si ruiz avait pas validé les plans", "fr"))


def test_a_negation_that_says_until_when_negates_nothing(tmp_path: Path):
    """'tant que Marta Ruiz avait pas validé les plans' is 'until Marta Ruiz approved them' (the
    French pack's `not_negating`): the English sentence that says so without a negation is not
    refused for a negation it lacks, and the French one that says it with one answers."""
    (tmp_path / "en").mkdir(), (tmp_path / "fr").mkdir()
    english = engine_over(tmp_path / "en", {
        "siege.txt": "The siege\n\nWhen he arrived in Corbie, Tomas Alby refused to act until Marta Ruiz approved "
                     "his plans.\n",
    })
    french = engine_over(tmp_path / "fr", {
        "siege.txt": "Le siège\n\nÀ son arrivée à Corbie, Tomas Alby refusa d'agir tant que Marta Ruiz n'avait "
                     "pas approuvé ses plans.\n",
    })
    assert not analyse("qui refusait d'agir tant que marta ruiz avait pas validé les plans", "fr").negated
    assert analyse("qui n'a pas agi tant que marta ruiz hésitait", "fr").negated
    question = "qui refusait d'agir tant que marta ruiz avait pas validé les plans"
    assert decision_for(question, english, 5).reason != "negation"
    result = answer(question, french, use_llm=False)
    assert not result.refused and "Tomas Alby" in result.text


def test_a_question_typed_without_capitals_still_names_its_details(tmp_path: Path):
    """'amsterdam' typed in lower case is the name the documents write 'Amsterdam': a detail the
    answer must hold, weighted as a name, as it is when typed with its capital."""
    engine = engine_over(tmp_path, {
        "manakin.txt": "Manakin\n\nLe 12 mai 1705, une loi naturalisa les 148 huguenots qui vivaient encore à Manakin.\n",
        "ports.txt": "Les ports\n\nLes réfugiés gagnèrent le port d'Amsterdam, puis celui de Rotterdam, vers 1690.\n",
    })
    typed = gather("combien de huguenots vivaient à amsterdam en 1705", engine, 5)
    written = gather("Combien de huguenots vivaient à Amsterdam en 1705 ?", engine, 5)
    assert typed[3].strong == written[3].strong == {"amsterdam", "1705"}
    assert typed[3].weights["amsterdam"] == written[3].weights["amsterdam"]
    assert typed[1][0].unfound == written[1][0].unfound == ("amsterdam",)  # the Manakin sentence
    assert analyse("combien de huguenots vivaient à amsterdam en 1705", "fr").strong == {"1705"}


def test_a_french_question_turning_a_word_into_its_opposite_is_refused(tmp_path: Path):
    """The French pack's antonyms (fr-antonyms.tsv, written by hand): 'naissance' asked where the
    sentence says 'mort'; the question with the sentence's own word is answered. 'Fort Alby' is a
    name, not the opposite of 'faible'."""
    engine = engine_over(tmp_path, {
        "corbie.txt": "Le commandement\n\nAprès la mort de Corbie, William Marlow prit le commandement des forces "
                      "de la colonie.\n",
        "fort.txt": "Le fort\n\nLe point faible de la colonie était le Fort Alby, que Dunmore attaqua en 1756.\n",
    })
    refused = answer("Après la naissance de Corbie, qui commandait les forces de la colonie ?", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "opposite"
    answered = answer("Après la mort de Corbie, qui commandait les forces de la colonie ?", engine, use_llm=False)
    assert not answered.refused and "William Marlow" in answered.text
    assert not answer("Qui a attaqué le point faible de la colonie ?", engine, use_llm=False).refused


def test_a_question_turning_a_word_into_its_opposite_is_refused(tmp_path: Path):
    """'strength' asked where the sentence says 'weakness' of the same supply chain: refused as the
    opposite; the same question with the sentence's own word is answered, and so is one whose
    sentence holds both words."""
    engine = engine_over(tmp_path, {
        "army.txt": "The campaign\n\nIn 1756 scouts reported the weakness of the Corbie supply chain near Lake Alby.\n",
        "fleet.txt": "The fleet\n\nIn 1759 the strength and the weakness of the Marlow convoy system were weighed at Dunmore.\n",
    })
    refused = answer("Where was there a strength in the Corbie supply chain?", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "opposite"
    assert answer_json(refused)["refusal_reason"] == "opposite"  # what `rag ask --json` says
    answered = answer("Where was there a weakness in the Corbie supply chain?", engine, use_llm=False)
    assert not answered.refused and "Lake Alby" in answered.text
    assert answer_json(answered)["refusal_reason"] is None
    both = answer("Where was the strength of the Marlow convoy system weighed?", engine, use_llm=False)
    assert not both.refused and "Dunmore" in both.text


def test_a_sentence_answers_about_the_names_of_the_sentence_before_it(tmp_path: Path):
    """'Founded as a broad coalition in 1989, it...' answers 'When was the Corbie Front founded?': the
    names it leaves to the sentence before count as its own, so it beats that sentence, which has
    the names and a year but says nothing of a founding."""
    engine = engine_over(tmp_path, {
        "front.txt": "The Corbie Front\n\nThe Corbie Front won sweeping victories in the local elections of the northern "
                     "provinces and was going to win the national elections of 1991 when voting was canceled by a "
                     "military coup of the generals. Founded in 1989, it was led by Tomas Alby.\n",
        "other.txt": "Rallies\n\nThe Corbie Front held rallies across the provinces in 1990.\n",
    })
    result = answer("When was the Corbie Front founded?", engine, use_llm=False)
    assert not result.refused and "1989" in result.text and "1991" not in result.text


def test_a_sentence_naming_its_own_subject_does_not_take_the_names_of_the_one_before(tmp_path: Path):
    """'En comparaison, OpenAI a utilisé 25 000 GPU A100' names its own subject: DeepSeek and H800,
    named by the sentence before, do not count for it, so the answer quotes the DeepSeek figure first."""
    engine = engine_over(tmp_path, {
        "gpu.txt": "Les chiffres\n\nLes chiffres sont révélateurs : le développement de DeepSeek a été réalisé avec "
                   "seulement 2 000 GPU H800 de Nvidia. En comparaison, il est rapporté qu'OpenAI a utilisé "
                   "25 000 GPU A100 pour entraîner ChatGPT 4.\n",
        "autre.txt": "Marché\n\nLe marché des GPU a chuté après l'annonce de DeepSeek.\n",
    })
    result = answer("Combien de GPU H800 DeepSeek a-t-il utilisés ?", engine, use_llm=False)
    assert not result.refused and "2 000 GPU H800" in result.citations[0].quote


def test_a_question_naming_what_no_document_names_is_refused(engine):
    """The abbey's founding is in the corpus; the abbey of Cluny is not, however well the rest of
    the question matches. A name the corpus writes in another form ('Burgundian') is no such name."""
    result = answer("When was the Cluny abbey founded by monks from Burgundy?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "unknown-name"
    assert answer("When was the abbey founded?", engine, use_llm=False).text.count("1102") == 1
    decision = decision_for("When was the abbey that holds a library of books founded by Burgundian monks?", engine, 5)
    assert decision.reason != "unknown-name"  # (its rare words may still refuse it: "unknown-terms")
    # a short name one letter away from the corpus's is a typo of it, not another name
    assert decision_for("When did the colonization of Inda occur under the East India Company?", engine, 5).reason != "unknown-name"


def test_a_name_one_letter_from_a_shorter_word_is_still_unknown(tmp_path: Path):
    """'Paris' is one letter from 'pai', the stem of the French 'payée', but a stem shorter than a
    name is another word's, not a typo of it: the question about Paris is refused (before: answered
    with the London row). 'Londn' is still a typo of 'London'."""
    engine = engine_over(tmp_path, {
        "expenses.md": "# Expenses\n\n| Expense | Limit |\n|---|---|\n| Hotel, per night (London) | £180 |\n"
                       "| Meals, per day | £35 |\n\nClaims are paid within 60 days.\n",
        "redevance.md": "# Redevance\n\nLa redevance est payée par les abonnés, sur leur facture.\n",
    })
    result = answer("What is the hotel limit per night in Paris?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "unknown-name"
    assert "£180" in answer("What is the hotel limit per night in London?", engine, use_llm=False).text
    assert decision_for("What is the hotel limit per night in Londn?", engine, 5).reason != "unknown-name"


def test_a_number_no_document_holds_is_refused_like_a_name(tmp_path: Path):
    """'plus de 65 ans' over rules that never say 65: refused (before: answered with the fee for
    those living elsewhere). A number the documents write as a word ('vingt ans') is known, and
    a round thousand may be written with its magnitude's word."""
    engine = engine_over(tmp_path, {
        "inscription.md": "# Inscription\n\nL'inscription est gratuite pour les habitants de la commune. Les "
                          "personnes domiciliées hors de la commune acquittent une cotisation annuelle de 15 euros.\n",
        "pret.md": "# Prêt\n\nLes jeunes de moins de vingt ans empruntent sans frais, jusqu'à 10 documents.\n",
    })
    result = answer("Combien coûte l'inscription pour un habitant de plus de 65 ans ?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "unknown-name"
    assert "15 euros" in answer("Combien coûte l'inscription hors de la commune ?", engine, use_llm=False).text
    assert decision_for("Combien de documents empruntent les jeunes de moins de 20 ans ?", engine, 5).reason != "unknown-name"
    assert decision_for("Combien coûte l'inscription pour 3000 habitants ?", engine, 5).reason != "unknown-name"


def test_a_sum_is_taken_from_the_sentence_that_states_one(tmp_path: Path):
    """The sentence holding the question's words ('construction', 'cost') but a shipwreck's cost in
    lives is not the answering one: the one with the sum is (before: refused, 'no-amount')."""
    engine = engine_over(tmp_path, {
        "light.md": "# History\n\nConstruction began in 1841 after a series of shipwrecks, the worst of which "
                    "cost 19 lives. The Board paid £14,000 for the work. Three keepers lived there.\n",
        "today.md": "# Today\n\nThe museum is open from April to October.\n",
    })
    result = answer("How much did the construction cost?", engine, use_llm=False)
    assert not result.refused and "£14,000" in result.citations[0].quote


def test_the_word_for_a_kind_of_thing_is_no_unknown_word(tmp_path: Path):
    """'what kind of lens': 'kind' says what is asked; the article never uses it, and it is not
    the unknown word that makes the question one the documents cannot answer (before: refused,
    'unknown-terms')."""
    engine = engine_over(tmp_path, {
        "light.md": "# Skerry Point\n\nThe lighthouse was first lit in 1844. The lighthouse had a first-order "
                    "Fresnel lens, now displayed in Edinburgh.\n",
    })
    result = answer("what kind of lens did the lighthouse have", engine, use_llm=False)
    assert not result.refused and "Fresnel" in result.text
    assert answer("what kind of lens did the lighthouse in Oban have", engine, use_llm=False).refused


LIGHTHOUSE = """# Skerry Point Lighthouse

Skerry Point Lighthouse is a disused lighthouse on the northern tip of the island of Hallow, off the west coast of Scotland. It was designed by the engineer Alan Stevenson and first lit on 12 October 1844. The tower is 26 metres tall and built of granite quarried on the neighbouring island of Tiree.

## History

Construction began in 1841 after a series of shipwrecks in the Sound of Hallow, the worst of which, the loss of the brig Margaret in 1837, cost 19 lives. The Northern Lighthouse Board paid £14,000 for the work. Three keepers and their families lived in cottages at the foot of the tower.

The light was converted to paraffin in 1903 and electrified in 1962. It was automated in 1985, when the last keepers left the island. Because a new beacon on the Dubh Sgeir rocks made it redundant, the lighthouse was decommissioned in 2009.

## Today

Since 2014 the keepers' cottages have been owned by the Hallow Heritage Trust, which runs them as a museum. The museum is open from April to October and welcomes about 6,000 visitors a year. The tower itself is closed to the public because its spiral staircase of 132 steps is considered unsafe.

The lighthouse is a Category A listed building. Its original first-order Fresnel lens is displayed at the National Museum of Scotland in Edinburgh.
"""


def test_the_word_for_what_is_asked_weighs_nothing_where_no_document_uses_it(tmp_path: Path):
    """'Which organisation paid…': the documents name the organisation ('the Northern Lighthouse
    Board'), never the word 'organisation'; that word, the rarest of the question, no longer takes
    most of the coverage every sentence can have (before: 0.33 for the answering sentence, which
    the real embedder's similarity left under the bar: refused, 'weak-match')."""
    engine = engine_over(tmp_path, {"lighthouse.md": LIGHTHOUSE})
    _, pool, _, _ = gather("Which organisation paid for the lighthouse?", engine, 5)
    assert "Northern Lighthouse Board" in pool[0].text and pool[0].coverage > 0.9  # before: 0.33
    result = answer("Which organisation paid for the lighthouse?", engine, use_llm=False)
    assert not result.refused and "Northern Lighthouse Board" in result.citations[0].quote


PONT = """# Pont de Valmorin

Le pont de Valmorin est un pont suspendu qui franchit la Durance entre les communes de Valmorin et de Saint-Géry, dans les Alpes-de-Haute-Provence. Long de 312 mètres, il fut le plus long pont suspendu de France lors de son inauguration, le 3 juin 1887.

## Histoire

Avant sa construction, la traversée se faisait par un bac, qui chavira en 1869 : l'accident fit 14 victimes. Le conseil général décida alors de construire un ouvrage fixe et en confia la conception à l'ingénieur Jules Arnaudet, élève de l'École polytechnique. Les travaux durèrent quatre ans et coûtèrent 1,2 million de francs.

Pendant la Seconde Guerre mondiale, le tablier fut dynamité par les troupes allemandes en retraite, en août 1944. Il fut reconstruit à l'identique entre 1946 et 1949, grâce aux plans originaux conservés aux archives départementales.

## Aujourd'hui

Depuis l'ouverture du viaduc de l'autoroute A51 en 1999, le pont n'est plus ouvert qu'aux piétons et aux cyclistes. Il est inscrit aux monuments historiques depuis 2005. Une fête y est organisée chaque année le premier dimanche de juin, en souvenir de l'inauguration.
"""


def test_a_sum_in_a_currency_of_history_is_a_sum(tmp_path: Path):
    """'1,2 million de francs' states a sum (before: refused, 'no-amount'); a cost the article
    does not give is still refused."""
    engine = engine_over(tmp_path, {"pont.md": PONT})
    result = answer("Combien a coûté la construction du pont ?", engine, use_llm=False)
    assert not result.refused and "francs" in result.citations[0].quote
    assert answer("Combien a coûté la reconstruction du pont ?", engine, use_llm=False).refused


def test_the_measure_asked_for_weighs_nothing_where_no_document_uses_its_word(tmp_path: Path):
    """'Quelle est la longueur du pont ?' over 'Long de 312 mètres…': the article never says
    'longueur' (before: the answering sentence's coverage 0.2, refused, 'weak-match')."""
    engine = engine_over(tmp_path, {"pont.md": PONT})
    _, pool, _, _ = gather("Quelle est la longueur du pont ?", engine, 5)
    assert "312 mètres" in pool[0].text and pool[0].coverage > 0.9
    assert "312 mètres" in answer("Quelle est la longueur du pont ?", engine, use_llm=False).text


def test_a_negating_prefix_turns_a_french_word_into_its_opposite(tmp_path: Path):
    """'un dossier incomplet' asked where the sentence speaks of 'un dossier complet' (the French
    antonyms of administrative text): refused as the opposite; the question about a complete file is answered."""
    engine = engine_over(tmp_path, {
        "faq.md": "# Instruction\n\nLe délai d'instruction d'un dossier complet est de quatre mois en moyenne.\n",
        "aides.md": "# Aides\n\nLes associations peuvent déposer une demande d'aide. Le délai de paiement "
                    "est de trente jours.\n\n# Pièces\n\nLa liste des pièces est en ligne. Nous écrivons au "
                    "demandeur dont le dossier est incomplet.\n",
    })
    refused = answer("Quel est le délai d'instruction d'un dossier incomplet ?", engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "opposite"
    assert "quatre mois" in answer("Quel est le délai d'instruction d'un dossier complet ?", engine, use_llm=False).text


def test_a_number_that_begins_a_name_counts_nothing():
    """'Seven Years' in the war's name is not seven years asked about: 'six years' of fighting is
    no other number; 'seven bridges' asked over 'six bridges' still is."""
    from rag.policy import other_number

    q = analyse("How long did the fighting last in the Seven Years War?", "en")
    assert not other_number(q, "On the mainland the fighting was concluded in six years.", "en")
    q = analyse("Who built the town's seven bridges?", "en")
    assert other_number(q, "Its six bridges were built by monks.", "en")
    # typed in lower case, the name is known by how the documents write it ("la guerre de Sept Ans")
    q = with_corpus_names(analyse("les combats ont duré combien de temps pendant la guerre de sept ans", "fr"),
                          ["Elle fut le théâtre américain de la guerre de Sept Ans, qui opposa la France à la Grande-Bretagne."])
    assert not other_number(q, "Sur le continent, les combats prirent fin au bout de six ans.", "fr")
    q = analyse("les combats ont duré combien de temps pendant la guerre de sept ans", "fr")
    assert other_number(q, "Sur le continent, les combats prirent fin au bout de six ans.", "fr")


def test_the_words_that_only_say_what_is_asked_are_no_unknown_words(tmp_path):
    """'How long' asks for a duration: 'long' is no detail the corpus must use. And 'ouvriers'
    says what is counted: a corpus that uses it does not make the question's other words weigh
    more (a small corpus, where one unknown word weighs a lot)."""
    small = engine_over(tmp_path, {
        "siege.txt": "The siege of the town was lifted on 8 May 1429, after seven months of encirclement.\n",
        "canal.txt": "Le chantier emploie jusqu'à 12 000 ouvriers, dont de nombreuses femmes.\n",
        "river.txt": "The river rises in a glacier and flows into the sea.\n",
        "abbey.txt": "The abbey holds a library of four thousand books.\n",
        "bridge.txt": "The bridge was rebuilt in stone after the flood.\n",
    })
    for question in ("How long did the siege of the town last?", "Combien d'ouvriers ont travaillé sur le chantier ?"):
        decision = decision_for(question, small, 5)
        assert decision.reason != "unknown-terms", question
        assert not decision.refuse(small.settings.refusal_threshold), question
    from rag.lexical import LexicalIndex
    from rag.policy import unknown_share

    texts = ["Le chantier emploie 12 000 ouvriers.", "Le fleuve se jette dans la mer.", "Le pont est en pierre.",
             "La ville compte trois églises.", "Le roi signe un édit.", "La récolte fut bonne."]
    lexical = LexicalIndex.build(texts, ["fr"] * len(texts))
    asked = QueryTerms({"ouvri": 1.0, "travaill": 1.0, "chanti": 1.0})  # 'travaill' is nowhere
    assert unknown_share(asked, lexical, frozenset({"ouvri"})) < 0.5  # 'ouvri' is known: it counts
    assert unknown_share(asked, lexical, frozenset({"ouvri", "travaill"})) == 0.0  # an unknown frame word does not


def test_a_sum_asked_for_is_stated_by_the_sentence_that_answers(tmp_path):
    """"What is the price of…" is not answered by the sentence on the thing asked about that
    states no sum ('holds 4,000 books'), because another passage states one for something else."""
    small = engine_over(tmp_path, {
        "abbey.txt": "The abbey\n\nThe abbey's library holds 4,000 books in its north wing.\n\n"
                     "In 1650 the abbey sold its water mill for 300 pounds.\n",
        "bridge.txt": "The bridge was rebuilt in stone after the flood.\n",
    })
    result = answer("What is the price of the abbey's library?", small, use_llm=False)
    # (the sentence stating no sum is no answer of the asked kind: its score falls under the bar
    # before the no-amount rule reads it)
    assert result.refused and result.refusal_reason in ("no-amount", "weak-match")
    sold = answer("What was the price of the abbey's water mill?", small, use_llm=False)
    assert not sold.refused and "300 pounds" in sold.text


def test_a_question_whose_complement_the_sentence_replaces_is_refused(tmp_path: Path):
    """'le refus des notifications push' asked where the sentence speaks of 'le refus des cookies':
    another refusal, refused as a changed complement; the question with the sentence's own
    complement is answered, and so is one whose complement is beside the sentence."""
    engine = engine_over(tmp_path, {
        "cookies.txt": "Les cookies\n\nLa Corbie recommande de conserver le refus des cookies pendant une durée de 6 mois.\n",
        "alertes.txt": "Les alertes\n\nLes notifications push sont envoyées par les applications mobiles de la Corbie "
                       "chaque semaine.\n",
    })
    refused = answer("Pendant combien de temps la Corbie recommande-t-elle de conserver le refus des notifications push ?",
                     engine, use_llm=False)
    assert refused.refused and refused.refusal_reason == "changed-complement"
    answered = answer("Pendant combien de temps la Corbie recommande-t-elle de conserver le refus des cookies ?",
                      engine, use_llm=False)
    assert not answered.refused and "6 mois" in answered.text


def test_a_complement_the_question_also_names_is_no_change(tmp_path: Path):
    """'a retaliation for the prior assassination' is answered by 'in retaliation for the
    assassination': the sentence's complement is a word of the question; 'refused to act' is a
    verb and its infinitive, not a noun and its complement. A trial 'for heresy' asked about as a
    trial 'for treason' is not refused for it when the next sentence speaks of treason; asked about
    as a trial 'for witchcraft', which only another document speaks of, it is."""
    engine = engine_over(tmp_path, {
        "brotherhood.txt": "The Brotherhood\n\nIts founder Tomas Alby was assassinated in 1949 in retaliation for the "
                           "assassination of prime minister Corbie Marlow.\n",
        "trial.txt": "The trial\n\nHer trial for heresy was presided over by Pierre Dunmore, bishop of Alby, in 1431. "
                     "Treason was a crime judged by the royal courts.\n",
        "witches.txt": "Witches\n\nWitchcraft was judged by the church courts of the region.\n",
        "army.txt": "The army\n\nWhen he arrived in Albany, General Corbie refused to take any significant actions until "
                    "the governor approved them.\n",
    })
    retaliation = answer("Tomas Alby's assassination was a retaliation for the prior assassination of whom?", engine,
                         use_llm=False)
    assert not retaliation.refused and "Corbie Marlow" in retaliation.text
    act = answer("Who refused to act until the governor approved plans?", engine, use_llm=False)
    assert act.refusal_reason != "changed-complement"
    treason = answer("Who presided over her trial for treason in 1431?", engine, use_llm=False)
    assert treason.refusal_reason != "changed-complement"  # "treason" is beside the sentence
    other = answer("Who presided over her trial for witchcraft in 1431?", engine, use_llm=False)
    assert other.refused and other.refusal_reason == "changed-complement"
