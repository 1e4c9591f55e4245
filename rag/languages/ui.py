"""The chat page's words, one dict per corpus language (`Index.language`: "fr" or "en").

Every string the page shows comes from here; `{name}` fields are filled with `str.format` after the
values are escaped by the caller. A language missing a key falls back to English.
"""

from __future__ import annotations

UI: dict[str, dict[str, str]] = {
    "fr": {
        "page_title": "rag · questions sur vos documents",
        "title": "Questions sur vos documents",
        "intro": "Chaque réponse est vérifiée contre les passages cités. Cliquez sur un [n] pour voir la "
                 "citation dans son paragraphe, puis « Ouvrir le document » pour la lire dans son contexte.",
        "chat": "Conversation",
        "placeholder": "Posez une question sur les documents…",
        "examples": "Exemples",
        "sources": "Sources",
        "sources_empty": "Les passages cités apparaîtront ici.",
        "closest": "Passages les plus proches",
        "no_source": "Aucune source.",
        "answer_n": "Réponse {n}",
        "open_document": "Ouvrir le document",
        "draft": "brouillon — en cours de vérification…",
        "understood_as": "compris comme : « {query} »",
        "error": "⚠️ {message}",
        "internal_error": "erreur interne ({kind}) ; la page continue de fonctionner",
        "timings": "recherche {retrieve} ms · premier mot {first} ms · total {total} ms · {mode}",
        "settings": "Réglages",
        "k": "Passages (k)",
        "retrieval": "Recherche",
        "use_llm": "Réponse rédigée par le modèle (sinon : extraits)",
        "temperature": "Température",
        "collection": "Collection",
        "documents": "Documents de la collection",
        "no_documents": "Cette collection n'a pas encore de document : ajoutez des fichiers ci-dessous.",
        "col_name": "fichier",
        "col_format": "format",
        "col_pages": "pages",
        "upload": "Ajouter des fichiers à la collection",
        "new_collection": "Nouvelle collection",
        "new_collection_hint": "nom : lettres, chiffres, - ou _",
        "create": "Créer",
        "created": "collection « {name} » : ajoutez des fichiers pour la créer",
        "remove_pick": "Document à retirer",
        "remove": "Retirer",
        "removed": "« {name} » retiré · {total}",
        "read_one": "{count} document lu ({formats})",
        "read_many": "{count} documents lus ({formats})",
        "read_none": "aucun document lu",
        "skipped": "ignoré(s) : {items}",
        "renamed": "un fichier de ce nom existait déjà, gardé sous un autre nom : {items}",
        "total_one": "« {collection} » : {count} document",
        "total_many": "« {collection} » : {count} documents",
        "unsupported": "format non pris en charge ({suffix})",
        "no_file": "aucun fichier reçu",
        "uploads_off": "l'ajout de fichiers est désactivé : ce serveur écoute sur le réseau sans identifiant ; "
                       "relancez-le avec --auth utilisateur:motdepasse (ou sur 127.0.0.1) pour l'activer",
        "not_built": "la collection « {name} » n'a pas encore de document ; ajoutez des fichiers dans "
                     "« Documents de la collection »",
        "unknown_collection": "aucune collection ne s'appelle « {name} »",
        "no_folder": "la collection « {name} » ne connaît pas son dossier de documents ; réindexez-la une "
                     "fois avec : rag index --corpus DOSSIER",
        "viewer": "Document",
        "close": "Fermer le document",
        "viewer_missing": "Ce document ne fait plus partie de la collection « {collection} ».",
        "viewer_moved": "Le document a changé depuis cette réponse : la citation n'y figure plus telle quelle.",
        "viewer_cut": "… ({count} caractères non affichés) …",
        "viewer_head": "{format} · {chars} caractères",
    },
    "en": {
        "page_title": "rag · questions about your documents",
        "title": "Questions about your documents",
        "intro": "Every answer is checked against the passages it cites. Click a [n] to see the quote in its "
                 "paragraph, then “Open the document” to read it in context.",
        "chat": "Conversation",
        "placeholder": "Ask a question about the documents…",
        "examples": "Examples",
        "sources": "Sources",
        "sources_empty": "The quoted passages will appear here.",
        "closest": "Closest passages",
        "no_source": "No source.",
        "answer_n": "Answer {n}",
        "open_document": "Open the document",
        "draft": "draft — being checked…",
        "understood_as": "understood as: “{query}”",
        "error": "⚠️ {message}",
        "internal_error": "internal error ({kind}); the page keeps working",
        "timings": "retrieval {retrieve} ms · first token {first} ms · total {total} ms · {mode}",
        "settings": "Settings",
        "k": "Passages (k)",
        "retrieval": "Retrieval",
        "use_llm": "Answer written by the model (otherwise: quotes)",
        "temperature": "Temperature",
        "collection": "Collection",
        "documents": "Documents of the collection",
        "no_documents": "This collection has no document yet: add files below.",
        "col_name": "file",
        "col_format": "format",
        "col_pages": "pages",
        "upload": "Add files to the collection",
        "new_collection": "New collection",
        "new_collection_hint": "name: letters, digits, - or _",
        "create": "Create",
        "created": "collection “{name}”: add files to create it",
        "remove_pick": "Document to remove",
        "remove": "Remove",
        "removed": "removed “{name}” · {total}",
        "read_one": "read {count} document ({formats})",
        "read_many": "read {count} documents ({formats})",
        "read_none": "no document read",
        "skipped": "skipped: {items}",
        "renamed": "a file of that name was already there, kept under another name: {items}",
        "total_one": "“{collection}”: {count} document",
        "total_many": "“{collection}”: {count} documents",
        "unsupported": "unsupported format ({suffix})",
        "no_file": "no file was received",
        "uploads_off": "uploads are turned off: this server listens on the network without a login; restart "
                       "it with --auth user:password (or on 127.0.0.1) to allow them",
        "not_built": "collection “{name}” has no document yet; add files under “Documents of the collection”",
        "unknown_collection": "there is no collection named “{name}”",
        "no_folder": "collection “{name}” does not record its documents folder; re-index it once with: "
                     "rag index --corpus DIR",
        "viewer": "Document",
        "close": "Close the document",
        "viewer_missing": "This document is no longer part of collection “{collection}”.",
        "viewer_moved": "The document has changed since this answer: the quote is no longer in it as such.",
        "viewer_cut": "… ({count} characters not shown) …",
        "viewer_head": "{format} · {chars} characters",
    },
}
LANGUAGES = tuple(UI)


def ui_text(language: str | None, key: str, **values: object) -> str:
    """One string of the page in `language` ("fr" or "en"; anything else reads as English).

    >>> ui_text("fr", "answer_n", n=2)
    'Réponse 2'
    >>> ui_text("de", "sources")
    'Sources'
    """
    table = UI.get(language or "", UI["en"])
    template = table.get(key, UI["en"][key])
    return template.format(**values) if values else template


def ui_count(language: str | None, key: str, count: int, **values: object) -> str:
    """`key_one` or `key_many` by `count`.

    >>> ui_count("en", "read", 2, formats="1 PDF, 1 DOCX")
    'read 2 documents (1 PDF, 1 DOCX)'
    """
    return ui_text(language, f"{key}_one" if count == 1 else f"{key}_many", count=count, **values)
