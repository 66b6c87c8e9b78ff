"""The project's own exceptions: each carries one clear sentence for the user."""


class Distw2vError(ValueError):
    """Base class: bad input or a state the user can fix. The CLI prints it and exits with 2."""


class CorpusError(Distw2vError):
    """A corpus source is missing, unreachable, empty or not text."""


class VocabularyError(Distw2vError):
    """The vocabulary cannot be built or loaded (e.g. every word is below min_count)."""


class ModelFormatError(Distw2vError):
    """A model directory or vector file is corrupt, truncated or of an unknown version."""


class UnknownWordError(Distw2vError, KeyError):
    """A query names a word that is not in the vocabulary."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
