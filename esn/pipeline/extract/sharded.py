"""``esn extract`` over a Dask cluster: one store, many workers, each holding one model.

The client (this process) does what needs no model and what the run answers for: it
checks the output path and the resume, holds the store's writer lease for the whole run,
creates the store from the model description one worker sends back, and hands out the
pending utterance chunks, one task per chunk. Each worker process loads the model once
(kept for the next task), probes its chunk with the single-process code
(``extract_into``) and commits it into the one store, after checking the run's lease
ticket. Writes are chunk-aligned, so no two workers touch one chunk file, and a chunk is
probed in the same batches as in a single process: the stores are identical.

A worker that dies mid-chunk leaves that chunk pending (status is written last); Dask
runs the task again on another worker. A client that dies leaves the committed chunks,
and the same command resumes exactly as the single-process run does.

Clusters: ``workers=N`` starts a local one (one thread per worker, the CPU threads shared
out among them; with ``gpus_per_worker`` each worker sees its own GPUs through
``CUDA_VISIBLE_DEVICES`` and carries a ``GPU`` resource); ``scheduler=ADDRESS`` uses an
existing one (a LocalCluster, dask-jobqueue's SLURM cluster...), whose workers must be
able to read the corpus and the store at the same paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import resource
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from esn.errors import RequestError, StoreMismatchError
from esn.pipeline.audio import listening_window
from esn.pipeline.extract.run import (
    ExtractReport,
    ExtractRequest,
    ModelDescription,
    ProgressFn,
    accuracy_by_emotion,
    chunks_to_probe,
    create_store,
    describe_model,
    extract_into,
    plan_run,
    select_utterances,
)
from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter
from esn.pipeline.probe import Probe
from esn.schemas import Utterance, utterance_digest
from esn.stores.activations import ActivationStore
from esn.stores.describe import cut_clips
from esn.stores.lease import LeaseTicket, WriterLease

__all__ = ["ClusterOptions", "extract_sharded"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    """Where the workers come from: an existing scheduler, or a local cluster of
    ``workers`` processes with ``gpus_per_worker`` GPUs each."""

    scheduler: str | None = None
    workers: int | None = None
    gpus_per_worker: int = 0

    def __post_init__(self) -> None:
        if (self.scheduler is None) == (self.workers is None):
            raise RequestError("give either --scheduler ADDRESS or --workers N")
        if self.workers is not None and self.workers < 1:
            raise RequestError(f"--workers must be at least 1, got {self.workers}")
        if self.gpus_per_worker < 0:
            raise RequestError(f"--gpus-per-worker must be 0 or more, got "
                               f"{self.gpus_per_worker}")

    @property
    def resources(self) -> dict[str, float] | None:
        """What each task asks of its worker: a worker's GPUs hold one model."""
        return {"GPU": float(self.gpus_per_worker)} if self.gpus_per_worker else None


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every chunk task needs; sent with each task (the utterances are not: each
    worker lists the corpus once and checks it against the store's digest)."""

    request: ExtractRequest
    probe: Probe
    ticket: LeaseTicket
    digest: str


@dataclasses.dataclass(frozen=True)
class _ChunkDone:
    chunks: tuple[int, ...]
    processed: int
    worker: str
    seconds: float
    seconds_writing: float
    stages: dict[str, float]
    peak_mib: float  # the worker process's peak resident memory so far


# -- on the workers --------------------------------------------------------------------------

_ADAPTERS: dict[LoadOptions, ModelAdapter] = {}
_UTTERANCES: dict[tuple[Any, ...], list[Utterance]] = {}


#: CPU threads for torch in a local cluster's worker (Dask's worker caps torch at one).
THREADS_VARIABLE = "ESN_WORKER_THREADS"


def _adapter(options: LoadOptions) -> ModelAdapter:
    """This worker's model, loaded at its first task and kept (one model per worker)."""
    if options not in _ADAPTERS:
        if os.environ.get(THREADS_VARIABLE):
            import torch

            torch.set_num_threads(int(os.environ[THREADS_VARIABLE]))
        _ADAPTERS.clear()
        _ADAPTERS[options] = load_adapter(options)
    return _ADAPTERS[options]


def _utterances(job: _Job) -> list[Utterance]:
    r = job.request
    key = (r.corpus, r.emotions, r.splits, r.merges, r.limit, r.seed)
    if key not in _UTTERANCES:
        _UTTERANCES.clear()
        _UTTERANCES[key] = select_utterances(r)[0]
    utterances = _UTTERANCES[key]
    if utterance_digest([u.id for u in utterances]) != job.digest:
        raise StoreMismatchError(
            f"{r.corpus} lists other utterances on this worker than on the client; every "
            "worker must read the corpus at the same path, unchanged")
    return utterances


def _describe(options: LoadOptions) -> ModelDescription:
    return describe_model(_adapter(options))


_STORES: dict[str, ActivationStore] = {}


def _store(url: str) -> ActivationStore:
    """The store, opened for writing once per worker (it writes only its own chunks)."""
    if url not in _STORES:
        _STORES.clear()
        _STORES[url] = ActivationStore.open(url, mode="r+")
    return _STORES[url]


def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM: ``ru_maxrss`` would count the memory
    of the process it was forked from)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _probe_chunks(job: _Job, chunks: Sequence[int], redo: frozenset[int]) -> _ChunkDone:
    """Probe ``chunks`` (a run of the store's chunks) into the store: those still pending,
    and the ``redo`` ones (committed, with lost files) whatever their status, so that a
    task run again after its worker died redoes only what was not committed."""
    from distributed import get_worker

    adapter = _adapter(job.request.model)
    utterances = _utterances(job)
    store = _store(job.request.out)
    todo = [c for c in chunks if c in redo or store.chunk_pending(c)]
    report = extract_into(store, adapter, utterances, job.probe,
                          batch_size=job.request.batch_size, lease=job.ticket, chunks=todo)
    return _ChunkDone(tuple(chunks), report.processed, get_worker().address, report.seconds,
                      report.seconds_writing, dict(report.stages), _peak_mib())


# -- on the client ---------------------------------------------------------------------------

def _worker_specs(workers: int, gpus_per_worker: int) -> dict[str, dict[str, Any]]:
    from distributed import Nanny

    threads = max(1, (os.cpu_count() or 1) // workers)
    specs = {}
    for i in range(workers):
        env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                "OPENBLAS_NUM_THREADS", THREADS_VARIABLE)}
        # Dask's statistical profiler samples every thread's stack each 10 ms, which costs
        # the model's Python-side work; a worker here runs one long task at a time.
        env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
        options: dict[str, Any] = {"nthreads": 1, "env": env, "silence_logs": logging.ERROR}
        if gpus_per_worker:
            first = i * gpus_per_worker
            env["CUDA_VISIBLE_DEVICES"] = ",".join(
                str(g) for g in range(first, first + gpus_per_worker))
            options["resources"] = {"GPU": gpus_per_worker}
        specs[f"esn-{i}"] = {"cls": Nanny, "options": options}
    return specs


@contextlib.contextmanager
def _client(cluster: ClusterOptions) -> Iterator[Any]:
    import dask
    from distributed import Client, Scheduler, SpecCluster

    if cluster.scheduler is not None:
        try:
            client = Client(cluster.scheduler, timeout="30s")
        except OSError as exc:
            raise RequestError(f"cannot reach the Dask scheduler at {cluster.scheduler} "
                               f"({exc})") from exc
        with client:
            yield client
        return
    assert cluster.workers is not None
    if cluster.gpus_per_worker:
        import torch

        have = torch.cuda.device_count()
        if cluster.workers * cluster.gpus_per_worker > have:
            raise RequestError(f"--workers {cluster.workers} x --gpus-per-worker "
                               f"{cluster.gpus_per_worker} needs "
                               f"{cluster.workers * cluster.gpus_per_worker} GPUs; this "
                               f"machine has {have}")
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    # Dask's workers set MALLOC_TRIM_THRESHOLD_, which turns off glibc's adaptive mmap
    # threshold: every large tensor is then mapped and unmapped afresh (page faults that
    # made a worker probe 2.5x slower than one process). Leave malloc as it is.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), \
            SpecCluster(workers=_worker_specs(cluster.workers, cluster.gpus_per_worker),
                     scheduler=scheduler, silence_logs=logging.ERROR) as local, \
            Client(local) as client:
        yield client


def extract_sharded(
    request: ExtractRequest,
    cluster: ClusterOptions,
    *,
    progress: ProgressFn | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> ExtractReport:
    """``extract(request)`` with the chunks probed by the workers of ``cluster``."""
    if request.batch_workers:
        raise RequestError("--batch-workers does not combine with a cluster: each worker "
                           "builds its own batches")
    plan = plan_run(request)
    start = time.perf_counter()
    with WriterLease(request.out, command="esn extract (cluster)", say=say,
                     break_lock=request.break_lock) as lease, _client(cluster) as client:
        resources = cluster.resources
        model = client.submit(_describe, request.model, pure=False,
                              resources=resources).result()
        store = create_store(request, model, plan, say)
        chunks, damaged = chunks_to_probe(store, say)
        job = _Job(request, plan.probe, lease.ticket(), store.attributes.utterance_digest)
        done = _run_chunks(client, job, chunks, frozenset(damaged), store, resources,
                           progress, say)
    seconds = time.perf_counter() - start
    workers = _per_worker(done)
    for address, w in workers.items():
        say(f"worker {address}: {w['chunks']:.0f} chunk(s), {w['items']:.0f} items, "
            f"{w['items'] / w['busy_s'] if w['busy_s'] else 0:.1f} items/s while busy, "
            f"peak memory {w['peak_mib']:.0f} MiB")
    return ExtractReport(
        url=store.url, processed=sum(d.processed for d in done), progress=store.progress(),
        seconds=seconds, seconds_writing=sum(d.seconds_writing for d in done),
        seconds_waiting_for_writer=0.0, accuracy=accuracy_by_emotion(store),
        window=listening_window(model.max_audio_seconds, plan.probe.max_seconds),
        cut=cut_clips(store), stages=_summed(d.stages for d in done),
        sums=store.layout.sums_dtype, workers=workers)


def _per_worker(done: Sequence[_ChunkDone]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for d in sorted(done, key=lambda d: d.worker):
        w = out.setdefault(d.worker, {"chunks": 0, "items": 0, "busy_s": 0.0, "peak_mib": 0.0})
        w["chunks"] += len(d.chunks)
        w["items"] += d.processed
        w["busy_s"] += d.seconds
        w["peak_mib"] = max(w["peak_mib"], d.peak_mib)
    return out


#: Chunks per task: enough tasks for every worker to take several (so the last ones end
#: together), few enough that each task's setup (its batch threads, the first batch's
#: audio) is spread over several chunks.
TASKS_PER_WORKER, MOST_CHUNKS_PER_TASK = 4, 8


def _runs(chunks: Sequence[int], workers: int) -> list[tuple[int, ...]]:
    size = max(1, min(MOST_CHUNKS_PER_TASK, -(-len(chunks) // (TASKS_PER_WORKER * workers))))
    return [tuple(chunks[i:i + size]) for i in range(0, len(chunks), size)]


#: Seconds between the client's lines of items done per worker (beside the progress line).
WORKERS_LINE_SECONDS = 60.0


def _run_chunks(client: Any, job: _Job, chunks: Sequence[int], redo: frozenset[int],
                store: ActivationStore, resources: dict[str, float] | None,
                progress: ProgressFn | None, say: Callable[[str], None]) -> list[_ChunkDone]:
    """Submit the chunks as runs of a few (in store order) and follow them to the end; a
    worker lost mid-chunk is replaced by Dask and its task runs again."""
    from distributed import as_completed

    layout = store.layout
    sizes = {c: layout.chunk_slice(c).stop - layout.chunk_slice(c).start for c in chunks}
    todo = sum(sizes.values())
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    futures = [client.submit(_probe_chunks, job, run, redo, pure=False, resources=resources,
                             priority=-i, key=f"esn-chunks-{run[0]}-{job.ticket.token}")
               for i, run in enumerate(_runs(chunks, workers))]
    finished: list[_ChunkDone] = []
    items = 0
    by_worker: dict[str, int] = {}
    start = last = time.monotonic()
    try:
        for future in as_completed(futures):
            result: _ChunkDone = future.result()
            finished.append(result)
            items += sum(sizes[c] for c in result.chunks)
            by_worker[result.worker] = by_worker.get(result.worker, 0) + result.processed
            if progress is not None:
                progress(items, todo)
            now = time.monotonic()
            if now - last >= WORKERS_LINE_SECONDS and items < todo:
                last = now
                say(f"{items}/{todo} items after {now - start:.0f} s; by worker: "
                    + ", ".join(f"{w} {n}" for w, n in sorted(by_worker.items())))
    except BaseException:
        client.cancel(futures)
        raise
    return finished


def _summed(stages: Iterable[Mapping[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for entry in stages:
        for name, seconds in entry.items():
            total[name] = total.get(name, 0.0) + seconds
    return total
