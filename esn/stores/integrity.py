"""Reads of a store's committed chunks fail loudly: a missing or undecodable chunk is named.

Zarr fills a chunk that is not on disk with the fill value, by design; for an activation
store that would turn a deleted ``K`` chunk into counts of zero, or a deleted ``emotion``
chunk into items without a label, with no error. Which chunks must exist follows from the
write protocol (``esn.stores.activations``): corpus metadata and coordinates are written
at creation; statistics, answers and checkpoints of every utterance chunk with a finished
(``done``) utterance were written before its ``status``, the commit mark; a failure reason
exists wherever an utterance failed; and the commit log (``commits``, one file per chunk,
written after ``status``) says which status chunks must exist. ``CheckedStore`` wraps the
zarr store and raises ``StoreDamagedError`` when such a chunk is absent (no extra I/O: zarr
asks for every chunk it reads); ``CheckedArray`` names the chunk that a codec cannot decode.

Cost, measured on 2 cores (``esn select`` with every selector on a 512-utterance store of
28 x 18944 neurons, best of 3 alternating runs, the same store): 10.74 s with these checks
against 10.45 s for esn before them (32fae63, ``xr.open_zarr``): within run-to-run noise
(medians 10.82 s vs 11.16 s).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from esn.errors import StoreDamagedError
from esn.schemas.store import (
    CORPUS_FIELDS,
    RESULT_FIELDS,
    STATISTICS_VARIABLES,
    STATUS_DONE,
    STATUS_PENDING,
)

__all__ = ["COMMIT_LOG", "CheckedArray", "CheckedStore", "CommitState", "required_chunk_keys",
           "short_error", "store_arrays", "utterance_chunk_of"]

COORDINATE_ARRAYS = ("span", "layer", "neuron", "option")
CHECKPOINTS = "checkpoints"
_ALWAYS = frozenset(CORPUS_FIELDS) | frozenset(COORDINATE_ARRAYS)
_WHEN_DONE = frozenset(s.name for s in STATISTICS_VARIABLES) | (
    frozenset(RESULT_FIELDS) - {"failure_reason"})
_WHEN_FINISHED = frozenset({"failure_reason"})


COMMIT_LOG = "commits"  # (chunk,) int32, one chunk file per utterance chunk


class CommitState:
    """Which utterance chunks hold a finished utterance, from the ``status`` array, and
    what the commit log says (``commits[c]``: finished utterances of chunk ``c`` when it
    was committed; written after its ``status``, so a lost status chunk is noticed)."""

    def __init__(self, status: np.ndarray, utterance_chunk: int,
                 logged: np.ndarray | None = None) -> None:
        self._chunk = utterance_chunk
        self._status = np.asarray(status, dtype=np.int8).copy()
        n_chunks = -(-len(self._status) // utterance_chunk)
        self.logged = (np.zeros(n_chunks, dtype=np.int64) if logged is None
                       else np.asarray(logged, dtype=np.int64).copy())

    def update(self, start: int, codes: np.ndarray) -> None:
        """Record ``codes`` written to ``status[start:...]`` by this process."""
        self._status[start:start + len(codes)] = codes

    def set_status(self, status: np.ndarray) -> None:
        self._status = np.asarray(status, dtype=np.int8).copy()

    def finished_in(self, chunk: int) -> int:
        part = self._status[chunk * self._chunk:(chunk + 1) * self._chunk]
        return int((part != STATUS_PENDING).sum())

    def chunk_has(self, chunk: int, *, done_only: bool) -> bool:
        part = self._status[chunk * self._chunk:(chunk + 1) * self._chunk]
        return bool((part == STATUS_DONE).any() if done_only else (part != STATUS_PENDING).any())

    def requires(self, key: str) -> bool:
        """Must ``key`` (relative to the store's group) exist on disk?"""
        parts = key.split("/")
        if parts[0] == CHECKPOINTS:
            return (len(parts) > 3 and parts[1].startswith("chunk_") and "c" in parts[2:]
                    and self.chunk_has(int(parts[1].removeprefix("chunk_")), done_only=True))
        if len(parts) < 3 or parts[1] != "c":
            return False  # metadata documents are checked when the store opens
        name, chunk = parts[0], int(parts[2])
        if name == "status":
            return bool(self.logged[chunk] > 0)
        if name in _ALWAYS:
            return True
        if name in _WHEN_DONE:
            return self.chunk_has(chunk, done_only=True)
        if name in _WHEN_FINISHED:
            return self.chunk_has(chunk, done_only=False)
        return False  # the commit log itself, and the optional acoustics/


def store_arrays(group: zarr.Group) -> list[tuple[str, zarr.Array]]:
    """Every array under ``group`` (checkpoints and acoustics included), by path."""
    with warnings.catch_warnings():  # esn's writer lease is a file zarr does not know
        warnings.filterwarnings("ignore", message="Object at .* is not recognized")
        return [(path, node) for path, node in group.members(max_depth=None)
                if isinstance(node, zarr.Array)]


def required_chunk_keys(group: zarr.Group, commits: CommitState) -> Iterable[str]:
    """Every chunk key of ``group``'s arrays (checkpoints included) that must exist."""
    for path, node in store_arrays(group):
        if not isinstance(node, zarr.Array):
            continue
        grid = node.cdata_shape
        for coords in itertools.product(*(range(n) for n in grid)):
            key = f"{path}/c/" + "/".join(map(str, coords)) if grid else f"{path}/c"
            if commits.requires(key):
                yield key


def utterance_chunk_of(key: str) -> int:
    """The utterance chunk a chunk key belongs to (``K/c/3/...`` and
    ``checkpoints/chunk_000003/...`` -> 3)."""
    parts = key.split("/")
    if parts[0] == CHECKPOINTS:
        return int(parts[1].removeprefix("chunk_"))
    return int(parts[2])


class CheckedStore(WrapperStore[Store]):
    """A zarr store that refuses to stand in fill values for a missing committed chunk."""

    def __init__(self, store: Store, *, url: str, prefix: str = "",
                 commits: CommitState | None = None) -> None:
        super().__init__(store)
        self.url = url
        self.prefix = prefix.strip("/")
        self.commits = commits

    def _with_store(self, store: Store) -> CheckedStore:
        return type(self)(store, url=self.url, prefix=self.prefix, commits=self.commits)

    def __eq__(self, value: object) -> bool:
        return isinstance(value, CheckedStore) and self._store == value._store

    def _relative(self, key: str) -> str | None:
        if not self.prefix:
            return key
        head = self.prefix + "/"
        return key[len(head):] if key.startswith(head) else None

    def _check(self, key: str, value: Buffer | None, whole: bool = True) -> Buffer | None:
        if self.commits is None:
            return value
        relative = self._relative(key)
        if relative is None:
            return value
        if value is None and self.commits.requires(relative):
            raise StoreDamagedError(
                f"{self.url}: committed chunk {relative} is missing (the store was damaged "
                "after it was written; `esn validate` lists every such chunk)"
            )
        if value is not None and whole and _blosc_framed(relative):
            _check_blosc_frame(self.url, relative, value)
        return value

    async def get(self, key: str, prototype: BufferPrototype | None = None,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        assert prototype is not None  # zarr always passes one
        return self._check(key, await self._store.get(key, prototype, byte_range),
                           whole=byte_range is None)

    async def get_partial_values(
        self, prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        values = await self._store.get_partial_values(prototype, key_ranges)
        return [self._check(key, v, whole=r is None)
                for (key, r), v in zip(key_ranges, values, strict=True)]


_BLOSC_ARRAYS = frozenset(s.name for s in STATISTICS_VARIABLES)


def _blosc_framed(key: str) -> bool:
    """Chunks esn compresses with Blosc: the statistics and the checkpoints."""
    parts = key.split("/")
    return "c" in parts and (parts[0] in _BLOSC_ARRAYS or parts[0] == CHECKPOINTS)


def _check_blosc_frame(url: str, key: str, value: Buffer) -> None:
    """A Blosc frame records its compressed size at bytes 12-15; c-blosc does not check it
    against the buffer, so a truncated chunk could otherwise decode into garbage."""
    data = value.as_numpy_array()
    size = int(data[12:16].view("<u4")[0]) if data.nbytes >= 16 else -1
    if size != data.nbytes:
        raise StoreDamagedError(
            f"{url}: chunk {key} is truncated or not a Blosc frame ({data.nbytes} bytes, its "
            f"header says {size}); the store was damaged after it was written")


class CheckedArray:
    """A zarr array whose reads name the chunk that cannot be decoded.

    Quacks as an array for ``dask.array.from_array``: ``shape``, ``dtype``, ``ndim`` and
    ``__getitem__`` with slices.
    """

    def __init__(self, array: zarr.Array, url: str) -> None:
        self.array = array
        self.url = url
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, selection: Any) -> np.ndarray:
        try:
            return np.asarray(self.array[selection])
        except StoreDamagedError:
            raise
        except Exception as exc:  # codecs raise their own types (blosc, zstd, numcodecs...)
            raise self._locate(selection, exc) from exc

    def _locate(self, selection: Any, exc: Exception) -> StoreDamagedError:
        """Read the selection's chunks one by one to name the first that fails."""
        name = self.array.path
        for coords in self._chunks_of(selection):
            try:
                self.array.get_block_selection(coords)
            except StoreDamagedError as damaged:
                return damaged
            except Exception as inner:
                key = f"{name}/c/" + "/".join(map(str, coords))
                return StoreDamagedError(
                    f"{self.url}: chunk {key} cannot be decoded ({short_error(inner)}); the "
                    "store was damaged after it was written")
        return StoreDamagedError(f"{self.url}: {name} cannot be read ({short_error(exc)})")

    def _chunks_of(self, selection: Any) -> Iterable[tuple[int, ...]]:
        if not isinstance(selection, tuple):
            selection = (selection,)
        selection = selection + (slice(None),) * (self.ndim - len(selection))
        ranges = []
        for sel, size, chunk in zip(selection, self.shape, self.array.chunks, strict=False):
            if isinstance(sel, slice):
                start, stop, _ = sel.indices(size)
                ranges.append(range(start // chunk, max(start, stop - 1) // chunk + 1))
            elif isinstance(sel, (int, np.integer)):
                ranges.append(range(int(sel) % size // chunk, int(sel) % size // chunk + 1))
            else:
                ranges.append(range(-(-size // chunk)))
        return itertools.product(*ranges)


def short_error(exc: BaseException) -> str:
    """An exception in one line for an error message: its type and its first line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
