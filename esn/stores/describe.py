"""What ``esn info`` says of a store (as a dict and as text) and how validation reads."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from esn.schemas.store import STATUS_DONE
from esn.stores.arrays import STATISTICS_CODEC
from esn.stores.integrity import store_arrays
from esn.stores.lease import read_lease
from esn.stores.validation import ValidationReport

if TYPE_CHECKING:
    from esn.stores.activations import ActivationStore

__all__ = ["cut_clips", "format_bytes", "format_info", "format_validation", "store_info"]


def format_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_info(info: dict[str, Any]) -> str:
    """The ``esn info`` table for ``ActivationStore.info()``."""
    model = info["model"]
    sizes, progress = info["sizes"], info["progress"]
    chunking, nbytes = info["chunking"], info["bytes"]
    total = progress["done"] + progress["failed"] + progress["pending"]
    model_line = model["id"] + (f" @ {model['revision']}" if model["revision"] else "")
    extras = ", ".join(f"{k} {model[k]}" for k in ("adapter", "dtype") if model[k])
    ratio = f"{nbytes['ratio']:.2f}x" if nbytes["ratio"] else "-"
    lines = [
        f"store       {info['url']}",
        f"schema      version {info['schema_version']}, created {info['created'] or '-'}",
        f"model       {model_line}" + (f" ({extras})" if extras else ""),
        f"hook point  {info['hook_point']}",
        f"labels      {', '.join(info['labels'])}",
        f"corpus      {', '.join(info['corpus']) or '-'}",
        f"sizes       {sizes['utterances']} utterances x {sizes['layers']} layers x "
        f"{sizes['neurons_per_layer']} neurons ({sizes['neurons']} in all), "
        f"spans {'/'.join(sizes['spans'])}",
        f"checkpoints {', '.join(map(str, sizes['checkpoint_layers'])) or '-'}",
        f"audio       {_audio_line(info['audio'])}",
        f"progress    {progress['done']} done, {progress['failed']} failed, "
        f"{progress['pending']} left (of {total})",
        f"chunking    {chunking['n_chunks']} chunks of {chunking['utterance_chunk']} utterances; "
        f"statistics chunk {tuple(chunking['statistics_chunk_shape'])}, "
        f"counts {chunking['count_dtype']}, sums {chunking['sums_dtype']}",
        f"on disk     {format_bytes(nbytes['stored'])} stored for "
        f"{format_bytes(nbytes['raw_written'])} raw ({ratio})",
    ]
    writer = info.get("writer")
    if writer:
        what = f" ({writer['command']})" if writer.get("command") else ""
        lines.append(f"writer      host {writer['host']}, pid {writer['pid']}{what}, since "
                     f"{writer['started']}, renewed {writer['renewed']}")
    return "\n".join(lines)


def format_validation(report: ValidationReport) -> str:
    """One verdict line, then problems and notes, one per line."""
    verdict = "valid" if report.ok else f"INVALID ({len(report.problems)} problem(s))"
    lines = [f"{report.url}: {verdict}"]
    if report.progress is not None:
        p = report.progress
        lines.append(f"  {p.done} done, {p.failed} failed, {p.pending} left")
    lines += [f"  problem: {p}" for p in report.problems]
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)


def store_info(store: ActivationStore) -> dict[str, Any]:
    """Sizes, progress, storage figures and the writer of ``store``, as one JSON-able dict
    (``ActivationStore.info``, ``esn info --json``)."""
    attrs = store.attributes
    progress = store.progress()
    raw = stored = 0
    for _, arr in store_arrays(store.group):  # checkpoints/ included
        stored += arr.nbytes_stored()
        chunk_bytes = int(np.prod(arr.chunks)) * arr.dtype.itemsize
        raw += min(arr.nbytes, arr.nchunks_initialized * chunk_bytes)
    return {
        "url": store.url,
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
            "sums_dtype": attrs.layout.sums_dtype,
            "codec": STATISTICS_CODEC.to_dict(),
        },
        "bytes": {"raw_written": raw, "stored": stored,
                  "ratio": round(raw / stored, 3) if stored else None},
        "versions": dict(attrs.versions),
        "writer": _writer_of(store.url),
        "audio": _audio_of(store),
    }


def cut_clips(store: ActivationStore) -> int | None:
    """How many finished clips were longer than what the model heard; ``None`` for a store
    from before esn recorded it."""
    if not store.records("truncated"):
        return None
    done = store.status() == STATUS_DONE
    return int((store.metadata("truncated").astype(bool) & done).sum())


def _audio_of(store: ActivationStore) -> dict[str, Any]:
    """What the model heard: the cut asked for, and how many finished clips were cut
    (``None`` for a store from before esn recorded it) and to how many seconds at most."""
    out: dict[str, Any] = {"max_seconds": store.attributes.probe.max_seconds,
                           "truncated": cut_clips(store), "longest_heard": None}
    if out["truncated"] is not None:
        heard = store.metadata("heard")[store.status() == STATUS_DONE]
        out["longest_heard"] = float(np.max(heard)) if heard.size else None
    return out


def _audio_line(audio: dict[str, Any]) -> str:
    asked = (f"cut at {audio['max_seconds']:g} s (--max-seconds) or the model's window"
             if audio["max_seconds"] is not None else "the model's own audio window")
    if audio["truncated"] is None:
        return f"{asked}; which clips were cut is not recorded (a store from before esn did)"
    longest = audio["longest_heard"]
    most = f", at most {longest:.2f} s heard" if longest is not None else ""
    return f"{asked}; {audio['truncated']} done clip(s) were longer and were cut{most}"


def _writer_of(url: str) -> dict[str, Any] | None:
    """The writer lease's holder, as a dict (None when no run writes the store)."""
    try:
        holder = read_lease(url)
    except OSError:
        return None
    return None if holder is None else dataclasses.asdict(holder)
