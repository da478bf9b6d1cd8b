"""``esn acoustics``: per-utterance acoustic descriptors, stored in the activation store.

The descriptors live in the store's ``acoustics/`` group, one float64 array per descriptor
over the utterance dimension, plus ``done`` (bool) and ``reason`` (why a file could not be
measured). Chunks follow the store's utterance chunk; each chunk's values are written
before its ``done`` flags, so an interrupted run resumes where it stopped and finished
utterances are never measured again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import cast

import numpy as np
import xarray as xr
import zarr

from esn.errors import AudioDecodeError, RequestError
from esn.pipeline.audio import load_audio
from esn.schemas.store import STATUS_DONE
from esn.stores.activations import ActivationStore
from esn.stores.lease import WriterLease

__all__ = ["ACOUSTICS_GROUP", "DESCRIPTORS", "AcousticsReport", "describe_audio",
           "measure_acoustics", "read_acoustics", "write_acoustics"]

ACOUSTICS_GROUP = "acoustics"
SAMPLE_RATE = 16000
HOP = 160                      # 10 ms at 16 kHz
FMIN, FMAX = 60.0, 600.0       # pyin search range (Hz)
MIN_SAMPLES = 1024             # one pyin frame (64 ms): shorter clips are not measured
DESCRIPTORS: dict[str, str] = {
    "f0_median": "median F0 of voiced frames (Hz, librosa.pyin 60-600 Hz, 10 ms hop)",
    "f0_range": "semitones between the 5th and 95th percentile of voiced F0",
    "voiced_fraction": "fraction of pyin frames judged voiced",
    "rms": "RMS level of the whole waveform (dBFS)",
    "centroid": "mean spectral centroid (Hz, 512-point FFT, 10 ms hop)",
    "duration": "duration (s)",
    "onset_rate": "onsets per second (librosa.onset.onset_detect)",
}


def describe_audio(y: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """The ``DESCRIPTORS`` of one mono waveform ``(n_samples,)``; NaN F0 values when unvoiced.

    Raises ``ValueError`` for a waveform shorter than ``MIN_SAMPLES``.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if y.size < MIN_SAMPLES:
        raise ValueError(f"too short to measure ({y.size} samples < {MIN_SAMPLES})")
    duration = y.size / sr
    f0, voiced, _ = librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=sr, frame_length=1024,
                                 hop_length=HOP, center=True)
    good = np.asarray(voiced, dtype=bool) & np.isfinite(f0)
    pitch = f0[good]
    if pitch.size:
        lo, hi = np.percentile(pitch, [5, 95])
        f0_median, f0_range = float(np.median(pitch)), float(12 * np.log2(hi / lo))
    else:
        f0_median = f0_range = float("nan")
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=512, hop_length=HOP)
    envelope = librosa.onset.onset_strength(y=y, sr=sr, hop_length=HOP, n_fft=512)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=HOP,
                                        units="time")
    return {
        "f0_median": f0_median, "f0_range": f0_range,
        "voiced_fraction": float(np.mean(good)) if good.size else float("nan"),
        "rms": float(20 * np.log10(max(rms, 1e-10))),
        "centroid": float(np.mean(centroid)), "duration": float(duration),
        "onset_rate": float(len(onsets) / duration) if duration > 0 else float("nan"),
    }


@dataclasses.dataclass(frozen=True)
class AcousticsReport:
    """What one ``measure_acoustics`` call did."""

    measured: int
    failed: int
    skipped: int          # already done before this call
    remaining: int        # finished utterances still without descriptors (``limit``)


def _group(store: ActivationStore, overwrite: bool) -> zarr.Group:
    root = store.group
    if ACOUSTICS_GROUP in root and not overwrite:
        existing = cast(zarr.Group, root[ACOUSTICS_GROUP])
        if "done" in existing:     # else an interrupted creation: create it again
            return existing
    n, u = store.layout.n_utterances, store.layout.utterance_chunk
    group = root.create_group(ACOUSTICS_GROUP, overwrite=True)
    for name, description in DESCRIPTORS.items():
        group.create_array(name, shape=(n,), chunks=(u,), dtype="float64",
                           fill_value=float("nan"), dimension_names=["utterance"],
                           attributes={"description": description})
    group.create_array("reason", shape=(n,), chunks=(u,), dtype=str, fill_value="",
                       dimension_names=["utterance"],
                       attributes={"description": "why the audio could not be measured"})
    # Created last: its presence marks the group as complete.
    group.create_array("done", shape=(n,), chunks=(u,), dtype="bool", fill_value=False,
                       dimension_names=["utterance"],
                       attributes={"description": "descriptors measured (or failed)"})
    group.attrs.update({"sample_rate": SAMPLE_RATE, "hop_length": HOP, "fmin": FMIN,
                        "fmax": FMAX})
    return group


def measure_acoustics(
    store_url: str, *, overwrite: bool = False, limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    loader: Callable[[str], np.ndarray] | None = None,
    break_lock: bool = False, say: Callable[[str], None] = lambda _: None,
) -> AcousticsReport:
    """Measure every finished utterance that has no descriptors yet, chunk by chunk.

    ``limit`` stops after that many new utterances (the rest stay pending for a later call);
    ``overwrite`` discards stored descriptors first. An unreadable (or too short) file gets
    NaN values and its reason, and counts as done. The store's writer lease is held
    throughout (``esn.stores.lease``).
    """
    store = ActivationStore.open(store_url, mode="r+")
    with WriterLease(store_url, command="esn acoustics", say=say, break_lock=break_lock):
        return _measure(store, overwrite=overwrite, limit=limit, progress=progress,
                        loader=loader)


def _measure(store: ActivationStore, *, overwrite: bool, limit: int | None,
             progress: Callable[[int, int], None] | None,
             loader: Callable[[str], np.ndarray] | None) -> AcousticsReport:
    from librosa.util.exceptions import ParameterError

    group = _group(store, overwrite)
    load = loader or (lambda p: load_audio(p, SAMPLE_RATE))
    arrays = {name: cast(zarr.Array, group[name]) for name in (*DESCRIPTORS, "reason", "done")}
    finished = store.status() == STATUS_DONE
    done = np.asarray(arrays["done"][...], dtype=bool)
    todo = finished & ~done
    total = int(todo.sum()) if limit is None else min(int(todo.sum()), limit)
    paths = store.metadata("path")
    measured = failed = 0
    layout = store.layout
    for chunk in range(layout.n_chunks):
        if measured + failed >= total:
            break
        sl = layout.chunk_slice(chunk)
        index = np.flatnonzero(todo[sl]) + sl.start
        index = index[: total - measured - failed]
        if not index.size:
            continue
        values = {name: np.asarray(arrays[name][sl]) for name in (*DESCRIPTORS, "reason")}
        values["reason"] = values["reason"].astype(object)
        for i in index:
            j = i - sl.start
            try:
                row = describe_audio(load(str(paths[i])))
                reason = ""
                measured += 1
            except (AudioDecodeError, ValueError, ParameterError) as exc:
                row = dict.fromkeys(DESCRIPTORS, float("nan"))
                reason = str(exc) or "unreadable audio"
                failed += 1
            for name, value in row.items():
                values[name][j] = value
            values["reason"][j] = reason
            if progress:
                progress(measured + failed, total)
        for name, column in values.items():
            arrays[name][sl] = column
        flags = done[sl].copy()
        flags[index - sl.start] = True
        arrays["done"][sl] = flags           # last: commits the chunk
        done[sl] = flags
    return AcousticsReport(measured=measured, failed=failed,
                           skipped=int((finished & ~todo).sum()),
                           remaining=int((finished & ~done).sum()))


def write_acoustics(store: ActivationStore, values: dict[str, np.ndarray],
                    reason: np.ndarray | None = None) -> None:
    """Store given ``(utterance,)`` descriptors for every utterance and mark them done (tests,
    or descriptors measured elsewhere). Every name of ``DESCRIPTORS`` is required."""
    missing = sorted(set(DESCRIPTORS) - set(values))
    if missing:
        raise RequestError(f"descriptors missing: {missing}")
    group = _group(store, True)
    for name in DESCRIPTORS:
        cast(zarr.Array, group[name])[...] = np.asarray(values[name], dtype=np.float64)
    if reason is not None:
        cast(zarr.Array, group["reason"])[...] = np.asarray(reason, dtype=object)
    cast(zarr.Array, group["done"])[...] = np.ones(store.layout.n_utterances, dtype=bool)


def read_acoustics(store: ActivationStore) -> xr.Dataset:
    """Descriptors as ``acoustic_<name>`` over ``utterance`` plus ``acoustic_done`` and
    ``acoustic_reason``; ``RequestError`` when the store has none."""
    root = store.group
    if ACOUSTICS_GROUP not in root or "done" not in cast(zarr.Group, root[ACOUSTICS_GROUP]):
        raise RequestError(f"{store.url} has no acoustic descriptors; run "
                           f"`esn acoustics --store {store.url}` first")
    group = cast(zarr.Group, root[ACOUSTICS_GROUP])
    data = {f"acoustic_{name}": ("utterance", np.asarray(cast(zarr.Array, group[name])[...]))
            for name in (*DESCRIPTORS, "done")}
    reason = np.asarray(cast(zarr.Array, group["reason"])[...]).astype(object)
    data["acoustic_reason"] = ("utterance", reason)
    return xr.Dataset(data, coords={"utterance": store.utterance_ids()})
