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
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import fsspec
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from esn.errors import (
    OutputRefusedError,
    SchemaError,
    StoreDamagedError,
    StoreExistsError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreValidationError,
    StoreWriteError,
)
from esn.provenance import library_versions
from esn.schemas.batch import StatsBatch
from esn.schemas.store import (
    CORPUS_FIELDS,
    FORMAT_NAME,
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
from esn.stores.checkpoints import (
    GROUP as CHECKPOINT_GROUP,
)
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
    store_arrays,
)
from esn.stores.lease import LEASE_FILE, read_lease
from esn.stores.outputs import OutputKind, claim_output, remove_own
from esn.stores.validation import ValidationReport, schema_problems

__all__ = ["STORE_OUTPUT", "ActivationStore", "Progress", "ValidationReport", "open_store"]

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


CREATING = "esn_creating"  # group attribute of a creation in progress (esn's own)
ACOUSTICS_GROUP = "acoustics"


def _is_esn_store(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """An activation store esn made (finished, or its creation interrupted), or a folder
    holding only an esn writer lease (a run killed before it created the store)."""
    try:
        with fs.open(f"{path}/zarr.json", "rb") as handle:
            meta = json.loads(handle.read(1 << 20))
    except FileNotFoundError:
        names = {e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path, detail=False)}
        return bool(names) and all(n == LEASE_FILE or n.endswith(".partial") for n in names)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if not fs.exists(f"{path}/K"):
            return False  # a foreign Zarr hierarchy or file
        raise OutputRefusedError(
            f"{path}/zarr.json cannot be read ({_short(exc)}): a damaged activation store; "
            "esn does not write into it (repair it, or choose another path)") from exc
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    return isinstance(attrs, dict) and (attrs.get("format") == FORMAT_NAME or CREATING in attrs)


STORE_OUTPUT = OutputKind(
    name="activation store", folder=True, recognise=_is_esn_store,
    entries=("zarr.json", "*.partial", CHECKPOINT_GROUP, ACOUSTICS_GROUP, COMMIT_LOG,
             *(spec.name for spec in STATISTICS_VARIABLES + METADATA_VARIABLES),
             *COORDINATES),
)


def _url_of(url: str | os.PathLike[str]) -> str:
    return os.fspath(url)


def _open_group(url: str, mode: str, storage_options: Mapping[str, Any] | None,
                **extra: Any) -> zarr.Group:
    kwargs: dict[str, Any] = {"mode": mode, "zarr_format": 3, **extra}
    if storage_options and "://" in url:
        kwargs["storage_options"] = dict(storage_options)
    try:
        return zarr.open_group(url, **kwargs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise StoreNotFoundError(f"no activation store at {url}") from exc
    except zarr.errors.ContainsArrayError as exc:
        raise StoreValidationError(f"{url} is a Zarr array, not an activation store") from exc
    except (ValueError, KeyError, TypeError) as exc:  # JSON and metadata errors
        raise StoreValidationError(
            f"{url}/zarr.json cannot be read as Zarr group metadata ({_short(exc)})") from exc


def _checked_group(group: zarr.Group, url: str) -> zarr.Group:
    """``group`` reopened over a ``CheckedStore`` (its commit state is set by the store)."""
    checked = CheckedStore(group.store, url=url, prefix=group.path)
    return zarr.open_group(checked, path=group.path, mode="r" if group.read_only else "r+",
                           zarr_format=3)


def _group_exists(url: str, storage_options: Mapping[str, Any] | None) -> bool:
    try:
        _open_group(url, "r", storage_options)
    except StoreNotFoundError:
        return False
    return True


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
        self._group = _checked_group(group, url)
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
        url = _url_of(url)
        group = _open_group(url, mode, storage_options)
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
            hook_point=hook_point, versions=library_versions(), batch_size=batch_size,
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        state = claim_output(url, STORE_OUTPUT, overwrite=True, storage_options=storage_options)
        if state == "esn":
            finished = _group_exists(url, storage_options) and "format" in _open_group(
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
            group = _open_group(url, "a", storage_options, attributes={CREATING: True})
            _create_arrays(group, layout, attrs.labels)
            _write_corpus_metadata(group, utterances)
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
        if have.get("batch_size") == 0:  # a store from before batch sizes were recorded
            have["batch_size"] = want.get("batch_size")
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
        log = _array(self._group, COMMIT_LOG)
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

    def damaged_chunks(self) -> list[int]:
        """Committed utterance chunks with a chunk file missing (checkpoints included)."""
        present = set(_list_keys(self._group))
        chunks = set()
        for key in required_chunk_keys(self._group, self._commits):
            if key not in present:
                chunks.add(_utterance_chunk_of(key))
        return sorted(chunks)

    def utterance_ids(self) -> np.ndarray:
        return self.metadata("utterance")

    def metadata(self, name: str) -> np.ndarray:
        """One per-utterance metadata variable as a numpy array (strings as objects)."""
        if name not in {spec.name for spec in METADATA_VARIABLES}:
            raise KeyError(f"{name!r} is not a per-utterance metadata variable")
        return _from_store_values(self.read(name))

    def read(self, name: str, selection: Any = Ellipsis) -> np.ndarray:
        """``selection`` of array ``name`` as numpy, checked (``esn.stores.integrity``)."""
        return CheckedArray(self._array(name), self.url)[selection]

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
                f"chunk_{chunk:06d}) cannot be decoded ({_short(exc)})") from exc

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
        return _array(self._group, name)

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
        for spec in STATISTICS_VARIABLES:
            arr = self._array(spec.name)
            data = da.from_array(CheckedArray(arr, self.url), chunks=arr.chunks,
                                 name=f"esn-{spec.name}-{token}", lock=False,
                                 meta=np.empty((0,) * len(arr.shape), dtype=arr.dtype))
            data_vars[spec.name] = xr.Variable(spec.dims, data, attrs=dict(arr.attrs))
        coords: dict[str, Any] = {
            name: ((name,), _from_store_values(self.read(name))) for name in COORDINATES}
        for spec in METADATA_VARIABLES:
            coords[spec.name] = (spec.dims, self.metadata(spec.name))
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs = self.attributes.to_dict()
        return ds

    def info(self) -> dict[str, Any]:
        """Sizes, progress and storage figures, as one JSON-able dict."""
        attrs = self.attributes
        progress = self.progress()
        raw = stored = 0
        for _, arr in store_arrays(self._group):  # checkpoints/ included
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
            "writer": _writer_of(self.url),
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
    group.create_array(
        COMMIT_LOG, shape=(layout.n_chunks,), chunks=(1,), dtype="int32", fill_value=0,
        dimension_names=["chunk"], overwrite=True, attributes={
            "description": "finished utterances of each utterance chunk when it was "
                           "committed (written after its status)"})
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
        arr.with_config({"write_empty_chunks": True})[...] = values  # even all-fill
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
    try:
        node = group[name]
    except KeyError as exc:
        raise StoreValidationError(f"{_url_of_group(group)}: array {name!r} is missing") from exc
    except (ValueError, TypeError) as exc:  # a zarr.json that is not valid metadata
        raise StoreValidationError(
            f"{_url_of_group(group)}/{name}/zarr.json cannot be read as Zarr array metadata "
            f"({_short(exc)})") from exc
    if not isinstance(node, zarr.Array):
        raise StoreValidationError(f"{group.store_path}: {name!r} is a group, not an array")
    # Write every chunk, even one equal to the fill value (e.g. all-zero counts): a finished
    # chunk must exist on disk, so a missing file always means a lost write.
    return node.with_config({"write_empty_chunks": True})


def _writer_of(url: str) -> dict[str, Any] | None:
    """The writer lease's holder, as a dict (None when no run writes the store)."""
    try:
        holder = read_lease(url)
    except OSError:
        return None
    return None if holder is None else dataclasses.asdict(holder)


def _url_of_group(group: zarr.Group) -> str:
    store = group.store
    return store.url if isinstance(store, CheckedStore) else str(group.store_path)


def _to_store_values(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object) if values.dtype == object else values


def _from_store_values(values: np.ndarray) -> np.ndarray:
    return values.astype(object) if values.dtype.kind in "TUO" else values


def _attrs_ok(group: zarr.Group) -> bool:
    try:
        StoreAttributes.from_dict(dict(group.attrs))
    except SchemaError:
        return False
    return True


def _schema_problems(group: zarr.Group, layout: StoreLayout) -> list[str]:
    return schema_problems(group, layout, _ALL_VARIABLES, COORDINATES)


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


def _list_keys(group: zarr.Group) -> list[str]:
    """Every key under ``group`` (relative to it)."""
    store = group.store
    prefix = f"{group.path}/" if group.path else ""

    async def collect() -> list[str]:
        return [k[len(prefix):] async for k in store.list_prefix(prefix)]

    return zarr.core.sync.sync(collect())


def _utterance_chunk_of(key: str) -> int:
    parts = key.split("/")
    if parts[0] == CHECKPOINT_GROUP:
        return int(parts[1].removeprefix("chunk_"))
    return int(parts[2])


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
