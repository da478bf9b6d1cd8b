"""The activation store on disk: create, write chunks, resume, validate, open as xarray.

The store is a Zarr v3 group laid out as ``esn.schemas.store`` declares, on a local path or
any fsspec URL zarr accepts (``memory://``, ``s3://``...).

Write protocol (what makes a killed writer harmless):
  1. ``create`` writes every array and the per-utterance corpus metadata, and the group
     attributes last; a group without attributes is an interrupted creation and is redone.
  2. ``write_batch`` writes whole chunks of statistics, then the per-utterance answers,
     then ``status`` last. ``status`` is the commit mark: a chunk whose status was not
     written is pending and is simply written again on resume. Local writes are atomic
     per chunk file (zarr writes a temporary file and renames it).

Codecs and chunking, chosen with ``benchmarks/store_codecs.py`` (one chunk of 32 utterances
x 2 spans x 18944 neurons, 4 layers, 2-core machine; ratio raw/stored, MB/s of raw data):

    =========================  ========= ============= ============ ==============
    codec                      K uint16  K write/read  act_sum f32  write/read
    =========================  ========= ============= ============ ==============
    none (baseline)            1.00      184 / 1259    1.00         458 / 2252
    zstd-3                     1.72      107 /  619    1.11         353 / 1010
    blosc zstd-3 bitshuffle    2.12      199 / 1034    1.20         259 / 1140
    blosc zstd-5 bitshuffle    2.14      169 /  971    1.22         201 / 1247
    blosc lz4-5 bitshuffle     2.09      272 / 1068    1.19         389 / 1160
    =========================  ========= ============= ============ ==============

blosc lz4 with bitshuffle is within 2% of the best ratio and the fastest writer, so every
statistic uses it. K as uint32 stores in the same bytes as uint16 (ratio 4.14 vs 2.09) but
decodes 1.5x more raw data, so counts are uint16 unless an utterance has > 65535 positions.
Chunks hold one layer of ``utterance_chunk`` utterances. ``benchmarks/store_chunks.py``
(512 utterances x 4 layers x 18944 neurons; write, then ``K.sum(span).groupby(emotion)``
on the threaded scheduler; baseline = chunk 16 in the same run):

    chunk     16     32     64    128    256
    write s   1.78   1.51   1.24   1.31   1.29
    reduce s  1.96   0.91   0.66   0.55   0.52   (2.96x faster than 16 at 64, 3.56x at 128)

The default of 64 reads within 20% of 128 while a writer of a 28-layer 7B model buffers
half as much (407 MB instead of 815 MB of statistics per chunk).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from esn.errors import (
    SchemaError,
    StoreExistsError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreValidationError,
)
from esn.provenance import library_versions
from esn.schemas.batch import StatsBatch
from esn.schemas.store import (
    CORPUS_FIELDS,
    METADATA_VARIABLES,
    RESULT_FIELDS,
    STATISTICS_VARIABLES,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_PENDING,
    ModelInfo,
    ProbeInfo,
    StoreAttributes,
    StoreLayout,
    VariableSpec,
    utterance_digest,
)
from esn.schemas.utterance import Utterance
from esn.stores.checkpoints import CheckpointChunk, read_checkpoint_chunk, write_checkpoint_chunk

__all__ = ["ActivationStore", "Progress", "ValidationReport", "open_store"]

STATISTICS_CODEC = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
COORDINATES = ("span", "layer", "neuron", "option")
_ALL_VARIABLES: tuple[VariableSpec, ...] = STATISTICS_VARIABLES + METADATA_VARIABLES
_FILL = {"str": "", "bool": False, "float32": float("nan")}


@dataclasses.dataclass(frozen=True)
class Progress:
    """How many utterances are done, failed, or still pending."""

    done: int
    failed: int
    pending: int

    @property
    def total(self) -> int:
        return self.done + self.failed + self.pending

    @classmethod
    def of(cls, status: np.ndarray) -> Progress:
        """Count the status codes of ``(utterance,)`` ``status``."""
        return cls(
            done=int((status == STATUS_DONE).sum()),
            failed=int((status == STATUS_FAILED).sum()),
            pending=int((status == STATUS_PENDING).sum()),
        )


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


def _url_of(url: str | os.PathLike[str]) -> str:
    return os.fspath(url)


def _open_group(url: str, mode: str, storage_options: Mapping[str, Any] | None) -> zarr.Group:
    kwargs: dict[str, Any] = {"mode": mode, "zarr_format": 3}
    if storage_options and "://" in url:
        kwargs["storage_options"] = dict(storage_options)
    try:
        return zarr.open_group(url, **kwargs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise StoreNotFoundError(f"no activation store at {url}") from exc


def _group_exists(url: str, storage_options: Mapping[str, Any] | None) -> bool:
    try:
        _open_group(url, "r", storage_options)
    except StoreNotFoundError:
        return False
    return True


class ActivationStore:
    """An activation store opened for reading (``mode="r"``) or writing (``"r+"``)."""

    def __init__(self, group: zarr.Group, url: str) -> None:
        self._group = group
        self.url = url
        try:
            self.attributes = StoreAttributes.from_dict(dict(group.attrs))
        except SchemaError as exc:
            raise StoreValidationError(f"{url}: {exc}") from exc

    # -- opening and creating ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        mode: str = "r",
        storage_options: Mapping[str, Any] | None = None,
    ) -> ActivationStore:
        """Open an existing store; ``mode="r+"`` to write results into it."""
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
        url = _url_of(url)
        group = _open_group(url, mode, storage_options)
        if "format" not in group.attrs:
            raise StoreValidationError(
                f"{url}: not a finished esn activation store (no esn attributes; "
                "its creation may have been interrupted: create it again)"
            )
        return cls(group, url)

    @classmethod
    def create(
        cls,
        url: str | os.PathLike[str],
        *,
        utterances: Sequence[Utterance],
        model: ModelInfo,
        probe: ProbeInfo,
        labels: Sequence[str],
        n_layers: int,
        n_neurons: int,
        corpus: Sequence[str] = (),
        hook_point: str = "mlp.act_fn",
        utterance_chunk: int = 64,
        count_dtype: str = "uint16",
        checkpoint_layers: Sequence[int] = (),
        hidden_size: int = 0,
        hidden_dtype: str = "float32",
        if_exists: str = "error",
        storage_options: Mapping[str, Any] | None = None,
    ) -> ActivationStore:
        """Create a store for ``utterances`` (in this order), or resume a matching one.

        ``if_exists``: ``"error"`` (refuse), ``"overwrite"`` (delete and recreate), or
        ``"resume"`` (open the existing store if it was made for the same model, probe,
        labels, layout and utterances; otherwise raise ``StoreMismatchError``).
        """
        if if_exists not in ("error", "overwrite", "resume"):
            raise ValueError(f"if_exists must be error|overwrite|resume, got {if_exists!r}")
        url = _url_of(url)
        ids = [u.id for u in utterances]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise SchemaError(f"utterance ids must be unique; repeated: {dupes}")
        if not ids:
            raise SchemaError("a store needs at least one utterance")
        layout = StoreLayout(
            n_utterances=len(ids), n_layers=n_layers, n_neurons=n_neurons,
            n_options=len(tuple(labels)), utterance_chunk=utterance_chunk,
            count_dtype=count_dtype, checkpoint_layers=tuple(checkpoint_layers),
            hidden_size=hidden_size, hidden_dtype=hidden_dtype,
        )
        attrs = StoreAttributes(
            model=model, probe=probe, labels=tuple(labels), layout=layout,
            utterance_digest=utterance_digest(ids), corpus=tuple(corpus),
            hook_point=hook_point, versions=library_versions(),
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        if _group_exists(url, storage_options):
            existing = _open_group(url, "r", storage_options)
            finished = "format" in existing.attrs
            if if_exists == "error" and finished:
                raise StoreExistsError(
                    f"{url} already holds an activation store; pass overwrite to replace it "
                    "or resume to continue it"
                )
            if if_exists == "resume" and finished:
                store = cls.open(url, mode="r+", storage_options=storage_options)
                store._check_same_identity(attrs)
                return store
        group = _open_group(url, "w", storage_options)
        _create_arrays(group, layout, attrs.labels)
        _write_corpus_metadata(group, utterances)
        group.attrs.update(attrs.to_dict())  # last: marks the creation as finished
        return cls(group, url)

    def _check_same_identity(self, wanted: StoreAttributes) -> None:
        have, want = self.attributes.identity(), wanted.identity()
        if have == want:
            return
        differing = sorted(k for k in want if have.get(k) != want.get(k))
        details = ", ".join(f"{k}: store has {have.get(k)!r}, asked {want.get(k)!r}"
                            for k in differing if k != "utterance_digest")
        if "utterance_digest" in differing:
            details = ", ".join(filter(None, [details, "the utterance list differs"]))
        raise StoreMismatchError(
            f"{self.url} was made for another run ({details}); refusing to resume. "
            "Use a new output path, or overwrite to start again."
        )

    # -- reading state --------------------------------------------------------------------

    @property
    def layout(self) -> StoreLayout:
        return self.attributes.layout

    @property
    def group(self) -> zarr.Group:
        return self._group

    def status(self) -> np.ndarray:
        """``(utterance,)`` int8 status codes; an unreadable status chunk reads as pending."""
        return self._read_status()[0]

    def _read_status(self) -> tuple[np.ndarray, list[int]]:
        arr = self._array("status")
        out = np.full(self.layout.n_utterances, STATUS_PENDING, dtype=np.int8)
        unreadable = []
        for chunk in range(self.layout.n_chunks):
            sl = self.layout.chunk_slice(chunk)
            try:
                out[sl] = arr[sl]
            except Exception:  # a torn or foreign chunk file: zarr raises codec-specific errors
                unreadable.append(chunk)
        return out, unreadable

    def progress(self) -> Progress:
        return Progress.of(self.status())

    def pending_chunks(self) -> list[int]:
        """Chunks holding at least one pending utterance: what a resumed run must write."""
        status = self.status()
        return [c for c in range(self.layout.n_chunks)
                if (status[self.layout.chunk_slice(c)] == STATUS_PENDING).any()]

    def utterance_ids(self) -> np.ndarray:
        return self.metadata("utterance")

    def metadata(self, name: str) -> np.ndarray:
        """One per-utterance metadata variable as a numpy array (strings as objects)."""
        if name not in {spec.name for spec in METADATA_VARIABLES}:
            raise KeyError(f"{name!r} is not a per-utterance metadata variable")
        return _from_store_values(np.asarray(self._array(name)[...]))

    # -- writing --------------------------------------------------------------------------

    def write_batch(
        self, start: int, batch: StatsBatch, checkpoints: CheckpointChunk | None = None
    ) -> None:
        """Write results for utterances ``start .. start+len(batch)``: whole chunks only.

        ``start`` must be a chunk boundary and the batch must end on one (or at the last
        utterance). Hidden-state checkpoints (one chunk's worth, required when the layout
        has checkpoint layers) and statistics go first and ``status`` last, so an
        interrupted write leaves the chunks pending.
        """
        self._require_writable()
        layout = self.layout
        stop = start + len(batch)
        aligned_end = stop % layout.utterance_chunk == 0 or stop == layout.n_utterances
        if start % layout.utterance_chunk or not aligned_end or stop > layout.n_utterances:
            raise ValueError(
                f"batch [{start}, {stop}) is not chunk-aligned: chunks hold "
                f"{layout.utterance_chunk} utterances and the store {layout.n_utterances}"
            )
        batch.check(layout)
        if layout.checkpoint_layers:
            self._check_checkpoints(start, stop, checkpoints)
            assert checkpoints is not None
            write_checkpoint_chunk(self._group, start // layout.utterance_chunk, checkpoints)
        elif checkpoints is not None:
            raise ValueError(f"{self.url} was created without checkpoint layers")
        sl = slice(start, stop)
        for spec in STATISTICS_VARIABLES:
            self._array(spec.name)[sl] = getattr(batch, spec.name)
        for name in RESULT_FIELDS:
            self._array(name)[sl] = _to_store_values(getattr(batch, name))
        self._array("status")[sl] = np.asarray(batch.status, dtype=np.int8)

    def _check_checkpoints(self, start: int, stop: int, data: CheckpointChunk | None) -> None:
        layout = self.layout
        if stop - start > layout.utterance_chunk:
            raise ValueError("a batch with checkpoints must hold exactly one chunk")
        if data is None:
            raise ValueError(f"{self.url} stores checkpoints at layers "
                             f"{list(layout.checkpoint_layers)}: pass them with the batch")
        want = (len(layout.checkpoint_layers), stop - start, layout.hidden_size)
        got = (data.hidden.shape[0], data.hidden.shape[1], data.hidden.shape[-1])
        if got != want or str(data.hidden.dtype) != f"torch.{layout.hidden_dtype}":
            raise SchemaError(
                f"checkpoints have shape {tuple(data.hidden.shape)} and {data.hidden.dtype}; "
                f"expected (layers, utterances, *, hidden) = {want[0]}, {want[1]}, *, {want[2]} "
                f"in {layout.hidden_dtype}"
            )

    def read_checkpoints(self, chunk: int) -> CheckpointChunk:
        """Hidden states entering the checkpoint layers for chunk ``chunk``'s utterances."""
        return read_checkpoint_chunk(self._group, chunk)

    def mark_failed(self, indices: Sequence[int], reasons: Sequence[str]) -> None:
        """Record utterances as failed (e.g. unreadable audio) without statistics."""
        self._require_writable()
        if len(indices) != len(reasons) or not all(reasons):
            raise ValueError("mark_failed needs one non-empty reason per index")
        for i, reason in zip(indices, reasons, strict=True):
            self._array("failure_reason")[i] = reason
            self._array("status")[i] = STATUS_FAILED

    def _array(self, name: str) -> zarr.Array:
        return _array(self._group, name)

    def _require_writable(self) -> None:
        if self._group.read_only:
            raise PermissionError(f"{self.url} is open read-only; open it with mode='r+'")

    # -- checking ---------------------------------------------------------------------------

    def validate(self, *, deep: bool = False) -> ValidationReport:
        """Check arrays against the schema and chunk state; ``deep`` also decodes statistics."""
        problems: list[str] = []
        notes: list[str] = []
        layout = self.layout
        for spec in _ALL_VARIABLES:
            problems.extend(_check_array(self._group, spec, layout))
        for name in COORDINATES:
            if name not in self._group:
                problems.append(f"coordinate {name!r} is missing")
        if problems:
            return ValidationReport(self.url, tuple(problems), (), None, ())
        status, unreadable = self._read_status()
        for chunk in unreadable:
            notes.append(f"status of chunk {chunk} is unreadable: its utterances count as pending")
        incomplete = []
        for chunk in range(layout.n_chunks):
            sl = self.layout.chunk_slice(chunk)
            finished = status[sl] != STATUS_PENDING
            if finished.any() and not finished.all():
                incomplete.append(chunk)
            if (status[sl] == STATUS_DONE).any():
                problems.extend(self._check_statistics_chunk(chunk, deep))
                if layout.checkpoint_layers and f"checkpoints/chunk_{chunk:06d}" not in self._group:
                    problems.append(f"checkpoints of finished chunk {chunk} are missing")
        if incomplete:
            notes.append(f"{len(incomplete)} chunk(s) partly finished; a resumed run rewrites them")
        partial = _partial_files(self.url)
        if partial:
            notes.append(f"{len(partial)} temporary '.partial' file(s) from an interrupted write")
        return ValidationReport(
            self.url, tuple(problems), tuple(notes), Progress.of(status), tuple(incomplete)
        )

    def _check_statistics_chunk(self, chunk: int, deep: bool) -> list[str]:
        problems = []
        sl = self.layout.chunk_slice(chunk)
        for spec in STATISTICS_VARIABLES:
            arr = self._array(spec.name)
            n_chunks_per_utterance_chunk = int(np.prod(arr.cdata_shape[1:]))
            keys = [
                "c/" + "/".join(str(i) for i in (chunk, *rest))
                for rest in np.ndindex(*arr.cdata_shape[1:])
            ]
            missing = [k for k in keys if not _key_exists(arr, k)]
            if missing:
                problems.append(
                    f"{spec.name}: {len(missing)}/{n_chunks_per_utterance_chunk} chunk file(s) "
                    f"missing for finished chunk {chunk} (e.g. {missing[0]})"
                )
                continue
            if deep:
                try:
                    arr[sl]
                except Exception as exc:  # codec errors are not one exception type
                    problems.append(f"{spec.name}: chunk {chunk} cannot be decoded ({exc})")
        return problems

    # -- views ----------------------------------------------------------------------------

    def to_xarray(self) -> xr.Dataset:
        """The store as a lazy, Dask-backed ``xarray.Dataset`` (metadata as coordinates)."""
        metadata = {spec.name for spec in METADATA_VARIABLES} - {"utterance"}
        ds = xr.open_zarr(
            self._group.store,
            group=self._group.path or None,
            consolidated=False,
            zarr_format=3,
            chunks={},
            mask_and_scale=False,
            drop_variables=sorted(metadata),
        )
        coords = {}
        for spec in METADATA_VARIABLES:
            if spec.name in metadata:
                values = np.asarray(self._array(spec.name)[...])
                coords[spec.name] = (spec.dims, _from_store_values(values))
        ds = ds.assign_coords(coords)
        ds.attrs = self.attributes.to_dict()
        return ds

    def info(self) -> dict[str, Any]:
        """Sizes, progress and storage figures, as one JSON-able dict."""
        attrs = self.attributes
        progress = self.progress()
        raw = stored = 0
        for _, arr in self._group.members(max_depth=None):  # checkpoints/ included
            if not isinstance(arr, zarr.Array):
                continue
            stored += arr.nbytes_stored()
            chunk_bytes = int(np.prod(arr.chunks)) * arr.dtype.itemsize
            raw += min(arr.nbytes, arr.nchunks_initialized * chunk_bytes)
        return {
            "url": self.url,
            "schema_version": attrs.schema_version,
            "model": attrs.model.to_dict(),
            "hook_point": attrs.hook_point,
            "labels": list(attrs.labels),
            "corpus": list(attrs.corpus),
            "created": attrs.created,
            "sizes": {
                "utterances": attrs.layout.n_utterances,
                "spans": list(attrs.layout.spans),
                "layers": attrs.layout.n_layers,
                "neurons_per_layer": attrs.layout.n_neurons,
                "neurons": attrs.layout.n_layers * attrs.layout.n_neurons,
                "checkpoint_layers": list(attrs.layout.checkpoint_layers),
            },
            "progress": dataclasses.asdict(progress),
            "chunking": {
                "utterance_chunk": attrs.layout.utterance_chunk,
                "n_chunks": attrs.layout.n_chunks,
                "statistics_chunk_shape": list(attrs.layout.statistics_chunks),
                "count_dtype": attrs.layout.count_dtype,
                "codec": STATISTICS_CODEC.to_dict(),
            },
            "bytes": {"raw_written": raw, "stored": stored,
                      "ratio": round(raw / stored, 3) if stored else None},
            "versions": dict(attrs.versions),
        }


def open_store(
    url: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> xr.Dataset:
    """Open an activation store as a lazy ``xarray.Dataset`` backed by Dask.

    Statistics ``K``, ``T`` and ``act_sum`` stay on disk until computed; per-utterance
    metadata (emotion, speaker, split, status...) are coordinates along ``utterance``, so
    ``ds.K.groupby("emotion").sum()`` builds a graph without reading any statistics.
    """
    return ActivationStore.open(url, storage_options=storage_options).to_xarray()


# -- helpers --------------------------------------------------------------------------------


def _create_arrays(group: zarr.Group, layout: StoreLayout, labels: Sequence[str]) -> None:
    u = layout.utterance_chunk
    for spec in _ALL_VARIABLES:
        is_stat = spec in STATISTICS_VARIABLES and len(spec.dims) == 4
        chunks = layout.statistics_chunks if is_stat else (u, *layout.shape_of(spec)[1:])
        dtype = layout.dtype_of(spec)
        group.create_array(
            spec.name,
            shape=layout.shape_of(spec),
            chunks=chunks,
            dtype=str if dtype == "str" else dtype,
            fill_value=_FILL.get(dtype, 0),
            dimension_names=list(spec.dims),
            compressors=[STATISTICS_CODEC] if spec in STATISTICS_VARIABLES else "auto",
            attributes={"description": spec.description},
            overwrite=True,  # fsspec's memory store keeps old arrays visible after mode "w"
        )
    coordinate_values = {
        "span": np.asarray(layout.spans),
        "layer": np.arange(layout.n_layers, dtype=np.int32),
        "neuron": np.arange(layout.n_neurons, dtype=np.int32),
        "option": np.arange(1, layout.n_options + 1, dtype=np.int32),
    }
    for name, values in coordinate_values.items():
        arr = group.create_array(
            name, shape=values.shape, dtype=str if values.dtype.kind == "U" else values.dtype,
            dimension_names=[name], fill_value="" if values.dtype.kind == "U" else 0,
            overwrite=True,
        )
        arr[...] = values
    _array(group, "options").attrs["labels"] = list(labels)


def _write_corpus_metadata(group: zarr.Group, utterances: Sequence[Utterance]) -> None:
    values = {
        "utterance": [u.id for u in utterances],
        "corpus": [u.corpus for u in utterances],
        "path": [u.path for u in utterances],
        "speaker": [u.speaker or "" for u in utterances],
        "emotion": [u.emotion for u in utterances],
        "split": [u.split or "" for u in utterances],
    }
    assert set(values) == set(CORPUS_FIELDS)
    for name, column in values.items():
        _array(group, name)[...] = np.asarray(column, dtype=object)


def _array(group: zarr.Group, name: str) -> zarr.Array:
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise StoreValidationError(f"{group.store_path}: {name!r} is a group, not an array")
    # Write every chunk, even one equal to the fill value (e.g. all-zero counts): a finished
    # chunk must exist on disk, so a missing file always means a lost write.
    return node.with_config({"write_empty_chunks": True})


def _to_store_values(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object) if values.dtype == object else values


def _from_store_values(values: np.ndarray) -> np.ndarray:
    return values.astype(object) if values.dtype.kind in "TUO" else values


def _check_array(group: zarr.Group, spec: VariableSpec, layout: StoreLayout) -> list[str]:
    if spec.name not in group:
        return [f"array {spec.name!r} is missing"]
    arr = group[spec.name]
    if not isinstance(arr, zarr.Array):
        return [f"{spec.name!r} is a group, not an array"]
    problems = []
    if tuple(arr.shape) != layout.shape_of(spec):
        problems.append(f"{spec.name}: shape {arr.shape}, expected {layout.shape_of(spec)}")
    dims = tuple(getattr(arr.metadata, "dimension_names", None) or ())
    if dims != spec.dims:
        problems.append(f"{spec.name}: dimensions {dims}, expected {spec.dims}")
    dtype = layout.dtype_of(spec)
    ok = arr.dtype.kind in "TUO" if dtype == "str" else arr.dtype == np.dtype(dtype)
    if not ok:
        problems.append(f"{spec.name}: dtype {arr.dtype}, expected {dtype}")
    if arr.chunks[0] != layout.utterance_chunk:
        problems.append(f"{spec.name}: chunks {arr.chunks} do not follow the utterance chunk "
                        f"{layout.utterance_chunk}")
    return problems


def _key_exists(arr: zarr.Array, key: str) -> bool:
    store_path = arr.store_path
    return zarr.core.sync.sync(store_path.store.exists(f"{store_path.path}/{key}"))


def _partial_files(url: str) -> list[Path]:
    if "://" in url and not url.startswith("file://"):
        return []
    root = Path(url.removeprefix("file://"))
    return sorted(root.rglob("*.partial")) if root.is_dir() else []
