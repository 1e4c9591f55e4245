"""Writes corpus/reglement_mediatheque.docx, the Word file of this devset, with python-docx
(headings, paragraphs and a table of opening hours), so its text can be read and changed here.

    python benchmarks/devsets/handbook-own/make_docx.py
"""

from pathlib import Path

import docx

TITLE = "Règlement intérieur de la médiathèque Jean-Moulin"
INTRO = "Adopté par le conseil municipal de Saint-Aubin le 14 novembre 2023, il entre en vigueur le 1er janvier 2024."
ARTICLES = [  # heading, paragraph; the hours go in a table under article 4, before its paragraph
    ("Article 1 – Inscription", "L'inscription est gratuite pour les habitants de Saint-Aubin. Les personnes "
     "domiciliées hors de la commune acquittent une cotisation annuelle de 15 euros. Un justificatif de domicile "
     "de moins de trois mois est demandé."),
    ("Article 2 – Prêt", "Chaque abonné peut emprunter jusqu'à 10 documents, dont 3 DVD au maximum, pour une durée "
     "de quatre semaines. Le prêt peut être prolongé une fois, sauf si le document est réservé par un autre abonné."),
    ("Article 3 – Retards", "En cas de retard de plus de 21 jours, le droit de prêt est suspendu jusqu'au retour des "
     "documents. Un document perdu ou abîmé est remplacé par l'abonné ou remboursé à son prix d'achat."),
    ("Article 4 – Horaires", "La médiathèque est fermée au public les trois premières semaines d'août."),
    ("Article 5 – Postes informatiques", "Les postes informatiques sont accessibles aux abonnés par séances d'une "
     "heure. Les mineurs de moins de 12 ans doivent être accompagnés d'un adulte."),
]
HOURS = [("Jour", "Horaires"), ("Mardi", "14 h – 19 h"), ("Mercredi", "10 h – 18 h"), ("Samedi", "9 h 30 – 17 h")]


def main() -> None:
    d = docx.Document()
    d.add_heading(TITLE, 0)
    d.add_paragraph(INTRO)
    for heading, paragraph in ARTICLES:
        d.add_heading(heading, 1)
        if heading.endswith("Horaires"):
            table = d.add_table(rows=len(HOURS), cols=2)
            for row, (day, hours) in zip(table.rows, HOURS):
                row.cells[0].text, row.cells[1].text = day, hours
        d.add_paragraph(paragraph)
    d.save(Path(__file__).parent / "corpus" / "reglement_mediatheque.docx")


if __name__ == "__main__":
    main()
