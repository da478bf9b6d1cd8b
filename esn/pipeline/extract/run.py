"""``esn extract``: probe every utterance of a corpus and fill an activation store, resumably.

Flow per utterance chunk still pending in the store: decode its audio (on worker threads,
one chunk ahead), cut each clip to what the model hears (``esn.pipeline.audio``: its window
or ``--max-seconds``; recorded as ``heard``/``truncated``), build padded probe batches with
the adapter (on a batch thread, or with ``batch_workers`` in worker processes:
``esn.pipeline.extract.encoding``), generate the answers with
the statistics hooks (and the checkpoint hooks) armed for the prefill, parse the answers,
and hand the finished chunk to the background writer. Rerunning the same request resumes;
a request for another model, probe or corpus is refused by the store.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from esn.errors import (
    AudioDecodeError,
    RequestError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreValidationError,
)
from esn.pipeline.audio import heard_part, listening_window, load_audio
from esn.pipeline.corpora import balanced_sample, load_corpus, parse_merges
from esn.pipeline.decoding import describe_decoding
from esn.pipeline.extract.capture import HiddenStateCapture
from esn.pipeline.extract.encoding import EncoderPool
from esn.pipeline.extract.encoding import batch_workers as batch_workers_for
from esn.pipeline.extract.statistics import GateStatistics, span_masks
from esn.pipeline.extract.writer import ChunkWriter
from esn.pipeline.models import LoadOptions, ModelAdapter, ProbeBatch, load_adapter
from esn.pipeline.probe import DEFAULT_TEMPLATE, Probe
from esn.schemas import (
    DEFAULT_SUMS,
    STATUS_DONE,
    STATUS_FAILED,
    SUMS_DTYPES,
    ModelInfo,
    StatsBatch,
    StoreAttributes,
    StoreLayout,
    Utterance,
    utterance_digest,
)
from esn.stores.activations import STORE_OUTPUT, ActivationStore, Progress
from esn.stores.checkpoints import CheckpointChunk
from esn.stores.describe import cut_clips
from esn.stores.lease import LeaseTicket, WriterLease
from esn.stores.outputs import claim_output

__all__ = ["ExtractReport", "ExtractRequest", "extract", "extract_into"]

ProgressFn = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExtractRequest:
    """Everything ``esn extract`` needs; the same request resumes the same store."""

    model: LoadOptions
    corpus: str
    out: str
    emotions: tuple[str, ...] | None = None
    splits: tuple[str, ...] | None = None
    merges: tuple[str, ...] = ()
    limit: int | None = None  # at most this many items per emotion (seeded sample)
    batch_size: int = 8
    checkpoint_layers: tuple[int, ...] = ()
    template: str = DEFAULT_TEMPLATE
    seed: int = 0
    option_order: str = "random"
    max_new_tokens: int = 20
    max_seconds: float | None = None  # cut every clip here (and at the model's window)
    #: how act_sum is kept (SUMS_DTYPES); None: as the store being resumed keeps it, or
    #: DEFAULT_SUMS for a new store
    sums: str | None = None
    #: processes that encode batches (esn.pipeline.extract.encoding); None or 0: the batch
    #: thread encodes
    batch_workers: int | None = None
    utterance_chunk: int = 64
    overwrite: bool = False
    break_lock: bool = False  # clear a writer lease that looks stale (another host's)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise RequestError(f"batch size must be at least 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise RequestError(f"limit must be at least 1, got {self.limit}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise RequestError(f"--max-seconds must be positive, got {self.max_seconds}")
        if self.batch_workers is not None and self.batch_workers < 0:
            raise RequestError(f"--batch-workers must be 0 or more, got {self.batch_workers}")
        if self.sums is not None and self.sums not in SUMS_DTYPES:
            raise RequestError(f"--sums must be one of {', '.join(SUMS_DTYPES)}, "
                               f"got {self.sums!r}")


@dataclasses.dataclass(frozen=True)
class ExtractReport:
    """What a run did: items processed now, the store's progress, speed and accuracy, and
    how much of the clips the model heard (``window`` seconds at most, ``None``: all)."""

    url: str
    processed: int
    progress: Progress
    seconds: float
    seconds_writing: float
    seconds_waiting_for_writer: float
    accuracy: Mapping[str, tuple[int, int]]  # emotion -> (correct, done) over the whole store
    window: float | None = None
    cut: int | None = None  # done clips longer than the window, over the whole store
    # (None: a store from before esn recorded what the model heard)
    #: Where the main thread's time went: waiting for the next batch (built on the batch
    #: thread), waiting for the previous batches' statistics copies, the model
    #: (generate, statistics hooks included), waiting for the statistics' copy to the host,
    #: parsing and gathering the answers, handing finished chunks to the writer; and the
    #: batch thread's (overlapping) waiting for audio and running the processor.
    stages: Mapping[str, float] = dataclasses.field(default_factory=dict)
    sums: str = "float32"  # how the store keeps act_sum (layout.sums_dtype)
    #: On a cluster, per worker address: chunks, items, seconds busy and peak resident
    #: memory (MiB) of its process (esn.pipeline.extract.sharded).
    workers: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)

    @property
    def items_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def select_utterances(request: ExtractRequest) -> tuple[list[Utterance], tuple[str, ...]]:
    """The corpus items to probe, in store order, and the probe's label set."""
    listing = load_corpus(request.corpus, emotions=request.emotions, splits=request.splits,
                          merges=parse_merges(request.merges))
    utterances = list(listing.utterances)
    if request.limit is not None:
        utterances = balanced_sample(utterances, per_emotion=request.limit, seed=request.seed,
                                     truncate=False)
    labels = tuple(listing.emotions)
    if not utterances:
        raise RequestError(f"{request.corpus}: no utterances to probe")
    return utterances, labels


def extract(
    request: ExtractRequest,
    *,
    progress: ProgressFn | None = None,
    adapter: ModelAdapter | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> ExtractReport:
    """Create (or resume) the store of ``request`` and probe every pending utterance.

    Everything that can be checked without the model is checked before it loads: the
    output path (an existing path must be an esn store), a resumed store's identity and
    integrity, and the writer lease (one run writes a store at a time).
    """
    plan = plan_run(request)
    with WriterLease(request.out, command="esn extract", say=say,
                     break_lock=request.break_lock) as lease:
        adapter = adapter or load_adapter(request.model)
        store = create_store(request, describe_model(adapter), plan, say)
        return extract_into(store, adapter, plan.utterances, plan.probe,
                            batch_size=request.batch_size,
                            progress=progress, lease=lease, say=say,
                            batch_workers=request.batch_workers)


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run probes, decided before any model loads: the utterances in store order,
    the label set, the probe, and how the store keeps its sums."""

    utterances: list[Utterance]
    labels: tuple[str, ...]
    probe: Probe
    sums: str


def plan_run(request: ExtractRequest) -> RunPlan:
    """Check the output path, list the corpus, and refuse a store made for another run,
    all without the model (one process or a cluster's client alike)."""
    claim_output(request.out, STORE_OUTPUT, overwrite=request.overwrite, resume=True)
    utterances, labels = select_utterances(request)
    probe = Probe(labels=labels, template=request.template, seed=request.seed,
                  option_order=request.option_order, max_new_tokens=request.max_new_tokens,
                  max_seconds=request.max_seconds)
    resumed = None
    if not request.overwrite:  # refuse a mismatched store before loading a large model
        resumed = refuse_other_run(request, probe, labels, utterances)
    sums = request.sums or (resumed.layout.sums_dtype if resumed else DEFAULT_SUMS)
    return RunPlan(utterances, labels, probe, sums)


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """What the store is created from: the loaded model's identity and sizes (small, so a
    cluster worker that loaded the model can send it to the client)."""

    info: ModelInfo
    n_layers: int
    n_neurons: int
    hidden_size: int
    hidden_dtype: str
    max_audio_seconds: float | None


def describe_model(adapter: ModelAdapter) -> ModelDescription:
    return ModelDescription(
        info=adapter.info, n_layers=adapter.n_layers, n_neurons=adapter.n_neurons,
        hidden_size=int(getattr(adapter.decoder.config, "hidden_size", 0)),
        hidden_dtype=str(next(adapter.model.parameters()).dtype).removeprefix("torch."),
        max_audio_seconds=adapter.max_audio_seconds)


def create_store(request: ExtractRequest, model: ModelDescription, plan: RunPlan,
                 say: Callable[[str], None]) -> ActivationStore:
    """Create the store of ``request`` (or open the one it resumes) for ``model``."""
    window = model.max_audio_seconds
    if request.max_seconds is not None and window is not None and window < request.max_seconds:
        say(f"warning: {request.model.model_id} hears at most {window:g} s of a clip; "
            f"--max-seconds {request.max_seconds:g} cuts no more than that")
    return ActivationStore.create(
        request.out,
        utterances=plan.utterances,
        model=model.info,
        probe=plan.probe.info,
        labels=plan.labels,
        n_layers=model.n_layers,
        n_neurons=model.n_neurons,
        corpus=(request.corpus,),
        utterance_chunk=request.utterance_chunk,
        checkpoint_layers=request.checkpoint_layers,
        hidden_size=model.hidden_size if request.checkpoint_layers else 0,
        hidden_dtype=model.hidden_dtype,
        sums_dtype=plan.sums,
        batch_size=request.batch_size,
        if_exists="overwrite" if request.overwrite else "resume",
    )


def refuse_other_run(request: ExtractRequest, probe: Probe, labels: Sequence[str],
                      utterances: Sequence[Utterance]) -> StoreAttributes | None:
    """The cheap part of the store's resume check, done before the model is loaded; the
    attributes of the store that this run resumes, ``None`` when there is none yet."""
    try:
        attrs = ActivationStore.open(request.out).attributes
    except StoreNotFoundError:
        return None  # nothing there: create() makes it
    except StoreValidationError as exc:
        if "not a finished esn activation store" in str(exc):
            return None  # an interrupted creation of esn's own: create() redoes it
        raise
    wanted: dict[str, Any] = {"model": request.model.model_id, "labels": list(labels),
                              "batch_size": request.batch_size}
    have: dict[str, Any] = {"model": attrs.model.id, "labels": list(attrs.labels),
                            "batch_size": attrs.batch_size or request.batch_size}
    asked = probe.info
    wanted.update({f"probe.{k}": v for k, v in asked.to_dict().items() if k != "decoding"})
    have.update({f"probe.{k}": v for k, v in attrs.probe.to_dict().items() if k != "decoding"})
    differing = [f"{key}: store has {have.get(key)!r}, asked {wanted.get(key)!r}"
                 for key in [*wanted, *(k for k in have if k not in wanted)]
                 if have.get(key) != wanted.get(key)]
    if dict(attrs.probe.decoding) != dict(asked.decoding):  # answers decoded otherwise
        differing.append(f"its answers were decoded under "
                         f"{describe_decoding(attrs.probe.decoding)}, this run decodes with "
                         f"{describe_decoding(asked.decoding)}")
    if request.sums is not None and request.sums != attrs.layout.sums_dtype:
        differing.append(f"layout.sums_dtype: store has {attrs.layout.sums_dtype!r}, "
                         f"asked {request.sums!r}")
    if utterance_digest([u.id for u in utterances]) != attrs.utterance_digest:
        differing.append("the utterance list differs (another corpus, filter, limit or order)")
    if differing:
        raise StoreMismatchError(
            f"{request.out} was made for another run ({'; '.join(differing)}); refusing to "
            "resume. Use a new --out, or --overwrite to start again."
        )
    return attrs


def extract_into(
    store: ActivationStore,
    adapter: ModelAdapter,
    utterances: Sequence[Utterance],
    probe: Probe,
    *,
    batch_size: int,
    progress: ProgressFn | None = None,
    lease: WriterLease | LeaseTicket | None = None,
    say: Callable[[str], None] = lambda _: None,
    batch_workers: int | None = None,
    chunks: Sequence[int] | None = None,
) -> ExtractReport:
    """Probe the store's pending chunks (``utterances`` in store order) and write them.

    A committed chunk whose files were lost since (``ActivationStore.damaged_chunks``) is
    probed and written again, with a notice; ``lease`` is checked before every commit.
    ``batch_workers``: processes that encode the batches (``encoding.batch_workers``);
    ``chunks``: probe exactly these chunks instead (a cluster worker's share, chosen by
    its client with ``chunks_to_probe``).
    """
    layout = store.layout
    chunks = sorted(chunks) if chunks is not None else chunks_to_probe(store, say)[0]
    window = listening_window(adapter.max_audio_seconds, probe.max_seconds)
    stats = GateStatistics(adapter.gate_modules(), count_dtype=layout.count_dtype,
                           sums_dtype=layout.sums_dtype)
    capture = HiddenStateCapture(adapter.layers, layout.checkpoint_layers)
    # Every probe batch of the pending chunks, in order: (position in chunks, item range).
    tasks = [(position, range(first, min(first + batch_size, _size(layout, chunk))))
             for position, chunk in enumerate(chunks)
             for first in range(0, _size(layout, chunk), batch_size)]
    todo = sum(len(indices) for _, indices in tasks)
    clock = _Stages()
    feature_stream = torch.cuda.Stream(adapter.device) if adapter.device.type == "cuda" else None
    workers = batch_workers_for(adapter, batch_workers) if tasks else 0
    encoder = adapter.batch_encoder() if workers else None
    # Batches built ahead: one on the batch thread, or one per encoder process and one more.
    depth = 1 + workers
    start_time = time.perf_counter()
    done = 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="esn-audio") as audio_pool, \
            ThreadPoolExecutor(max_workers=depth, thread_name_prefix="esn-batches") as batch_pool, \
            (EncoderPool(encoder, workers) if encoder is not None
             else contextlib.nullcontext()) as encoders, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="esn-assembly") as assembly, \
            ChunkWriter(store) as writer, stats.attached(), capture.attached(), \
            torch.inference_mode():
        audio: dict[int, list[Future[np.ndarray]]] = {}  # chunk position -> decoding clips

        def items_of(position: int) -> list[Utterance]:
            return list(utterances[layout.chunk_slice(chunks[position])])

        def prepare(task: int) -> Future[_Prepared]:
            """Build task's batch on the batch thread; its chunk's clips (and the next
            chunk's) are decoding on the audio threads by then."""
            position, indices = tasks[task]
            for ahead in (position, position + 1):
                if ahead < len(chunks) and ahead not in audio:
                    audio[ahead] = [audio_pool.submit(load_audio, u.path, adapter.sample_rate)
                                    for u in items_of(ahead)]
            return batch_pool.submit(_prepare, adapter, probe, items_of(position),
                                     audio[position], indices, window, feature_stream, encoders)

        upcoming = collections.deque(prepare(task) for task in range(min(depth, len(tasks))))
        results: _ChunkResults | None = None
        copying: list[Future[None]] = []  # statistics copies of the current chunk
        for task, (position, indices) in enumerate(tasks):
            with clock("waiting for batch"):
                prepared = upcoming.popleft().result()
            if task + depth < len(tasks):
                upcoming.append(prepare(task + depth))
            sl = layout.chunk_slice(chunks[position])
            if results is None:
                results = _ChunkResults(layout.n_layers, adapter.n_neurons, layout.n_options,
                                        sl.stop - sl.start, layout.count_dtype,
                                        sums=layout.sums_dtype)
            with clock("waiting for copies"):  # the host buffers this batch refills
                for earlier in copying[:-1]:
                    earlier.result()
            copy = _probe_batch(adapter, probe, stats, capture, items_of(position), prepared,
                                results, bool(layout.checkpoint_layers), clock, assembly)
            if copy is not None:
                copying.append(copy)
            done += len(indices)
            if progress is not None:
                progress(done, todo)
            if indices.stop == sl.stop - sl.start:  # the chunk's last batch
                if lease is not None:
                    lease.check()
                with clock("waiting for copies"):
                    for earlier in copying:
                        earlier.result()
                copying = []
                with clock("to writer"):
                    writer.submit(sl.start, results.to_batch(), results.checkpoints(layout))
                results = None
                audio.pop(position, None)
    elapsed = time.perf_counter() - start_time
    return ExtractReport(
        url=store.url, processed=done, progress=store.progress(), seconds=elapsed,
        seconds_writing=writer.seconds_writing,
        seconds_waiting_for_writer=writer.seconds_waiting, accuracy=accuracy_by_emotion(store),
        window=window, cut=cut_clips(store), stages=dict(clock.seconds),
        sums=layout.sums_dtype,
    )


def chunks_to_probe(store: ActivationStore,
                    say: Callable[[str], None]) -> tuple[list[int], list[int]]:
    """The chunks to probe: the store's pending chunks and, with a notice, its committed
    chunks that have lost files since (``ActivationStore.damaged_chunks``); and those
    damaged ones alone (a cluster's workers probe them whatever their status)."""
    damaged = store.damaged_chunks()
    if damaged:
        say(f"{store.url}: {len(damaged)} committed chunk(s) have lost files "
            f"(chunk {', '.join(map(str, damaged[:10]))}{', ...' if len(damaged) > 10 else ''}); "
            "probing them again")
    return sorted(set(store.pending_chunks()) | set(damaged)), damaged


class _Stages:
    """Seconds spent per named stage: ``with clock("model"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


def _size(layout: StoreLayout, chunk: int) -> int:
    sl = layout.chunk_slice(chunk)
    return sl.stop - sl.start


@dataclasses.dataclass
class _Prepared:
    """One probe batch made ready off the main thread: each item's options and what it
    heard, the items whose audio failed to decode, and the model inputs of the others."""

    indices: range
    options: dict[int, tuple[str, ...]]
    duration: dict[int, float]
    heard: dict[int, float]
    failures: dict[int, str]
    ready: list[int]
    batch: ProbeBatch | None
    ready_event: torch.cuda.Event | None = None  # the batch's copies to the GPU are done
    seconds_audio: float = 0.0  # waiting for decoded clips, on the batch thread
    seconds_building: float = 0.0  # the processor (features, chat template, ids), there


def _prepare(adapter: ModelAdapter, probe: Probe, items: Sequence[Utterance],
             audio_futures: Sequence[Future[np.ndarray]], indices: range,
             window: float | None, stream: torch.cuda.Stream | None,
             encoders: EncoderPool | None) -> _Prepared:
    """On a batch thread: wait for the clips, cut them, and build the batch (on a GPU on a
    side ``stream``, so its feature kernels and copies overlap the model's work); with
    ``encoders``, the processor runs in one of their processes and this thread only moves
    its tensors to the device."""
    prepared = _Prepared(indices=indices, options={}, duration={}, heard={}, failures={},
                         ready=[], batch=None)
    clips: list[np.ndarray] = []
    t0 = time.perf_counter()
    for i in indices:
        prepared.options[i] = probe.options_for(items[i].id)
        try:
            audio = audio_futures[i].result()
        except AudioDecodeError as exc:
            prepared.failures[i] = exc.reason
            continue
        heard = heard_part(audio, adapter.sample_rate, window)
        prepared.duration[i] = len(audio) / adapter.sample_rate
        prepared.heard[i] = len(heard) / adapter.sample_rate
        prepared.ready.append(i)
        clips.append(heard)
    t1 = time.perf_counter()
    if clips:
        prompts = [probe.prompt(prepared.options[i]) for i in prepared.ready]
        encoded = encoders.encode(clips, prompts) if encoders is not None else None
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            prepared.batch = (adapter.probe_batch(encoded) if encoded is not None
                              else adapter.build_batch(clips, prompts))
            if stream is not None:
                prepared.ready_event = torch.cuda.Event()
                prepared.ready_event.record(stream)
    prepared.seconds_audio, prepared.seconds_building = t1 - t0, time.perf_counter() - t1
    return prepared


def _hand_to_compute_stream(prepared: _Prepared) -> None:
    """Make the compute stream wait for the batch thread's copies, and keep the caching
    allocator from reusing the batch's memory before the compute stream is done with it."""
    batch, event = prepared.batch, prepared.ready_event
    if batch is None or event is None:
        return
    current = torch.cuda.current_stream()
    current.wait_event(event)
    for tensor in (*batch.inputs.values(), batch.valid, batch.audio):
        if isinstance(tensor, torch.Tensor) and tensor.is_cuda:
            tensor.record_stream(current)


def _probe_batch(
    adapter: ModelAdapter,
    probe: Probe,
    stats: GateStatistics,
    capture: HiddenStateCapture,
    items: Sequence[Utterance],
    prepared: _Prepared,
    results: _ChunkResults,
    keep_checkpoints: bool,
    clock: _Stages,
    assembly: ThreadPoolExecutor,
) -> Future[None] | None:
    """Run one prepared batch; returns the copy of its statistics into ``results`` that
    is still under way on the ``assembly`` thread (``None`` when no item was ready)."""
    for i in prepared.indices:
        results.options[i] = prepared.options[i]
        if i in prepared.failures:
            results.fail(i, prepared.failures[i])
        else:
            results.duration[i], results.heard[i] = prepared.duration[i], prepared.heard[i]
            results.truncated[i] = prepared.heard[i] < prepared.duration[i]
    batch = prepared.batch
    clock.add("batch thread: audio", prepared.seconds_audio)
    clock.add("batch thread: processor", prepared.seconds_building)
    if batch is None:
        return None
    _hand_to_compute_stream(prepared)
    with clock("model"):
        stats.start(batch)
        if keep_checkpoints:
            capture.start(batch.length)
        answers = adapter.generate(batch, probe.max_new_tokens)
    with clock("to host"):
        k, sums = stats.host_result()
        t = span_masks(batch).sum(dim=-1).round().to(torch.int64).cpu().numpy()
    # The statistics' copy into the chunk arrays (hundreds of MB at 7B) runs on the
    # assembly thread while the next batch runs; the host views stay valid until then.
    copying = assembly.submit(results.put_statistics, list(prepared.ready), k, sums)
    with clock("answers"):
        _gather(adapter, probe, capture, items, prepared, results, keep_checkpoints, batch,
                answers, t)
    return copying


def _gather(adapter: ModelAdapter, probe: Probe, capture: HiddenStateCapture,
            items: Sequence[Utterance], prepared: _Prepared, results: _ChunkResults,
            keep_checkpoints: bool, batch: ProbeBatch, answers: Sequence[str],
            t: np.ndarray) -> None:
    """Parse the answers and gather each item's answer (and checkpoints) into ``results``."""
    hidden = capture.states() if keep_checkpoints else None
    positions = adapter.rope_positions(batch).cpu() if keep_checkpoints else None
    for row, i in enumerate(prepared.ready):
        parsed = probe.parse(answers[row], results.options[i])
        results.done(i, t=t[row], answer=answers[row], parsed=parsed,
                     correct=parsed == items[i].emotion, n_tokens=batch.n_tokens[row])
        if hidden is not None and positions is not None:
            n = batch.n_tokens[row]
            pos = positions if positions.dim() == 3 else positions.unsqueeze(0)
            results.checkpoint_parts[i] = CheckpointChunk(
                hidden=hidden[:, row:row + 1, -n:],
                attention_mask=batch.attention_mask[row:row + 1, -n:].bool().cpu(),
                positions=pos[:, row:row + 1, -n:].to(torch.int32),
                valid=batch.valid[row:row + 1, -n:].cpu(),
                audio=batch.audio[row:row + 1, -n:].cpu(),
            )


class _ChunkResults:
    """Per-item results of one chunk, filled batch by batch."""

    def __init__(self, n_layers: int, n_neurons: int, n_options: int, n: int,
                 count_dtype: str, *, sums: str = "float32") -> None:
        self.k = np.zeros((n, 2, n_layers, n_neurons), dtype=count_dtype)
        # bfloat16 sums stay the bits the device rounded them to, as the store keeps them
        self.sums = None if sums == "none" else np.zeros(
            (n, 2, n_layers, n_neurons), dtype=np.uint16 if sums == "bfloat16" else np.float32)
        self.t = np.zeros((n, 2), dtype=np.uint32)
        self.status = np.zeros(n, dtype=np.int8)
        self.options: list[tuple[str, ...]] = [("",) * n_options] * n
        self.duration = np.full(n, np.nan, dtype=np.float32)
        self.heard = np.full(n, np.nan, dtype=np.float32)
        self.truncated = np.zeros(n, dtype=bool)
        self.n_tokens = np.zeros(n, dtype=np.int32)
        self.correct = np.zeros(n, dtype=bool)
        self.raw_answer = [""] * n
        self.parsed_answer = [""] * n
        self.failure_reason = [""] * n
        self.checkpoint_parts: dict[int, CheckpointChunk] = {}

    def fail(self, i: int, reason: str) -> None:
        self.status[i] = STATUS_FAILED
        self.failure_reason[i] = reason

    def put_statistics(self, rows: Sequence[int], k: np.ndarray,
                       sums: np.ndarray | None) -> None:
        """K and sums of items ``rows`` (one row of ``k``/``sums`` each), at once; sums as
        ``GateStatistics.host_result`` gives them (bfloat16 as their bits)."""
        where: slice | list[int] = list(rows)
        if list(rows) == list(range(rows[0], rows[0] + len(rows))):
            where = slice(rows[0], rows[0] + len(rows))
        self.k[where] = k
        if self.sums is not None and sums is not None:
            self.sums[where] = sums

    def done(self, i: int, *, t: np.ndarray, answer: str, parsed: str, correct: bool,
             n_tokens: int) -> None:
        self.t[i] = t
        self.status[i] = STATUS_DONE
        self.raw_answer[i], self.parsed_answer[i] = answer, parsed
        self.correct[i], self.n_tokens[i] = correct, n_tokens

    def to_batch(self) -> StatsBatch:
        return StatsBatch.build(
            K=self.k, T=self.t, act_sum=self.sums, options=np.array(self.options, dtype=object),
            status=self.status, duration=self.duration, heard=self.heard,
            truncated=self.truncated, n_tokens=self.n_tokens,
            correct=self.correct, raw_answer=self.raw_answer,
            parsed_answer=self.parsed_answer, failure_reason=self.failure_reason,
        )

    def checkpoints(self, layout: StoreLayout) -> CheckpointChunk | None:
        """The chunk's checkpoints; failed items get a row of padding only."""
        if not layout.checkpoint_layers:
            return None
        if self.checkpoint_parts:
            template = next(iter(self.checkpoint_parts.values()))
            axes, dtype = template.positions.shape[0], template.hidden.dtype
        else:
            axes, dtype = 1, getattr(torch, layout.hidden_dtype)
        n_layers, hidden = len(layout.checkpoint_layers), layout.hidden_size
        empty = CheckpointChunk(
            hidden=torch.zeros((n_layers, 1, 0, hidden), dtype=dtype),
            attention_mask=torch.zeros((1, 0), dtype=torch.bool),
            positions=torch.zeros((axes, 1, 0), dtype=torch.int32),
            valid=torch.zeros((1, 0), dtype=torch.bool),
            audio=torch.zeros((1, 0), dtype=torch.bool),
        )
        parts = [self.checkpoint_parts.get(i, empty) for i in range(len(self.status))]
        return CheckpointChunk.concat_left_padded(parts)


def accuracy_by_emotion(store: ActivationStore) -> dict[str, tuple[int, int]]:
    """emotion -> (correct, done) over the store's finished utterances."""
    status = store.status()
    emotion = store.metadata("emotion")
    correct = store.metadata("correct").astype(bool)
    out: dict[str, tuple[int, int]] = {}
    for label in store.attributes.labels:
        mine = (emotion == label) & (status == STATUS_DONE)
        out[label] = (int((correct & mine).sum()), int(mine.sum()))
    return out
