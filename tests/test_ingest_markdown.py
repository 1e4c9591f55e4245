"""Markdown reader: syntax, front matter and MDX components must not reach the text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.ingest.base import Unreadable
from rag.ingest.markdown import read_markdown

DEVSET = Path(__file__).resolve().parents[1].parent / "shared" / "devsets" / "realdocs"

PAGE = """---
title: 'React Compiler'
description: ignored
---

<Intro>

Cette page présente **React Compiler** et _comment_ l'essayer.

</Intro>

## Démarrage {/*getting-started*/}

Installez le paquet `react-compiler-runtime` ([voir la doc](https://react.dev/learn "doc"))
![schéma](img.png) &amp; c'est tout : pas d'instal\u00adlation.<br>Fin.

<TerminalBlock>
npm install react-compiler-runtime@beta
</TerminalBlock>

<!-- a comment nobody sees -->

* premier point
* second point
  1. sous-point

| Version | Prise en charge |
| ------- | --------------- |
| React 17 | oui |

```js {3}
function App() {
  "use no memo";
}
```

> Une citation.

### Dépannage {#troubleshooting}
"""


def test_markup_front_matter_and_mdx_are_removed(tmp_path: Path):
    path = tmp_path / "page.md"
    path.write_text(PAGE, encoding="utf-8")

    got = read_markdown(path)

    assert got.text == (
        "React Compiler\n\n"
        "Cette page présente React Compiler et comment l'essayer.\n\n"
        "Démarrage\n\n"
        "Installez le paquet react-compiler-runtime (voir la doc) & c'est tout : pas d'installation. Fin.\n\n"
        "npm install react-compiler-runtime@beta\n\n"
        "premier point\n\n"
        "second point\n\n"
        "sous-point\n\n"
        "Version | Prise en charge\n\n"
        "React 17 | oui\n\n"
        "function App() {\n\n"
        '"use no memo";\n\n'
        "}\n\n"
        "Une citation.\n\n"
        "Dépannage"
    )
    assert got.title == "React Compiler"
    assert [(h, level) for _, h, level in got.headings] == [
        ("React Compiler", 1), ("Démarrage", 2), ("Dépannage", 3)
    ]
    assert all(got.text[offset:].startswith(h) for offset, h, _ in got.headings)


def test_title_from_the_first_heading_without_front_matter(tmp_path: Path):
    path = tmp_path / "notes.md"
    path.write_bytes("\ufeff# Notes de réunion\r\n\r\nTexte *important*.\r\n".encode("utf-8"))
    got = read_markdown(path)
    assert got.title == "Notes de réunion"
    assert got.text == "Notes de réunion\n\nTexte important."
    assert got.headings == [(0, "Notes de réunion", 1)]


def test_a_file_without_text_is_unreadable(tmp_path: Path):
    cases = (("empty.md", ""), ("only_front_matter.md", "---\ntitle: X\n---\n"), ("img.md", "![](a.png)\n"))
    for name, content in cases:
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(Unreadable):
            read_markdown(path)


@pytest.mark.skipif(not DEVSET.is_dir(), reason="realdocs devset absent")
def test_devset_answers_are_in_the_text():
    questions = [json.loads(line) for line in (DEVSET / "questions.jsonl").read_text().splitlines()]
    for path in sorted((DEVSET / "corpus").glob("*.md")):
        got = read_markdown(path)
        flat = " ".join(got.text.split())
        for q in questions:
            if path.name in q["sources"] and q["answers"]:
                assert any(answer in flat for answer in q["answers"]), (path.name, q["id"])
        assert got.title == "React Compiler"
        for markup in ("{/*", "<Note>", "</DeepDive>", "](", "```"):
            assert markup not in got.text, markup
        assert "Nous vous conseillons fortement d'utiliser le linter dès aujourd'hui." in got.text
