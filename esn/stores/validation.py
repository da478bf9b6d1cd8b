"""``esn validate``: an activation store checked against its schema and its commit marks.

Without ``deep``: every array has the shape, dtype, dimensions and chunks its layout
declares, and every chunk that the write protocol says was committed is present (corpus
metadata and coordinates always; statistics, answers and checkpoints of each chunk with a
finished utterance). With ``deep`` every such chunk is also decoded.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from esn.errors import StoreDamagedError, StoreValidationError
from esn.schemas.store import STATUS_PENDING, StoreLayout, VariableSpec
from esn.stores.arrays import ALL_VARIABLES, COORDINATES
from esn.stores.integrity import (
    CommitState,
    required_chunk_keys,
    short_error,
    utterance_chunk_of,
)
from esn.stores.paths import list_keys

if TYPE_CHECKING:
    from esn.stores.activations import ActivationStore, Progress

__all__ = ["ValidationReport", "schema_problems", "validate_store"]


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    """The outcome of ``ActivationStore.validate``: problems break the schema; notes do not."""

    url: str
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    progress: Progress | None
    incomplete_chunks: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url, "ok": self.ok, "problems": list(self.problems),
            "notes": list(self.notes),
            "progress": None if self.progress is None else dataclasses.asdict(self.progress),
            "incomplete_chunks": list(self.incomplete_chunks),
        }

    def raise_if_invalid(self) -> None:
        if self.problems:
            raise StoreValidationError(f"{self.url}: " + "; ".join(self.problems))


def schema_problems(group: zarr.Group, layout: StoreLayout, specs: Sequence[VariableSpec],
                    coordinates: Sequence[str]) -> list[str]:
    """Arrays missing, or with another shape, dtype, dimensions or chunking than declared."""
    problems = []
    for spec in specs:
        problems.extend(_check_array(group, spec, layout))
    for name in coordinates:
        if name not in group:
            problems.append(f"coordinate {name!r} is missing")
    return problems


def validate_store(store: ActivationStore, *, deep: bool = False) -> ValidationReport:
    from esn.stores.activations import Progress

    layout, group = store.layout, store.group
    problems = schema_problems(group, layout, ALL_VARIABLES, COORDINATES)
    if problems:
        return ValidationReport(store.url, tuple(problems), (), None, ())
    notes: list[str] = []
    status, unreadable = store._read_status()
    for chunk in unreadable:
        what = ("is missing, but the commit log says it was committed"
                if chunk in store._status_missing else "cannot be decoded")
        problems.append(f"chunk status/c/{chunk} {what}: readers refuse the store; a resumed "
                        "esn extract writes the chunk again")
    logged = store._commits.logged
    for chunk in range(layout.n_chunks):
        finished = int((status[layout.chunk_slice(chunk)] != STATUS_PENDING).sum())
        if chunk not in unreadable and finished < logged[chunk]:
            problems.append(f"chunk status/c/{chunk} holds {finished} finished utterance(s), "
                            f"the commit log {int(logged[chunk])}: it was replaced or damaged")
    incomplete = []
    for chunk in range(layout.n_chunks):
        finished = status[layout.chunk_slice(chunk)] != STATUS_PENDING
        if finished.any() and not finished.all():
            incomplete.append(chunk)
    if incomplete:
        notes.append(f"{len(incomplete)} chunk(s) partly finished; a resumed run rewrites them")
    commits = CommitState(status, layout.utterance_chunk)
    present = set(list_keys(group))
    required = list(required_chunk_keys(group, commits))
    missing: dict[str, list[str]] = defaultdict(list)
    for key in required:
        if key not in present:
            missing[_array_of(key)].append(key)
    for name, keys in missing.items():
        chunks = sorted({utterance_chunk_of(k) for k in keys})
        shown = ", ".join(map(str, chunks[:10])) + (", ..." if len(chunks) > 10 else "")
        problems.append(f"{name}: {len(keys)} committed chunk file(s) missing, in utterance "
                        f"chunk {shown} (e.g. {keys[0]})")
    for chunk in range(layout.n_chunks):
        if layout.checkpoint_layers and commits.chunk_has(chunk, done_only=True) and (
                f"checkpoints/chunk_{chunk:06d}" not in group):
            problems.append(f"checkpoints of finished chunk {chunk} are missing")
    uncommitted = sorted({utterance_chunk_of(k) for k in present if k.startswith("K/c/")}
                         - {c for c in range(layout.n_chunks)
                            if commits.chunk_has(c, done_only=True)})
    if uncommitted:
        notes.append(f"{len(uncommitted)} chunk(s) hold statistics without a commit mark (an "
                     "interrupted write, or a lost status chunk): they count as pending and a "
                     f"resumed run writes them again (e.g. chunk {uncommitted[0]})")
    if deep:
        problems.extend(_undecodable(group, [k for k in required if k in present]))
    partial = _partial_files(store.url)
    if partial:
        notes.append(f"{len(partial)} temporary '.partial' file(s) from an interrupted write")
    return ValidationReport(
        store.url, tuple(problems), tuple(notes), Progress.of(status), tuple(incomplete)
    )


def _array_of(key: str) -> str:
    return key.split("/c/", 1)[0]


def _undecodable(group: zarr.Group, keys: Sequence[str]) -> list[str]:
    problems = []
    arrays: dict[str, zarr.Array] = {}
    for key in keys:
        name, coords = key.split("/c/", 1)
        if name not in arrays:
            node = group[name]
            assert isinstance(node, zarr.Array)
            arrays[name] = node
        try:
            np.asarray(arrays[name].get_block_selection(tuple(int(c) for c in coords.split("/"))))
        except StoreDamagedError as exc:  # e.g. a truncated Blosc frame, named already
            problems.append(str(exc).split(": ", 1)[-1].removesuffix(
                "; the store was damaged after it was written"))
        except Exception as exc:  # codec errors are not one exception type
            problems.append(f"chunk {key} cannot be decoded ({short_error(exc)})")
    return problems


def _check_array(group: zarr.Group, spec: VariableSpec, layout: StoreLayout) -> list[str]:
    if not layout.holds(spec):
        return ([f"array {spec.name!r} is present, but the layout keeps no activation sums"]
                if spec.name in group else [])
    try:
        if spec.name not in group:
            return [] if spec.older_stores_lack else [f"array {spec.name!r} is missing"]
        arr = group[spec.name]
    except (ValueError, TypeError, KeyError) as exc:
        return [f"{spec.name}/zarr.json cannot be read as Zarr array metadata "
                f"({short_error(exc)})"]
    if not isinstance(arr, zarr.Array):
        return [f"{spec.name!r} is a group, not an array"]
    problems = []
    where = f"{spec.name}/zarr.json"
    if tuple(arr.shape) != layout.shape_of(spec):
        problems.append(f"{where}: shape {arr.shape}, expected {layout.shape_of(spec)}")
    dims = tuple(getattr(arr.metadata, "dimension_names", None) or ())
    if dims != spec.dims:
        problems.append(f"{where}: dimensions {dims}, expected {spec.dims}")
    dtype = layout.dtype_of(spec)
    ok = arr.dtype.kind in "TUO" if dtype == "str" else arr.dtype == np.dtype(dtype)
    if not ok:
        problems.append(f"{where}: dtype {arr.dtype}, expected {dtype}")
    if arr.chunks[0] != layout.utterance_chunk:
        problems.append(f"{where}: chunks {arr.chunks} do not follow the utterance chunk "
                        f"{layout.utterance_chunk}")
    return problems


def _partial_files(url: str) -> list[Path]:
    if "://" in url and not url.startswith("file://"):
        return []
    root = Path(url.removeprefix("file://"))
    return sorted(root.rglob("*.partial")) if root.is_dir() else []
