"""Refusal study (issue #16): which signals tell answerable from unanswerable questions on every
corpus, and how a refusal threshold could be set for a corpus nobody wrote a gold set for.

No generator is loaded: every gold question goes through `gather_evidence()` (retrieval and evidence
selection, the part of `answer()` that decides refusals), then candidate features are computed
from the passages and evidence. For each set the script prints each feature's ROC AUC (answerable
against unanswerable; every feature is oriented beforehand so that *higher means answerable*, so an
AUC under 0.5 means the feature points the wrong way on that set), then refusal accuracy (share of
unanswerable questions refused) and false refusals (share of answerable ones refused) for:

  oracle     a threshold chosen on the set itself (the most refusals with false refusals <= 0.10);
  shared     one threshold for all sets (the one maximising the worst set's refusal accuracy while
             every set keeps false refusals <= 0.10, or, when none does, the one with the least worst
             false-refusal rate);
  LOSO       leave one set out: the shared threshold chosen on the other sets, applied to this one
             (the honest figure for a corpus nobody calibrated on);
  corpus     rules that read only the corpus: answerability under a percentile of the answerability
             of pseudo-questions made from the corpus's own sentences (see `pseudo_questions`).

A logistic model over several features is also trained leave-one-set-out (sets weighted equally,
classes balanced) and thresholded the same way.

Sets (indexes are built on first use with `rag index` when missing):
  squad2-en   ../shared/devsets/squad2-en (240 answerable, 80 adversarial unanswerable, English)
  seeds       seeds/gold.jsonl (60 / 12, French news, 13 English questions)
  realdocs    ../shared/devsets/realdocs (34 / 7, PDF, DOCX, HTML, Markdown, fr + en)
  cnil-fr     ../shared/devsets/cnil-faq corpus with benchmarks/devsets/cnil-factoid.jsonl (41
              answerable, short answers) and benchmarks/devsets/cnil-unanswerable.jsonl (45)
  cnil-titles the FAQ's own 256 titles as questions (all answerable: false refusals only)

    python benchmarks/refusal_study.py                 # everything: 15-25 min on 2 busy cores, then seconds from the cache
    python benchmarks/refusal_study.py --sets seeds squad2-en --json /tmp/rs.json
    python benchmarks/refusal_study.py --fresh         # recompute instead of reading the cache

Features are cached per set in --cache (default /tmp/refusal_study), keyed by the index build and
the question; --fresh recomputes them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "devsets"
HERE = Path(__file__).resolve().parent

SETS = {
    "squad2-en": (SHARED / "squad2-en" / "corpus", "rs-sq", [SHARED / "squad2-en" / "questions.jsonl"]),
    "seeds": (ROOT / "seeds", "rs-seeds", [ROOT / "seeds" / "gold.jsonl"]),
    "realdocs": (SHARED / "realdocs" / "corpus", "rs-rd", [SHARED / "realdocs" / "questions.jsonl"]),
    "cnil-fr": (SHARED / "cnil-faq" / "corpus", "rs-cnil",
                [HERE / "devsets" / "cnil-factoid.jsonl", HERE / "devsets" / "cnil-unanswerable.jsonl"]),
    "cnil-titles": (SHARED / "cnil-faq" / "corpus", "rs-cnil", [SHARED / "cnil-faq" / "questions.jsonl"]),
}
LABELLED = ("squad2-en", "seeds", "realdocs", "cnil-fr")  # sets with both kinds of question

# What a language pack could hold (rag/languages/<lang>.py, or a data file beside ui.py read by one
# `markers(language, "negation")` helper), not library code: the words that negate a clause. English
# needs one of them ("n't" on the folded text); written French negates with "ne"/"n'" *and* a second
# word, so "sans", "personne", "rien" alone (a "personne morale", "sans consentement") are no negation.
NEGATION = {
    "en": {"any": {"not", "never", "cannot", "neither", "nor", "nobody", "nothing", "none"}, "suffix": "n't"},
    "fr": {"first": {"ne", "n"}, "second": {"pas", "jamais", "plus", "aucun", "aucune", "rien", "personne",
                                             "guere", "nullement", "point", "nulle", "nul"},
           # literary negation with "ne" alone: "ne peut excéder", "ne saurait"
           "alone_before": {"peut", "peuvent", "pouvait", "pourra", "saurait", "sauraient", "cesse", "ose"}},
}
FEATURE_VERSION = 2  # bump when question_features() changes: cached features are recomputed


def has_negation(text: str) -> bool:
    from rag.text import fold

    folded = fold(text)
    tokens = re.findall(r"[a-z]+(?:'t)?", folded)  # "n'a" -> "n", "a"; "wasn't" -> "wasn't"
    en, fr = NEGATION["en"], NEGATION["fr"]
    if any(t in en["any"] or t.endswith(en["suffix"]) for t in tokens):
        return True
    for i, t in enumerate(tokens):
        if t in fr["first"] and (any(u in fr["second"] for u in tokens[i + 1: i + 6])
                                 or tokens[i + 1: i + 2] and tokens[i + 1] in fr["alone_before"]):
            return True
    return False


# Off-topic questions (a language pack could ship them): what any corpus "answers" by accident. Their
# answerability in a corpus is a floor measured on the corpus itself, with no gold set.
OFF_TOPIC = {
    "fr": [
        "Quelle est la capitale de l'Australie ?", "Combien de joueurs compte une équipe de rugby à XV ?",
        "Qui a peint La Joconde ?", "En quelle année a eu lieu la bataille de Marignan ?",
        "Combien de temps faut-il pour cuire un œuf dur ?", "Quelle est la hauteur du mont Blanc ?",
        "Qui a écrit Les Misérables ?", "Combien de cordes a un violon ?",
        "Quelle est la température d'ébullition de l'eau au sommet de l'Everest ?",
        "Quel club a gagné la Ligue des champions en 1993 ?", "Combien de pattes a une araignée ?",
        "Quand la tour Eiffel a-t-elle été construite ?", "Quelle est la recette de la pâte à crêpes ?",
        "Combien de lunes possède la planète Mars ?", "Qui a composé la Symphonie du Nouveau Monde ?",
        "Quel est le plus long fleuve d'Afrique ?", "Combien coûte un timbre pour une lettre en Italie ?",
        "Pendant combien de temps un ours hiberne-t-il ?", "Quelle langue parle-t-on au Brésil ?",
        "Combien de calories contient une banane ?", "Qui a inventé le téléphone ?",
        "En quelle année l'homme a-t-il marché sur la Lune ?", "Quelle est la vitesse maximale d'un guépard ?",
        "Combien de temps dure un match de handball ?", "Quel est le prix moyen d'un vélo électrique ?",
        "Quelle entreprise fabrique la console Switch ?", "Combien d'habitants compte la ville de Lyon ?",
        "Qui a remporté le Tour de France en 1998 ?", "Quelle est la couleur du sang d'un poulpe ?",
        "Combien de pétales a une marguerite ?",
    ],
    "en": [
        "What is the capital of Australia?", "How many players are on a rugby union team?",
        "Who painted the Mona Lisa?", "In what year was the Battle of Hastings?",
        "How long does it take to boil an egg?", "How tall is Mount Everest?",
        "Who wrote Pride and Prejudice?", "How many strings does a violin have?",
        "At what temperature does water boil on top of Everest?", "Which club won the 1999 Champions League?",
        "How many legs does a spider have?", "When was the Eiffel Tower built?",
        "What is the recipe for pancake batter?", "How many moons does Mars have?",
        "Who composed the New World Symphony?", "What is the longest river in Africa?",
        "How much does a stamp for a letter to Italy cost?", "How long do bears hibernate?",
        "What language is spoken in Brazil?", "How many calories are in a banana?",
        "Who invented the telephone?", "In what year did humans first walk on the Moon?",
        "How fast can a cheetah run?", "How long is a handball match?",
        "What is the average price of an electric bike?", "Which company makes the Switch console?",
        "How many people live in Lyon?", "Who won the 1998 Tour de France?",
        "What colour is an octopus's blood?", "How many petals does a daisy have?",
    ],
}


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class Question:
    id: str
    question: str
    unanswerable: bool


def read_questions(paths: list[Path]) -> list[Question]:
    questions = []
    for path in paths:
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                questions.append(Question(str(row["id"]), row["question"], bool(row.get("unanswerable", False))))
    return questions


def ensure_index(corpus: Path, index: Path) -> None:
    if (index / "CURRENT").is_file():
        return
    print(f"building {index} from {corpus} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "rag", "index", "--corpus", str(corpus), "--index", str(index)],
                   check=True, cwd=ROOT)


def load_engine(index: Path):
    from rag.pipeline import Engine
    from rag.settings import Settings

    return Engine.load(Settings.from_env().with_overrides(index_dir=index, use_llm=False))


# ---------------------------------------------------------------------------------------------
# features


class Corpus:
    """Per-index helpers: idf, which chunks hold a term, chunk vectors by id."""

    def __init__(self, engine):
        self.engine = engine
        self.lexical = engine.index.lexical
        self._indptr = self.lexical.indptr
        self._indices = self.lexical.indices
        self.vocab = self.lexical.vocabulary
        self.n = self.lexical.size
        self.idf_max = self.lexical.idf("\x00absent\x00")  # what a term the corpus never uses weighs
        self.row = {c.id: i for i, c in enumerate(engine.index.chunks)}
        self._random_sentences = None

    def random_sentence_vectors(self, n: int = 300, seed: int = 1) -> np.ndarray:
        """Embeddings of n random sentences of the corpus (computed once): the similarity a question
        gets from any sentence of this corpus, with this embedder, in this language."""
        if self._random_sentences is None:
            from rag.text import sentence_spans

            rng = random.Random(seed)
            chunks = self.engine.index.chunks
            texts = []
            for _ in range(20 * n):
                c = rng.choice(chunks)
                spans = [s for s in sentence_spans(c.text) if s[1] - s[0] >= 40]
                if spans:
                    a, b = rng.choice(spans)
                    texts.append(c.text[a:b])
                if len(texts) == n:
                    break
            self._random_sentences = self.engine.embedder.embed(texts)
        return self._random_sentences

    def chunks_with(self, term: str) -> np.ndarray:
        column = self.vocab.get(term)
        if column is None:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._indices[self._indptr[column]: self._indptr[column + 1]])

    def best_chunk_coverage(self, weights: dict[str, float], terms) -> float:
        """The highest idf-weighted share of the question's terms that any single chunk of the whole
        corpus holds (stand-ins credited by their similarity): does any passage anywhere put all
        the question's words together?"""
        total = sum(weights.values()) or 1.0
        acc = np.zeros(self.n, dtype=np.float64)
        for term, w in weights.items():
            credit = np.zeros(self.n, dtype=np.float64)
            credit[self.chunks_with(term)] = 1.0
            for match, s in terms.stand_ins.get(term, {}).items():
                ids = self.chunks_with(match)
                credit[ids] = np.maximum(credit[ids], s)
            acc += w * credit
        return float(acc.max() / total) if self.n else 0.0


def question_features(question: str, engine, corpus: Corpus, k: int) -> dict:
    from rag import answer_type
    from rag.embedders import query_embedder
    from rag.evidence import term_idf, answerability
    from rag.pipeline import gather_evidence
    from rag.text import analyze, query_weights

    hits, pool = gather_evidence(question, engine, k)
    evidence = pool[: engine.settings.evidence_sentences]
    retriever = engine.retriever
    terms = retriever.query_terms(question)
    weights = {t: w * term_idf(t, terms, corpus.lexical) for t, w in terms.weights.items()}
    total = sum(weights.values()) or 1.0
    boosted = {t for t, w in query_weights(question).items() if w > 1.0}  # names, numbers, model names
    idf_norm = {t: term_idf(t, terms, corpus.lexical) / corpus.idf_max for t in terms.weights}
    rare = {t for t, v in idf_norm.items() if v >= 0.6}
    strong = boosted | rare
    wanted = answer_type.expected(question)

    f: dict[str, float] = {}
    f["kind"] = wanted.kind if wanted else "none"
    f["answerability"] = answerability(evidence)
    fitting = [e for e in evidence if e.fits]
    best = max(fitting, key=lambda e: e.coverage + 0.5 * e.similarity) if fitting else (evidence[0] if evidence else None)
    f["fits_any"] = float(bool(fitting))
    f["n_fit_pool"] = float(sum(e.fits for e in pool))
    f["coverage"] = best.coverage if fitting else 0.0
    f["similarity"] = best.similarity if fitting else 0.0
    f["coverage_any"] = max((e.coverage for e in evidence), default=0.0)  # ignoring the answer kind
    f["similarity_any"] = max((e.similarity for e in evidence), default=0.0)
    f["answerability_any"] = max((e.coverage + 0.5 * e.similarity for e in evidence), default=0.0)
    f["evidence_score"] = evidence[0].score if evidence else 0.0

    def found(term: str, bag: set[str]) -> float:
        return terms.credit(term, bag)

    if best is not None:
        sentence = set(analyze(best.text))
        passage = set(analyze(best.chunk.text))
    else:
        sentence, passage = set(), set()
    retrieved = set().union(*(set(analyze(h.chunk.text)) for h in hits)) if hits else set()
    in_corpus = {t for t in terms.weights if t in corpus.vocab or any(m in corpus.vocab for m in terms.stand_ins.get(t, {}))}

    def missing(bag: set[str], among: set[str]) -> list[str]:
        return [t for t in among if found(t, bag) < 0.5]

    f["strong_terms"] = float(len(strong))
    for name, bag in (("sentence", sentence), ("passage", passage), ("retrieved", retrieved)):
        miss = missing(bag, strong)
        f[f"strong_missing_{name}"] = float(len(miss))
        f[f"strong_missing_{name}_share"] = len(miss) / len(strong) if strong else 0.0
        f[f"idf_mass_missing_{name}"] = sum(weights[t] * (1 - found(t, bag)) for t in weights) / total
        f[f"max_idf_missing_{name}"] = max((idf_norm[t] for t in missing(bag, set(weights))), default=0.0)
    f["boosted_missing_sentence"] = float(len(missing(sentence, boosted)))
    f["strong_missing_corpus"] = float(len([t for t in strong if t not in in_corpus]))
    f["terms_missing_corpus_share"] = sum(weights[t] for t in weights if t not in in_corpus) / total
    # present somewhere in the corpus, but not in the best sentence: a swapped entity often is
    f["strong_elsewhere"] = float(len([t for t in missing(sentence, strong) if t in in_corpus]))
    f["best_chunk_coverage"] = corpus.best_chunk_coverage(weights, terms)

    f["best_text"] = best.text if best is not None else ""
    f["best_source"] = best.source if best is not None else ""
    q_neg = has_negation(question)
    s_neg = has_negation(best.text) if best is not None else False
    f["q_negation"] = float(q_neg)
    f["negation_mismatch"] = float(q_neg and not s_neg)

    # retrieval
    f["fused_top1"] = hits[0].score if hits else 0.0
    f["fused_gap12"] = hits[0].score - hits[1].score if len(hits) > 1 else f["fused_top1"]
    dense = retriever._dense(question, 5)
    lexical = retriever._lexical(terms.bm25(), 5)
    f["dense_top1"] = dense[0][1] if dense else 0.0
    f["dense_gap12"] = dense[0][1] - dense[1][1] if len(dense) > 1 else 0.0
    f["bm25_top2_over_top1"] = lexical[1][1] / lexical[0][1] if len(lexical) > 1 and lexical[0][1] > 0 else 0.0
    f["lex_dense_agree_top1"] = float(bool(dense and lexical and dense[0][0] == lexical[0][0]))
    lex_top3 = {i for i, _ in lexical[:3]}
    f["lex_dense_overlap_top3"] = len(lex_top3 & {i for i, _ in dense[:3]}) / 3
    qv = engine.embedder.embed([question])[0]
    background = corpus.random_sentence_vectors() @ qv
    f["sim_background_mean"] = float(background.mean())
    f["sim_background_p95"] = float(np.percentile(background, 95))
    f["similarity_over_background"] = f["similarity"] - f["sim_background_mean"] if fitting else -1.0
    f["similarity_z"] = (f["similarity"] - background.mean()) / (background.std() + 1e-9) if fitting else -5.0
    f["answerability_rel"] = f["coverage"] + 0.5 * f["similarity_over_background"] if fitting else 0.0
    f["n_terms"] = float(len(terms.weights))
    if best is not None:
        pv = engine.index.vectors[corpus.row[best.chunk.id]]  # the search side of the embedder
        f["similarity_passage"] = float(pv @ query_embedder(engine.embedder)([question])[0])
        f["similarity_sentence_minus_passage"] = best.similarity - f["similarity_passage"]
        f["best_rank"] = float(next((h.rank for h in hits if h.chunk.id == best.chunk.id), len(hits) + 1))
    else:
        f["similarity_passage"] = f["similarity_sentence_minus_passage"] = 0.0
        f["best_rank"] = float(len(hits) + 1)
    return f


# orientation: +1 when a higher value means answerable, -1 when it means unanswerable
FEATURES = {
    "answerability": +1, "coverage": +1, "similarity": +1, "fits_any": +1, "n_fit_pool": +1,
    "coverage_any": +1, "similarity_any": +1, "answerability_any": +1, "evidence_score": +1,
    "strong_missing_sentence": -1, "strong_missing_sentence_share": -1, "strong_missing_passage": -1,
    "strong_missing_passage_share": -1, "strong_missing_retrieved": -1, "strong_missing_corpus": -1,
    "boosted_missing_sentence": -1, "strong_elsewhere": -1, "terms_missing_corpus_share": -1,
    "idf_mass_missing_sentence": -1, "idf_mass_missing_passage": -1, "idf_mass_missing_retrieved": -1,
    "max_idf_missing_sentence": -1, "max_idf_missing_passage": -1, "max_idf_missing_retrieved": -1,
    "best_chunk_coverage": +1, "q_negation": -1, "negation_mismatch": -1,
    "fused_top1": +1, "fused_gap12": +1, "dense_top1": +1, "dense_gap12": +1, "bm25_top2_over_top1": -1,
    "lex_dense_agree_top1": +1, "lex_dense_overlap_top3": +1, "similarity_passage": +1,
    "similarity_sentence_minus_passage": +1, "best_rank": -1,
    "sim_background_mean": +1, "sim_background_p95": +1, "similarity_over_background": +1, "similarity_z": +1,
    "answerability_rel": +1, "n_terms": +1,
    "answerability_or_negation": +1,  # derived (not cached): answerability, -10 when a negation is lacking
}


def derive(f: dict) -> dict:
    """Features computed from the cached ones."""
    f = dict(f)
    f["answerability_or_negation"] = f["answerability"] - 10.0 * f["negation_mismatch"]
    return f


# ---------------------------------------------------------------------------------------------
# pseudo-questions: what the corpus's own sentences score


def pseudo_questions(engine, corpus: Corpus, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n pseudo-questions answerable by construction and n 'swapped' ones.

    Positive: a random sentence of the corpus (at least 8 words), a window of at most 12 of its
    words, a third of them dropped at random, then '?'. Negative: the same, with its rarest word
    (highest idf) replaced by the rarest word of a random sentence of another file (or another
    passage when the corpus has one file): the one-detail swap of adversarial questions."""
    from rag.text import analyze, sentence_spans

    rng = random.Random(seed)
    chunks = engine.index.chunks
    positives, negatives = [], []

    def idf_of(word: str) -> float:
        stems = analyze(word)
        return max((corpus.lexical.idf(s) for s in stems), default=-1.0)

    tries = 0
    while len(positives) < n and tries < 50 * n:
        tries += 1
        chunk = rng.choice(chunks)
        spans = sentence_spans(chunk.text)
        a, b = rng.choice(spans)
        tokens = chunk.text[a:b].split()
        if len(tokens) < 8:
            continue
        start = rng.randrange(0, max(1, len(tokens) - 12) + 1)
        window = tokens[start: start + 12]
        kept = [w for w in window if rng.random() > 1 / 3]
        if len(analyze(" ".join(kept))) < 3:
            continue
        others = [c for c in chunks if c.source != chunk.source] or [c for c in chunks if c.id != chunk.id]
        other = rng.choice(others)
        o_spans = [s for s in sentence_spans(other.text) if len(other.text[s[0]:s[1]].split()) >= 5]
        if not o_spans:
            continue
        oa, ob = rng.choice(o_spans)
        cleaned = [w.strip(".,;:!?()«»\"'") for w in other.text[oa:ob].split()]
        own = set(analyze(chunk.text))
        candidates = [w for w in cleaned if analyze(w) and not set(analyze(w)) & own]
        if not candidates:
            continue
        replacement = max(candidates, key=idf_of)
        rarest = max(range(len(kept)), key=lambda i: idf_of(kept[i]))
        swapped = kept[:rarest] + [replacement] + kept[rarest + 1:]
        positives.append(" ".join(kept).strip(" .,;:") + " ?")
        negatives.append(" ".join(swapped).strip(" .,;:") + " ?")
    return positives, negatives


# ---------------------------------------------------------------------------------------------
# measurement


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random answerable scores above a random unanswerable), ties counting half."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    values = np.concatenate([pos, neg])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i: j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def rates(scores: np.ndarray, unanswerable: np.ndarray, threshold: float) -> tuple[float, float]:
    """(refusal accuracy, false-refusal rate) when refusing every score under the threshold."""
    refused = scores < threshold
    acc = float(refused[unanswerable].mean()) if unanswerable.any() else float("nan")
    fr = float(refused[~unanswerable].mean()) if (~unanswerable).any() else float("nan")
    return acc, fr


def candidates(values: list[np.ndarray]) -> np.ndarray:
    v = np.unique(np.concatenate(values))
    mids = (v[1:] + v[:-1]) / 2 if len(v) > 1 else v
    return np.concatenate([[v.min() - 1e-6] if len(v) else [], mids, [v.max() + 1e-6] if len(v) else []])


def oracle(scores, unans, max_fr=0.10):
    best = None
    for t in candidates([scores]):
        acc, fr = rates(scores, unans, t)
        if fr <= max_fr + 1e-12 and (best is None or acc > best[1] or (acc == best[1] and fr < best[2])):
            best = (t, acc, fr)
    return best


def shared_threshold(data: dict[str, tuple[np.ndarray, np.ndarray]], max_fr=0.10):
    """One threshold for all sets: the best worst-set refusal accuracy with false refusals <= max_fr
    on every set; if no threshold keeps every set there, the least worst false-refusal rate."""
    best, fallback = None, None
    for t in candidates([s for s, _ in data.values()]):
        per = {name: rates(s, u, t) for name, (s, u) in data.items()}
        worst_fr = max(fr for _, fr in per.values() if not math.isnan(fr))
        accs = [acc for acc, _ in per.values() if not math.isnan(acc)]
        worst_acc, mean_acc = min(accs), float(np.mean(accs))
        if worst_fr <= max_fr + 1e-12:
            key = (worst_acc, mean_acc)
            if best is None or key > best[1]:
                best = (t, key)
        key = (-worst_fr, mean_acc)
        if fallback is None or key > fallback[1]:
            fallback = (t, key)
    return (best or fallback)[0], best is not None


def corpus_of(name: str) -> str:
    """The set whose corpus-level measurements (pseudo-questions, off-topic floor) a set uses."""
    return "cnil-fr" if name == "cnil-titles" else name


def choose(rule, grid, names, sets, max_fr):
    """The setting of `rule` with the best worst-set refusal accuracy among those keeping false
    refusals <= max_fr on every set of `names` (mean accuracy breaks ties); when none does, the one
    with the least worst false-refusal rate."""
    best = None
    for p in grid:
        per = [rates_of(rule(n, p), sets[n].unanswerable) for n in names]
        worst_fr = max(fr for _, fr in per)
        accs = [acc for acc, _ in per if not math.isnan(acc)]
        ok = worst_fr <= max_fr + 1e-12
        key = (ok, min(accs) if ok else -worst_fr, float(np.mean(accs)), -worst_fr)
        if best is None or key > best[0]:
            best = (key, p)
    return best[1], best[0][0]


def rates_of(refused: np.ndarray, unanswerable: np.ndarray) -> tuple[float, float]:
    acc = float(refused[unanswerable].mean()) if unanswerable.any() else float("nan")
    fr = float(refused[~unanswerable].mean()) if (~unanswerable).any() else float("nan")
    return acc, fr


def rule_table(title, rule, grid, sets, labelled, max_fr) -> dict:
    shared, feasible = choose(rule, grid, labelled, sets, max_fr)
    print(f"### {title}\n")
    print(f"shared setting: {tuple(float(x) for x in shared) or '-'}" + ("" if feasible else f" (no setting keeps FR <= {max_fr} on every set)") + "\n")
    print("| set | oracle acc | FR | shared acc | FR | LOSO acc | FR | LOSO setting |")
    print("|---|---|---|---|---|---|---|---|")
    out = {"shared": list(map(float, shared)), "feasible": feasible, "sets": {}}
    for n in sets:
        sh = rates_of(rule(n, shared), sets[n].unanswerable)
        if n in labelled:
            o, _ = choose(rule, grid, [n], sets, max_fr)
            orc = rates_of(rule(n, o), sets[n].unanswerable)
            lp, _ = choose(rule, grid, [m for m in labelled if m != n], sets, max_fr) if len(labelled) > 1 else (shared, True)
            lo = rates_of(rule(n, lp), sets[n].unanswerable)
        else:
            orc, lo, lp = (float("nan"),) * 2, (float("nan"),) * 2, ()
        print(f"| {n} | {fmt(orc[0])} | {fmt(orc[1])} | {fmt(sh[0])} | {fmt(sh[1])} | {fmt(lo[0])} | {fmt(lo[1])} | "
              f"{tuple(float(x) for x in lp) or '-'} |")
        out["sets"][n] = {"oracle": orc, "shared": sh, "loso": lo, "loso_setting": list(map(float, lp))}
    print()
    return out


# ---------------------------------------------------------------------------------------------


@dataclass
class SetData:
    name: str
    questions: list[Question]
    features: list[dict]
    pseudo_pos: list[float] = field(default_factory=list)
    pseudo_neg: list[float] = field(default_factory=list)
    pseudo_features: dict = field(default_factory=dict)
    off_topic: dict = field(default_factory=dict)

    def column(self, name: str) -> np.ndarray:
        return np.array([float(f[name]) for f in self.features]) * FEATURES.get(name, 1)

    @property
    def unanswerable(self) -> np.ndarray:
        return np.array([q.unanswerable for q in self.questions])


def index_key(index: Path) -> str:
    return (index / "CURRENT").read_text().strip()


def compute_set(name: str, args, engines: dict) -> SetData:
    corpus_dir, index_name, golds = SETS[name]
    index = Path(args.index_root) / index_name
    ensure_index(corpus_dir, index)
    questions = read_questions(golds)
    cache = Path(args.cache) / f"{name}.json"
    key = hashlib.sha256(f"{index_key(index)}|{args.k}|{FEATURE_VERSION}".encode()).hexdigest()[:16]
    corpus_key = hashlib.sha256(f"{index_key(index)}|{args.k}|{args.pseudo}".encode()).hexdigest()[:16]
    stored = json.loads(cache.read_text()) if cache.is_file() and not args.fresh else {}
    if stored.get("key") != key:
        stored = {"key": key, "features": {}, "corpus_key": stored.get("corpus_key"),
                  "pseudo": stored.get("pseudo"), "off_topic": stored.get("off_topic")}
    if stored.get("corpus_key") != corpus_key:  # pseudo and off-topic scores only need answerability
        stored.update(corpus_key=corpus_key, pseudo=None, off_topic=None)
    if index_name not in engines:
        engines[index_name] = load_engine(index)
    engine = engines[index_name]
    corpus = Corpus(engine)
    started, computed = time.perf_counter(), 0
    features = []

    def save() -> None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(stored, ensure_ascii=False, default=float))

    for q in questions:
        f = stored["features"].get(q.question)
        if f is None:
            f = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v)
                 for k, v in question_features(q.question, engine, corpus, args.k).items()}
            stored["features"][q.question] = f
            computed += 1
            if computed % 25 == 0:
                save()
                print(f"{name}: {computed} questions, {time.perf_counter() - started:.0f}s", file=sys.stderr)
        features.append(f)
    data = SetData(name, questions, [derive(f) for f in features])
    if name != "cnil-titles":
        if stored["pseudo"] is None:
            pos, neg = pseudo_questions(engine, corpus, args.pseudo)
            stored["pseudo"] = {
                "pos": [question_features(q, engine, corpus, args.k) for q in pos],
                "neg": [question_features(q, engine, corpus, args.k) for q in neg],
                "examples": list(zip(pos[:8], neg[:8])),
            }
            computed += 2 * len(pos)
        if stored.get("off_topic") is None:
            from rag.evidence import answerability
            from rag.pipeline import gather_evidence

            stored["off_topic"] = {}
            for lang, qs in OFF_TOPIC.items():
                scores = []
                for q in qs:
                    _, pool = gather_evidence(q, engine, args.k)
                    scores.append(answerability(pool[: engine.settings.evidence_sentences]))
                stored["off_topic"][lang] = scores
            computed += sum(len(v) for v in OFF_TOPIC.values())
        data.off_topic = stored["off_topic"]
        data.pseudo_pos = [f["answerability"] for f in stored["pseudo"]["pos"]]
        data.pseudo_neg = [f["answerability"] for f in stored["pseudo"]["neg"]]
        data.pseudo_features = stored["pseudo"]
    save()
    if computed:
        print(f"{name}: {computed} evidence gatherings in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return data


def fmt(x: float) -> str:
    return "  -  " if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--index-root", default="/tmp", help="indexes live in INDEX_ROOT/rs-*")
    parser.add_argument("--cache", default="/tmp/refusal_study")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--pseudo", type=int, default=100, help="pseudo-questions of each kind per corpus")
    parser.add_argument("--max-fr", type=float, default=0.10, help="false-refusal budget for chosen thresholds")
    parser.add_argument("--json", help="write every per-question feature and the summary here")
    args = parser.parse_args(argv)

    engines: dict = {}
    sets = {name: compute_set(name, args, engines) for name in args.sets}
    labelled = [n for n in LABELLED if n in sets]
    summary: dict = {"auc": {}, "thresholds": {}}

    # 1. AUC table
    print("\n## ROC AUC, answerable vs unanswerable (feature oriented so higher = answerable)\n")
    print("| feature | " + " | ".join(f"{n} ({(~sets[n].unanswerable).sum()}/{sets[n].unanswerable.sum()})" for n in labelled)
          + " | min | mean |")
    print("|---|" + "---|" * (len(labelled) + 2))
    rows = []
    for feat, sign in FEATURES.items():
        values = [auc(sets[n].column(feat)[~sets[n].unanswerable], sets[n].column(feat)[sets[n].unanswerable])
                  for n in labelled]
        rows.append((feat, sign, values))
        summary["auc"][feat] = dict(zip(labelled, values))
    rows.sort(key=lambda r: -np.nanmin(r[2]))
    for feat, sign, values in rows:
        label = feat if sign > 0 else f"-{feat}"
        print(f"| {label} | " + " | ".join(fmt(v) for v in values) + f" | {fmt(np.nanmin(values))} | {fmt(np.nanmean(values))} |")

    print("\n95% bootstrap intervals (2000 resamples within each class):\n")
    rng = np.random.default_rng(0)
    for feat in ("answerability", "answerability_or_negation", "similarity", "idf_mass_missing_passage"):
        cells = []
        for n in labelled:
            x, u = sets[n].column(feat), sets[n].unanswerable
            pos, neg = x[~u], x[u]
            boot = [auc(rng.choice(pos, len(pos)), rng.choice(neg, len(neg))) for _ in range(2000)]
            cells.append(f"{n} {auc(pos, neg):.2f} [{np.percentile(boot, 2.5):.2f}, {np.percentile(boot, 97.5):.2f}]")
        print(f"- {feat}: " + "; ".join(cells))

    # 2. refusal kinds: the share of each set's questions per expected answer kind
    print("\n## Answer kinds asked (answerable / unanswerable)\n")
    for n in labelled:
        counts: dict = {}
        for q, f in zip(sets[n].questions, sets[n].features):
            a, u = counts.get(f["kind"], (0, 0))
            counts[f["kind"]] = (a + (not q.unanswerable), u + q.unanswerable)
        print(f"- {n}: " + ", ".join(f"{k} {a}/{u}" for k, (a, u) in sorted(counts.items(), key=lambda kv: -sum(kv[1]))))

    # 3. refusal rules with one shared setting
    print(f"\n## Refusal rules (false-refusal budget {args.max_fr} per set)\n")
    print("acc = refusal accuracy (unanswerable refused), FR = false refusals (answerable refused). oracle: setting\n"
          "chosen on the set itself; shared: one setting for the four labelled sets (best worst-set accuracy with\n"
          "FR <= budget on every set); LOSO: chosen on the three other sets. cnil-titles (answerable only) is\n"
          "never used to choose.\n")
    columns: dict = {}

    def col(n: str, feat: str) -> np.ndarray:  # raw values, not oriented
        if (n, feat) not in columns:
            columns[n, feat] = np.array([float(f[feat]) for f in sets[n].features])
        return columns[n, feat]

    def ans(n: str) -> np.ndarray:
        return col(n, "answerability")

    grid_t = [round(x, 3) for x in np.arange(0.0, 1.21, 0.01)]
    rules = {
        "today: answerability < 0.465": (lambda n, p: ans(n) < 0.465, [()]),
        "answerability < t": (lambda n, p: ans(n) < p[0], [(t,) for t in grid_t]),
        "coverage < t": (lambda n, p: col(n, "coverage") < p[0], [(t,) for t in grid_t]),
        "answerability < t, or a negation the best sentence lacks":
            (lambda n, p: (ans(n) < p[0]) | (col(n, "negation_mismatch") > 0), [(t,) for t in grid_t]),
        "answerability < t, or question terms unknown to the corpus > m (idf share)":
            (lambda n, p: (ans(n) < p[0]) | (col(n, "terms_missing_corpus_share") > p[1]),
             [(t, m) for t in grid_t[::2] for m in np.round(np.arange(0.1, 1.01, 0.05), 2)]),
        "answerability < t, or negation lacking, or unknown terms > m":
            (lambda n, p: (ans(n) < p[0]) | (col(n, "negation_mismatch") > 0) | (col(n, "terms_missing_corpus_share") > p[1]),
             [(t, m) for t in grid_t[::2] for m in np.round(np.arange(0.1, 1.01, 0.05), 2)]),
        "answerability < t, or idf share missing from the passage > m":
            (lambda n, p: (ans(n) < p[0]) | (col(n, "idf_mass_missing_passage") > p[1]),
             [(t, m) for t in grid_t[::2] for m in np.round(np.arange(0.3, 1.01, 0.025), 3)]),
    }
    if all(sets[n].off_topic for n in labelled):
        floor = {n: max(max(v) for v in sets[corpus_of(n)].off_topic.values()) for n in sets if sets[corpus_of(n)].off_topic}
        rules["corpus floor: answerability < (best off-topic answerability of this corpus) + d"] = (
            lambda n, p: ans(n) < floor[n] + p[0], [(d,) for d in np.round(np.arange(-0.5, 0.61, 0.01), 2)])
        rules["corpus floor + d, or a negation the best sentence lacks"] = (
            lambda n, p: (ans(n) < floor[n] + p[0]) | (col(n, "negation_mismatch") > 0),
            [(d,) for d in np.round(np.arange(-0.5, 0.61, 0.01), 2)])
        median = {n: float(np.median(np.concatenate([v for v in sets[corpus_of(n)].off_topic.values()])))
                  for n in sets if sets[corpus_of(n)].off_topic}
        rules["corpus floor: answerability < (median off-topic answerability of this corpus) + d"] = (
            lambda n, p: ans(n) < median[n] + p[0], [(d,) for d in np.round(np.arange(-0.5, 0.61, 0.01), 2)])
    summary["rules"] = {}
    for title, (rule, grid) in rules.items():
        summary["rules"][title] = rule_table(title, rule, grid, sets, labelled, args.max_fr)

    # corpus-derived: off-topic floor and pseudo-questions
    print("\n## What the corpus alone says (no gold set)\n")
    print("Off-topic questions (30 French, 30 English, general knowledge) asked of each corpus, and pseudo-questions\n"
          "made from the corpus's own sentences (positive: a window of a sentence with a third of its words dropped;\n"
          "swapped: the same with its rarest word replaced by a rare word of another file).\n")
    print("| corpus | off-topic fr median / max | off-topic en median / max | pseudo pos p05 / median | pseudo swapped median "
          "| AUC pos vs swapped | gold answerable p10 / median | gold unanswerable median | oracle t |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in labelled:
        d = sets[n]
        a, u = d.column("answerability"), d.unanswerable
        o = oracle(a, u, args.max_fr)
        off = d.off_topic
        pp, pn = np.array(d.pseudo_pos), np.array(d.pseudo_neg)
        print(f"| {n} | {fmt(np.median(off['fr']))} / {fmt(max(off['fr']))} | {fmt(np.median(off['en']))} / {fmt(max(off['en']))} "
              f"| {fmt(np.percentile(pp, 5))} / {fmt(np.median(pp))} | {fmt(np.median(pn))} | {fmt(auc(pp, pn))} "
              f"| {fmt(np.percentile(a[~u], 10))} / {fmt(np.median(a[~u]))} | {fmt(np.median(a[u]))} | {fmt(o[0])} |")
    print("\nRule: refuse under percentile p of the corpus's positive pseudo-questions (acc/FR)\n")
    ps = (2, 5, 10, 25)
    print("| set | " + " | ".join(f"p{p}" for p in ps) + " |")
    print("|---|" + "---|" * len(ps))
    for n, data in sets.items():
        c = corpus_of(n)
        if not sets[c].pseudo_pos:
            continue
        a, u = data.column("answerability"), data.unanswerable
        pp = np.array(sets[c].pseudo_pos)
        cells = ["/".join(fmt(x) for x in rates(a, u, float(np.percentile(pp, p)))) for p in ps]
        print(f"| {n} | " + " | ".join(cells) + " |")

    # 4. combined model, leave one set out
    model_features = [f for f in (
        "answerability", "coverage", "similarity", "fits_any", "similarity_passage", "max_idf_missing_sentence",
        "idf_mass_missing_passage", "strong_missing_sentence_share", "best_chunk_coverage", "negation_mismatch",
        "terms_missing_corpus_share", "dense_top1", "fused_gap12", "lex_dense_agree_top1") if f in FEATURES]
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # pragma: no cover
        LogisticRegression = None
    if LogisticRegression is not None and len(labelled) >= 2:
        print(f"\n## Logistic model over {len(model_features)} features, leave one set out\n")
        print("features: " + ", ".join(model_features) + "\n")
        matrix = {n: np.column_stack([sets[n].column(f) for f in model_features]) for n in sets}
        scores_by_holdout = {}
        for held in labelled:
            train = [n for n in labelled if n != held]
            x = np.vstack([matrix[n] for n in train])
            y = np.concatenate([~sets[n].unanswerable for n in train]).astype(int)
            # each training set weighs the same, each class within it too
            w = np.concatenate([np.where(~sets[n].unanswerable, 0.5 / (~sets[n].unanswerable).sum(),
                                         0.5 / max(1, sets[n].unanswerable.sum())) for n in train])
            mu, sd = x.mean(0), x.std(0) + 1e-9
            model = LogisticRegression(C=1.0, max_iter=2000).fit((x - mu) / sd, y, sample_weight=w * len(y))
            def score(n, model=model, mu=mu, sd=sd):
                return model.decision_function((matrix[n] - mu) / sd)

            t, _ = shared_threshold({n: (score(n), sets[n].unanswerable) for n in train}, args.max_fr)
            s = score(held)
            u = sets[held].unanswerable
            acc, fr = rates(s, u, t)
            scores_by_holdout[held] = (auc(s[~u], s[u]), acc, fr, t,
                                       dict(zip(model_features, np.round(model.coef_[0], 2).tolist())))
            if held == "cnil-fr" and "cnil-titles" in sets:
                st = score("cnil-titles")
                scores_by_holdout["cnil-titles"] = (float("nan"), float("nan"), rates(st, sets["cnil-titles"].unanswerable, t)[1], t, {})
        print("| held-out set | AUC | refusal acc | FR | t (chosen on the other sets) |")
        print("|---|---|---|---|---|")
        for n, (a, acc, fr, t, _) in scores_by_holdout.items():
            print(f"| {n} | {fmt(a)} | {fmt(acc)} | {fmt(fr)} | {t:.2f} |")
        for n in ("squad2-en", "cnil-fr"):
            if n in scores_by_holdout:
                print(f"\ncoefficients (standardised, oriented) with {n} held out: " + json.dumps(scores_by_holdout[n][4]))
        summary["logistic_loso"] = {n: v[:4] for n, v in scores_by_holdout.items()}

    # 5. the unanswerable questions answered at the default threshold, per set (the closest calls)
    print("\n## Closest calls under today's rule (answerability, question)\n")
    for n in labelled:
        a, u = sets[n].column("answerability"), sets[n].unanswerable
        top_unans = sorted(((a[i], sets[n].questions[i].question) for i in np.where(u)[0]), reverse=True)[:3]
        low_ans = sorted((a[i], sets[n].questions[i].question) for i in np.where(~u)[0])[:3]
        print(f"- {n}: highest unanswerable: " + "; ".join(f"{x:.2f} {q!r}" for x, q in top_unans))
        print(f"  {' ' * len(n)}  lowest answerable: " + "; ".join(f"{x:.2f} {q!r}" for x, q in low_ans))

    if args.json:
        Path(args.json).write_text(json.dumps({
            "summary": summary,
            "questions": {n: [{"id": q.id, "question": q.question, "unanswerable": q.unanswerable, **f}
                              for q, f in zip(sets[n].questions, sets[n].features)] for n in sets},
            "pseudo": {n: sets[n].pseudo_features for n in sets},
        }, ensure_ascii=False, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
