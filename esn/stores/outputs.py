"""Where esn may write: a new path, an empty folder, or an artifact esn made itself.

Every command that writes follows one rule, ``claim_output``: an existing path that is not
recognisably esn's own artifact of the expected kind is refused, whatever the flags;
``overwrite`` replaces only such an artifact, and ``remove_own`` deletes only the entries
that esn writes into it, so a file a user put beside them survives. Each kind of output
(activation store, neuron-set file, results folder...) is declared once, by the module that
writes it, as an ``OutputKind``: how to recognise it and which entries are esn's.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

import fsspec

from esn.errors import OutputRefusedError, RequestError, StoreExistsError

__all__ = [
    "OutputKind",
    "claim_output",
    "has_json_marker",
    "has_zarr_format",
    "move_into_place",
    "output_filesystem",
    "remove_own",
]

OutputState = Literal["new", "empty", "esn"]
Recogniser = Callable[[fsspec.AbstractFileSystem, str], bool]

#: The most a marker file may hold. Markers are read whole (a neuron-set file of a 7B model
#: is tens of MB), but only after its first byte says it is a JSON object.
MARKER_LIMIT = 256 << 20


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutputKind:
    """One kind of artifact esn writes.

    ``recognise(fs, path)`` says whether an existing ``path`` is such an artifact made by
    esn (from its own marker: a format attribute or a settings file). ``entries`` are the
    names (glob patterns) directly inside a folder artifact that esn writes, and so may
    delete when it replaces the artifact; a file artifact is replaced whole.
    """

    name: str
    folder: bool
    recognise: Recogniser
    entries: tuple[str, ...] = ()


#: Filesystems whose listings are never stale: everything else (s3, gcs, abfs...) is
#: opened without fsspec's listing cache, because esn's stores are written by other
#: processes (a cluster's workers, another run) while this one reads them.
_LIVE_LISTINGS = ("file", "local", "memory")


def fsspec_options(url: str | os.PathLike[str],
                   storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``storage_options`` for ``url``, with the listing cache off on remote filesystems
    unless the caller set it."""
    options = dict(storage_options or {})
    protocol = os.fspath(url).split("://", 1)[0] if "://" in os.fspath(url) else "file"
    if protocol not in _LIVE_LISTINGS:
        try:
            fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:  # ValueError: a protocol fsspec lacks
            reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            raise RequestError(f"{os.fspath(url)}: {protocol}:// needs a filesystem package "
                               f"({reason.strip()})") from exc
        options.setdefault("use_listings_cache", False)
    return options


def output_filesystem(
    url: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` and the path on it."""
    fs, path = fsspec.core.url_to_fs(os.fspath(url), **fsspec_options(url, storage_options))
    return fs, path.rstrip("/") or path


def claim_output(
    url: str | os.PathLike[str],
    kind: OutputKind,
    *,
    overwrite: bool = False,
    resume: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> OutputState:
    """Check that esn may write ``kind`` at ``url``; say what is there now.

    Returns ``"new"`` (nothing there), ``"empty"`` (an empty folder, for a folder kind) or
    ``"esn"`` (esn's own artifact of this kind, which the caller resumes or, with
    ``overwrite``, replaces). Raises ``OutputRefusedError`` for anything else, and
    ``StoreExistsError`` for esn's own artifact when neither ``overwrite`` nor ``resume``
    is asked for. Nothing is written or deleted here.
    """
    fs, path = output_filesystem(url, storage_options)
    shown = os.fspath(url)
    try:
        exists = fs.exists(path)
        is_dir = exists and fs.isdir(path)
    except OSError as exc:
        raise OutputRefusedError(f"{shown}: cannot be inspected ({_reason(exc)})") from exc
    if not exists:
        _check_parent(fs, path, shown)
        return "new"
    if kind.folder != is_dir:  # kind names say what they are: "results folder", "... file"
        what = "a folder" if is_dir else "a file"
        raise OutputRefusedError(
            f"{shown} is {what}, not an esn {kind.name}: choose another path"
        )
    if is_dir and not fs.ls(path, detail=False):
        return "empty"
    if not kind.recognise(fs, path):
        raise OutputRefusedError(
            f"{shown} exists and is not an esn {kind.name}{_example(fs, path, is_dir)}; "
            "esn never writes into or deletes what it did not make: choose a new or empty path"
        )
    if not (overwrite or resume):
        raise StoreExistsError(
            f"{shown} already holds an esn {kind.name}; pass overwrite (--overwrite) to "
            "replace it"
        )
    return "esn"


def remove_own(
    url: str | os.PathLike[str],
    kind: OutputKind,
    *,
    keep: tuple[str, ...] = (),
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Delete esn's own artifact at ``url`` before it is written again.

    A folder loses only its ``kind.entries`` (except names in ``keep``, e.g. a writer's
    lease); anything else in it stays, and an empty folder is left as it is. Refuses
    (``OutputRefusedError``) a path that ``kind`` does not recognise, so a caller cannot
    delete a user's files by mistake.
    """
    fs, path = output_filesystem(url, storage_options)
    if not fs.exists(path) or (fs.isdir(path) and not fs.ls(path, detail=False)):
        return
    if not kind.recognise(fs, path):
        raise OutputRefusedError(f"{os.fspath(url)} is not an esn {kind.name}; not deleting it")
    if not kind.folder:
        fs.rm(path)
        return
    for entry in fs.ls(path, detail=False):
        name = _name(entry)
        if name in keep or not _is_own(kind, name):
            continue
        fs.rm(entry, recursive=True)


def move_into_place(
    staging: str | os.PathLike[str],
    url: str | os.PathLike[str],
    kind: OutputKind,
    *,
    last: tuple[str, ...] = (),
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Put the finished folder ``staging`` (on the filesystem of ``url``, e.g. a hidden
    sibling) where ``claim_output`` allowed ``kind`` to be written.

    Nothing at ``url``, or an empty folder: ``staging`` is renamed to ``url``. Esn's own
    artifact: its entries are removed (``remove_own``) except those in ``last`` (the
    marker), ``staging``'s entries are moved in, and the names in ``last`` replace the old
    marker at the end, so the folder is recognisably esn's at every moment and a user's
    file inside survives. Every entry of ``staging`` must be one of ``kind.entries``
    (``ValueError`` otherwise: a later ``remove_own`` could not find it).
    """
    fs, path = output_filesystem(url, storage_options)
    _, source = output_filesystem(staging, storage_options)
    names = sorted(_name(e) for e in fs.ls(source, detail=False))
    stray = [n for n in names if not _is_own(kind, n)]
    if stray:
        raise ValueError(f"an esn {kind.name} declares no entry {stray[0]!r}")
    if fs.exists(path) and not fs.ls(path, detail=False):
        fs.rmdir(path)
    if not fs.exists(path):
        fs.mv(source, path, recursive=True)
        return
    remove_own(url, kind, keep=last, storage_options=storage_options)
    for name in sorted(names, key=lambda n: n in last):
        target = f"{path}/{name}"
        if fs.isdir(target):  # only a marker is still there; a file is renamed over
            fs.rm(target, recursive=True)
        fs.mv(f"{source}/{name}", target, recursive=True)
    for name in set(last) - set(names):
        if fs.exists(f"{path}/{name}"):
            fs.rm(f"{path}/{name}", recursive=True)
    if fs.exists(source):  # (an object store has no empty folders left to remove)
        fs.rmdir(source)


def has_json_marker(file: str, key: str, values: tuple[str, ...]) -> Recogniser:
    """A recogniser: the artifact holds JSON ``file`` (relative; "" for the artifact itself)
    whose ``key`` is one of ``values``."""

    def recognise(fs: fsspec.AbstractFileSystem, path: str) -> bool:
        data = _read_json_object(fs, f"{path}/{file}" if file else path)
        return data is not None and data.get(key) in values

    return recognise


def has_zarr_format(group: str, values: tuple[str, ...]) -> Recogniser:
    """A recogniser: the artifact is (``group`` "") or holds (``group`` a relative path) a
    Zarr group whose ``format`` attribute is one of ``values`` (in v3's ``zarr.json``, or
    v2's ``.zattrs``)."""

    def recognise(fs: fsspec.AbstractFileSystem, path: str) -> bool:
        root = f"{path}/{group}" if group else path
        v3 = _read_json_object(fs, f"{root}/zarr.json")
        if v3 is not None:
            attributes = v3.get("attributes")
            return isinstance(attributes, dict) and attributes.get("format") in values
        v2 = _read_json_object(fs, f"{root}/.zattrs")
        return v2 is not None and v2.get("format") in values

    return recognise


def _read_json_object(fs: fsspec.AbstractFileSystem, target: str) -> dict[str, Any] | None:
    """The JSON object in file ``target``; None when it is missing, unreadable, not a JSON
    object, or larger than ``MARKER_LIMIT`` (a user's big file is not read whole)."""
    try:
        with fs.open(target, "rb") as handle:
            head = handle.read(1 << 16)
            if not head.lstrip().startswith(b"{"):
                return None
            rest = handle.read(MARKER_LIMIT)
            if handle.read(1):
                return None
        data = json.loads(head + rest)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _name(entry: str) -> str:
    return entry.rstrip("/").rsplit("/", 1)[-1]


def _is_own(kind: OutputKind, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in kind.entries)


def _check_parent(fs: fsspec.AbstractFileSystem, path: str, shown: str) -> None:
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent and fs.exists(parent) and not fs.isdir(parent):
        raise OutputRefusedError(f"{shown}: {parent} is a file, not a folder")


def _example(fs: fsspec.AbstractFileSystem, path: str, is_dir: bool) -> str:
    if not is_dir:
        return ""
    names = sorted(_name(e) for e in fs.ls(path, detail=False))
    more = f" and {len(names) - 1} more" if len(names) > 1 else ""
    return f" (it holds {names[0]!r}{more})"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
