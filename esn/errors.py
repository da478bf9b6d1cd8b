"""The one error hierarchy of esn: every error a user can meet is an ``EsnError``.

Specific errors also subclass the matching builtin (as zarr's ``NodeNotFoundError``
subclasses ``FileNotFoundError``), so callers may catch either.
"""

from __future__ import annotations

__all__ = [
    "AudioDecodeError",
    "CorpusError",
    "CorpusSpecError",
    "CorpusWarning",
    "EsnError",
    "EsnWarning",
    "MissingDependencyError",
    "RequestError",
    "ModelLoadError",
    "ModelMismatchError",
    "OutputRefusedError",
    "SchemaError",
    "StoreDamagedError",
    "StoreExistsError",
    "StoreLockedError",
    "StoreMismatchError",
    "StoreNotFoundError",
    "StoreValidationError",
    "StoreWriteError",
]


class EsnError(Exception):
    """Base class of every error esn raises on purpose."""


class EsnWarning(UserWarning):
    """Base class of esn's warnings (errors in esn's own test suite)."""


class CorpusWarning(EsnWarning):
    """Listed corpus items were left out: an audio file listed twice, or a label outside the
    emotion set; the message names the corpus and says how many."""


class SchemaError(EsnError, ValueError):
    """A declared structure (store attributes, a record) is malformed or of another version."""


class CorpusSpecError(EsnError, ValueError):
    """A corpus spec string such as ``iemocap:/data/IEMOCAP`` cannot be parsed."""


class CorpusError(EsnError, FileNotFoundError):
    """A corpus tree or label file is missing or does not have its published layout."""


class AudioDecodeError(EsnError, OSError):
    """One audio file cannot be used; ``reason`` says why in a few words."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RequestError(EsnError, ValueError):
    """A request cannot be carried out as asked: a bad option, or data that does not allow it
    (e.g. an emotion missing from the store, an empty identification pool)."""


class MissingDependencyError(EsnError, RuntimeError):
    """An optional program or package needed for this input is not installed."""


class ModelLoadError(EsnError, ValueError):
    """A model id or path cannot be resolved or loaded (unknown id, unsupported family...)."""


class StoreNotFoundError(EsnError, FileNotFoundError):
    """No activation store at the given path or URL."""


class StoreExistsError(EsnError, FileExistsError):
    """A store already exists where a new one was to be created (use overwrite)."""


class StoreMismatchError(EsnError, ValueError):
    """An existing store was made for another model, probe or corpus than the one asked for."""


class StoreValidationError(EsnError, ValueError):
    """A store breaks its schema: wrong version, shapes, or unreadable chunks."""


class StoreDamagedError(StoreValidationError):
    """A committed chunk of a store is missing or cannot be decoded (the store was damaged
    after it was written); the message names the array and the chunk."""


class StoreLockedError(EsnError, BlockingIOError):
    """Another run holds the store's writer lease (or left one that may be stale)."""


class OutputRefusedError(EsnError, FileExistsError):
    """An output path exists and is not an artifact esn made: esn will not write into it or
    delete it, whatever the flags."""


class StoreWriteError(EsnError, OSError):
    """Writing a store failed (a full disk, a read-only file system...); what was committed
    before stays, and the same command resumes."""


class ModelMismatchError(EsnError, ValueError):
    """The model loaded for an intervention is not the one the store was made with."""
