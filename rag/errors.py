"""Small domain exceptions. The library raises them; only the CLI and the web page turn them
into friendly messages (exit code 2 for usage errors, 1 for every other failure)."""


class RagError(Exception):
    """A failure the user can act on; the message says what is wrong and what to do."""

    exit_code = 1


class UsageError(RagError):
    """The request itself is malformed (empty question, unknown option value...)."""

    exit_code = 2


class CorpusError(RagError):
    """The corpus folder is missing, empty, or holds a file that cannot be read as text."""


class IndexNotFound(RagError):
    """No index has been built at the given place yet."""


class IndexMismatch(RagError):
    """The index on disk was built by another format version or another embedder, or is corrupted."""


class ModelError(RagError):
    """A model named in models.txt is missing, has a wrong checksum, or failed to load."""


class IndexBusy(RagError):
    """Another build is writing the same index folder."""


class IndexNotWritable(RagError):
    """The index folder cannot be written (read-only, no space, no permission)."""
