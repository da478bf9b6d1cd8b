"""The activation store on disk: create, write chunks, resume, validate, open as xarray.

The store is a Zarr v3 group laid out as ``esn.schemas.store`` declares, on a local path or
any fsspec URL zarr accepts (``memory://``, ``s3://``...).

Write protocol (what makes a killed writer harmless):
  1. ``create`` marks the group as esn's creation in progress (``esn_creating``), writes
     every array and the per-utterance corpus metadata, and the full group attributes last;
     a group still marked as in progress is an interrupted creation and is redone. A path
     holding anything but an esn store is never written into (``esn.stores.paths``).
  2. ``write_batch`` writes whole chunks of statistics, then the per-utterance answers,
     then ``status``, then the commit log. ``status`` is the commit mark: a chunk whose
     status was not written is pending and is simply written again on resume; the commit
     log makes a lost status chunk noticeable (``esn.stores.integrity``). Local writes are
     atomic per chunk file (zarr writes a temporary file and renames it).
  3. One run writes at a time: writers hold ``esn.stores.lease.WriterLease``.

Reads of committed chunks are checked (``esn.stores.integrity``); codecs and chunking were
chosen by measurement (``esn.stores.arrays``).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr

from esn.errors import (
    RequestError,
    SchemaError,
    StoreDamagedError,
    StoreExistsError,
    StoreMismatchError,
    StoreValidationError,
    StoreWriteError,
)
from esn.provenance import library_versions
from esn.schemas.batch import StatsBatch
from esn.schemas.store import (
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
    utterance_digest,
)
from esn.schemas.utterance import Utterance
from esn.stores.arrays import (
    ALL_VARIABLES,
    COORDINATES,
    array,
    create_arrays,
    from_store_values,
    sums_from_store,
    sums_to_store,
    to_store_values,
    write_corpus_metadata,
)
from esn.stores.checkpoints import GROUP as CHECKPOINT_GROUP
from esn.stores.checkpoints import (
    CheckpointChunk,
    read_checkpoint_chunk,
    write_checkpoint_chunk,
)
from esn.stores.integrity import (
    COMMIT_LOG,
    CheckedArray,
    CheckedStore,
    CommitState,
    required_chunk_keys,
    short_error,
    utterance_chunk_of,
)
from esn.stores.lease import LEASE_FILE
from esn.stores.outputs import claim_output, remove_own
from esn.stores.paths import (
    CREATING,
    STORE_OUTPUT,
    checked_group,
    group_exists,
    list_keys,
    open_group,
    url_of,
)
from esn.stores.validation import ValidationReport, schema_problems

__all__ = ["STORE_OUTPUT", "ActivationStore", "Progress", "ValidationReport", "open_store"]

_LATE_VARIABLES = frozenset(spec.name for spec in METADATA_VARIABLES if spec.older_stores_lack)


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


class ActivationStore:
    """An activation store opened for reading (``mode="r"``) or writing (``"r+"``).

    Every read of a committed chunk goes through ``esn.stores.integrity``: a chunk that is
    missing or cannot be decoded raises ``StoreDamagedError`` naming it, instead of
    reading as fill values.
    """

    def __init__(self, group: zarr.Group, url: str) -> None:
        self.url = url
        try:
            self.attributes = StoreAttributes.from_dict(dict(group.attrs))
        except SchemaError as exc:
            raise StoreValidationError(f"{url}: {exc}") from exc
        self._group = checked_group(group, url)
        store = self._group.store
        assert isinstance(store, CheckedStore)
        self._checked = store
        layout = self.layout
        store.commits = self._commits = CommitState(
            np.zeros(layout.n_utterances, np.int8), layout.utterance_chunk, self._read_log())
        status, self._unreadable_status = self._read_status()
        self._commits.set_status(status)

    # -- opening and creating ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        mode: str = "r",
        storage_options: Mapping[str, Any] | None = None,
        check: bool = True,
    ) -> ActivationStore:
        """Open an existing store; ``mode="r+"`` to write results into it.

        ``check`` (the default) refuses a store whose arrays do not have the shapes, dtypes
        and chunks of its layout (e.g. an edited ``zarr.json``); ``validate`` reports the
        same problems when opened with ``check=False``.
        """
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
        url = url_of(url)
        group = open_group(url, mode, storage_options)
        if "format" not in group.attrs:
            raise StoreValidationError(
                f"{url}: not a finished esn activation store (no esn attributes; "
                "its creation may have been interrupted: create it again)"
            )
        if check:
            attrs = StoreAttributes.from_dict(dict(group.attrs)) if _attrs_ok(group) else None
            if attrs is not None:
                problems = _schema_problems(group, attrs.layout)
                if problems:
                    raise StoreValidationError(f"{url}: {problems[0]}" + (
                        f" (and {len(problems) - 1} more problem(s); see `esn validate`)"
                        if len(problems) > 1 else ""))
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
        sums_dtype: str = "float32",
        batch_size: int = 0,
        if_exists: str = "error",
        storage_options: Mapping[str, Any] | None = None,
    ) -> ActivationStore:
        """Create a store for ``utterances`` (in this order), or resume a matching one.

        ``if_exists``: ``"error"`` (refuse), ``"overwrite"`` (replace esn's own store), or
        ``"resume"`` (open the existing store if it was made for the same model, probe,
        labels, layout, batch size and utterances; otherwise raise ``StoreMismatchError``).
        A path holding anything but an esn store is refused whatever ``if_exists`` says
        (``OutputRefusedError``); replacing a store deletes only the entries esn writes,
        and keeps a writer lease.
        """
        if if_exists not in ("error", "overwrite", "resume"):
            raise ValueError(f"if_exists must be error|overwrite|resume, got {if_exists!r}")
        url = url_of(url)
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
            hidden_size=hidden_size, hidden_dtype=hidden_dtype, sums_dtype=sums_dtype,
        )
        attrs = StoreAttributes(
            model=model, probe=probe, labels=tuple(labels), layout=layout,
            utterance_digest=utterance_digest(ids), corpus=tuple(corpus),
            hook_point=hook_point, versions=library_versions(), batch_size=batch_size,
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        state = claim_output(url, STORE_OUTPUT, overwrite=True, storage_options=storage_options)
        if state == "esn":
            finished = group_exists(url, storage_options) and "format" in open_group(
                url, "r", storage_options).attrs
            if if_exists == "error" and finished:
                raise StoreExistsError(
                    f"{url} already holds an activation store; pass overwrite to replace it "
                    "or resume to continue it"
                )
            if if_exists == "resume" and finished:
                store = cls.open(url, mode="r+", storage_options=storage_options)
                store._check_same_identity(attrs)
                return store
        try:
            if state == "esn":
                remove_own(url, STORE_OUTPUT, keep=(LEASE_FILE,),
                           storage_options=storage_options)
            group = open_group(url, "a", storage_options, attributes={CREATING: True})
            create_arrays(group, layout, attrs.labels)
            write_corpus_metadata(group, utterances)
            group.attrs.put(attrs.to_dict())  # last: marks the creation as finished
        except OSError as exc:  # a full disk, a read-only file system...
            where = f" ({exc.filename})" if exc.filename else ""
            raise StoreWriteError(f"{url}: creating the store failed: {exc.strerror or exc}"
                                  f"{where}; nothing was committed, so the same command "
                                  "starts again") from exc
        return cls(group, url)

    def _check_same_identity(self, wanted: StoreAttributes) -> None:
        have, want = _flatten(self.attributes.identity()), _flatten(wanted.identity())
        if have == want:
            return
        unrecorded = {"batch_size": 0, "model.attn_implementation": "",
                      "model.config_digest": ""}  # in stores from before they were recorded
        for key, missing in unrecorded.items():
            if key in have and have[key] == missing:
                have[key] = want.get(key)
        differing = [k for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]
        if not differing:
            return
        details = "; ".join(f"{k}: store has {have.get(k)!r}, asked {want.get(k)!r}"
                            for k in differing if k != "utterance_digest")
        if "utterance_digest" in differing:
            details = "; ".join(filter(None, [details, "the utterance list differs"]))
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
        """``(utterance,)`` int8 status codes, read now.

        For a writer (``mode="r+"``) an unreadable status chunk reads as pending, so a
        resumed run writes that chunk again; a reader gets ``StoreDamagedError``.
        """
        status, unreadable = self._read_status()
        if unreadable and self._group.read_only:
            key = f"status/c/{unreadable[0]}"
            what = ("is missing (its commit is in the commit log)"
                    if unreadable[0] in self._status_missing else "cannot be decoded")
            raise StoreDamagedError(
                f"{self.url}: committed chunk {key} {what}"
                + (f" (and {len(unreadable) - 1} more status chunk(s))" if len(unreadable) > 1
                   else "") + "; the store was damaged after it was written")
        return status

    def _read_status(self) -> tuple[np.ndarray, list[int]]:
        arr = self._array("status")
        out = np.full(self.layout.n_utterances, STATUS_PENDING, dtype=np.int8)
        unreadable = []
        self._status_missing: list[int] = []
        for chunk in range(self.layout.n_chunks):
            sl = self.layout.chunk_slice(chunk)
            try:
                out[sl] = arr[sl]
            except StoreDamagedError:  # the commit log says this chunk was committed
                self._status_missing.append(chunk)
                unreadable.append(chunk)
            except Exception:  # a torn or foreign chunk file: zarr raises codec-specific errors
                unreadable.append(chunk)
        return out, unreadable

    def _read_log(self) -> np.ndarray | None:
        """The commit log (None in stores made before it existed, or if it is unreadable:
        it only adds a check)."""
        try:
            node = self._group[COMMIT_LOG]
            return np.asarray(node[...]) if isinstance(node, zarr.Array) else None
        except Exception:  # noqa: BLE001 - a missing or damaged log disables one check only
            return None

    def _log_commits(self, chunks: Iterable[int]) -> None:
        if COMMIT_LOG not in self._group:
            return  # a store from before the commit log
        log = array(self._group, COMMIT_LOG)
        for chunk in chunks:
            count = self._commits.finished_in(chunk)
            log[chunk] = count
            self._commits.logged[chunk] = count

    def progress(self) -> Progress:
        return Progress.of(self.status())

    def pending_chunks(self) -> list[int]:
        """Chunks holding at least one pending utterance: what a resumed run must write."""
        status = self.status()
        return [c for c in range(self.layout.n_chunks)
                if (status[self.layout.chunk_slice(c)] == STATUS_PENDING).any()]

    def chunk_pending(self, chunk: int) -> bool:
        """Does chunk ``chunk`` hold a pending utterance? Reads that chunk's status only
        (an unreadable one counts as pending, as in ``status`` for a writer)."""
        try:
            codes = np.asarray(self._array("status")[self.layout.chunk_slice(chunk)])
        except Exception:  # noqa: BLE001 - a torn or missing chunk file: write it again
            return True
        return bool((codes == STATUS_PENDING).any())

    def damaged_chunks(self) -> list[int]:
        """Committed utterance chunks with a chunk file missing (checkpoints included)."""
        present = set(list_keys(self._group))
        chunks = set()
        for key in required_chunk_keys(self._group, self._commits):
            if key not in present:
                chunks.add(utterance_chunk_of(key))
        return sorted(chunks)

    def utterance_ids(self) -> np.ndarray:
        return self.metadata("utterance")

    def metadata(self, name: str) -> np.ndarray:
        """One per-utterance metadata variable as a numpy array (strings as objects)."""
        if name not in {spec.name for spec in METADATA_VARIABLES}:
            raise KeyError(f"{name!r} is not a per-utterance metadata variable")
        if not self.records(name):
            raise StoreValidationError(
                f"{self.url} was made before esn recorded {name!r}; extract it again "
                "(a new --out) to have it")
        return from_store_values(self.read(name))

    def records(self, name: str) -> bool:
        """Does the store hold variable ``name``? Only those that stores from before them
        lack (``VariableSpec.older_stores_lack``: ``heard``, ``truncated``) can be absent,
        and ``act_sum`` where the layout keeps no sums."""
        if name == "act_sum":
            return self.layout.sums_dtype != "none"
        return name not in _LATE_VARIABLES or name in self._group

    def read(self, name: str, selection: Any = Ellipsis) -> np.ndarray:
        """``selection`` of array ``name`` as numpy, checked (``esn.stores.integrity``);
        ``act_sum`` as float32 whatever the layout keeps."""
        if name == "act_sum":
            self.require_sums(f"reading {name}")
            return sums_from_store(CheckedArray(self._array(name), self.url)[selection],
                                   self.layout)
        return CheckedArray(self._array(name), self.url)[selection]

    def require_sums(self, what: str) -> None:
        """Raise ``RequestError`` naming the store when it keeps no activation sums."""
        if not self.records("act_sum"):
            raise RequestError(
                f"{self.url} keeps no activation sums (extracted with --sums none): "
                f"{what} needs them; extract again with --sums bfloat16 or float32")

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
        self._array("K")[sl] = batch.K
        self._array("T")[sl] = batch.T
        if batch.act_sum is not None:
            self._array("act_sum")[sl] = sums_to_store(batch.act_sum, layout)
        for name in RESULT_FIELDS:
            if self.records(name):  # an older store without it stays as it was
                self._array(name)[sl] = to_store_values(getattr(batch, name))
        codes = np.asarray(batch.status, dtype=np.int8)
        self._array("status")[sl] = codes
        self._commits.update(start, codes)
        u = layout.utterance_chunk
        self._log_commits(range(start // u, -(-stop // u)))  # after status: see integrity

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
        if (self._commits.chunk_has(chunk, done_only=True)
                and f"{CHECKPOINT_GROUP}/chunk_{chunk:06d}" not in self._group):
            raise StoreDamagedError(
                f"{self.url}: the checkpoints of committed chunk {chunk} are missing "
                f"({CHECKPOINT_GROUP}/chunk_{chunk:06d}); the store was damaged after it was "
                "written")
        try:
            return read_checkpoint_chunk(self._group, chunk)
        except (StoreDamagedError, StoreValidationError):
            raise
        except Exception as exc:  # codec errors
            raise StoreDamagedError(
                f"{self.url}: the checkpoints of chunk {chunk} ({CHECKPOINT_GROUP}/"
                f"chunk_{chunk:06d}) cannot be decoded ({short_error(exc)})") from exc

    def mark_failed(self, indices: Sequence[int], reasons: Sequence[str]) -> None:
        """Record utterances as failed (e.g. unreadable audio) without statistics."""
        self._require_writable()
        if len(indices) != len(reasons) or not all(reasons):
            raise ValueError("mark_failed needs one non-empty reason per index")
        for i, reason in zip(indices, reasons, strict=True):
            self._array("failure_reason")[i] = reason
            self._array("status")[i] = STATUS_FAILED
            self._commits.update(i, np.array([STATUS_FAILED], dtype=np.int8))
        u = self.layout.utterance_chunk
        self._log_commits(sorted({int(i) // u for i in indices}))

    def _array(self, name: str) -> zarr.Array:
        return array(self._group, name)

    def _require_writable(self) -> None:
        if self._group.read_only:
            raise PermissionError(f"{self.url} is open read-only; open it with mode='r+'")

    # -- checking ---------------------------------------------------------------------------

    def validate(self, *, deep: bool = False) -> ValidationReport:
        """Check arrays against the schema and every committed chunk's presence; ``deep``
        also decodes every committed chunk (``esn.stores.validation``)."""
        from esn.stores.validation import validate_store

        return validate_store(self, deep=deep)

    # -- views ----------------------------------------------------------------------------

    def to_xarray(self) -> xr.Dataset:
        """The store as a lazy, Dask-backed ``xarray.Dataset`` (metadata as coordinates).

        One Dask chunk per store chunk; every read is checked, so a missing or undecodable
        committed chunk raises ``StoreDamagedError`` when the graph is computed.
        """
        token = dask.base.tokenize(self.url, self.attributes.created,
                                   self.attributes.utterance_digest)
        data_vars = {}
        layout = self.layout
        for spec in STATISTICS_VARIABLES:
            if not layout.holds(spec):
                continue  # act_sum of a store that keeps no sums
            arr = self._array(spec.name)
            data = da.from_array(CheckedArray(arr, self.url), chunks=arr.chunks,
                                 name=f"esn-{spec.name}-{token}", lock=False,
                                 meta=np.empty((0,) * len(arr.shape), dtype=arr.dtype))
            attrs = dict(arr.attrs)
            if attrs.pop("encoding", None) is not None:  # bfloat16 bits: widened to float32
                data = data.map_blocks(sums_from_store, layout, dtype=np.float32,
                                       name=f"esn-{spec.name}-float32-{token}")
            data_vars[spec.name] = xr.Variable(spec.dims, data, attrs=attrs)
        coords: dict[str, Any] = {
            name: ((name,), from_store_values(self.read(name))) for name in COORDINATES}
        for spec in METADATA_VARIABLES:
            if self.records(spec.name):
                coords[spec.name] = (spec.dims, self.metadata(spec.name))
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs = self.attributes.to_dict()
        return ds

    def info(self) -> dict[str, Any]:
        """Sizes, progress, storage figures and the writer, as one JSON-able dict."""
        from esn.stores.describe import store_info

        return store_info(self)

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


def _attrs_ok(group: zarr.Group) -> bool:
    try:
        StoreAttributes.from_dict(dict(group.attrs))
    except SchemaError:
        return False
    return True


def _schema_problems(group: zarr.Group, layout: StoreLayout) -> list[str]:
    return schema_problems(group, layout, ALL_VARIABLES, COORDINATES)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"probe": {"seed": 0}}`` -> ``{"probe.seed": 0}``: names a differing field exactly."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


