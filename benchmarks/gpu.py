"""esn at 7B size on one GPU, every figure a ratio to a baseline measured in the same run.

Builds a full-size random-weight bf16 checkpoint on the GPU at a released model's shapes
(``omni``: the Qwen2.5-Omni-7B thinker's decoder and audio encoder, vision tower kept tiny
since audio probes never run it; ``af3``: Audio Flamingo 3's Qwen2.5-7B decoder and
Whisper-large-v3 encoder; ``kimi``: Kimi-Audio-7B-Instruct's decoder on esn's rebuild,
28 layers x 18944 neurons, vocabulary 168448, with esn's stand-in speech front-end, so the
figures are the decoder's and esn's, not kimia_infer's tokenizer and Whisper), saves it
as a local checkpoint directory with a tiny processor, and loads it through esn exactly as a
user's checkpoint. Then, on the same 3-s clips and
the same batches, in this one process:

  prefill    ``model(**inputs)`` on prebuilt batches (no processor, no hooks): the floor;
  generate   ``model.generate`` on prebuilt batches under esn's greedy configuration
             (Kimi-Audio: ``adapter.generate``, its own greedy loop, no hooks);
  extract    ``esn extract`` (``extract()`` into a store on local disk): audio decoding,
             the processor, generation with the statistics hooks, answers, the writer;
  exact      the stored K, T and act_sum of the first batch against an independent
             recomputation (a plain forward of the same batch, gate outputs reduced by hand);
  replay     first-token logits of steering conditions replayed from checkpoints at
             layers 0 / 14 / 19 against the full forward with the same intervention;
  intervene  ``esn intervene --engine replay`` (conditions x test items answered per s)
             with neuron sets selected from the store at fraction 0.005;
  sharded    (``--steps sharded``) ``esn extract --workers 1`` and ``--workers 2`` on a
             local Dask cluster, one GPU per worker where there are two, else both on the
             one GPU: clips/s, the 2-to-1 scaling, and the two stores compared array by
             array (the multi-GPU figure: ``--steps sharded --clips 1024``).

    python -m benchmarks.gpu --family omni --json $OUT/omni.json       (on the GPU)
    python -m benchmarks.gpu --results omni.json af3.json               (writes RESULTS.md)

The JSON of each run is kept in ``benchmarks/gpu-runs/`` (with ``NOTES.md``, what the
figures say, appended to RESULTS.md).

``--tiny`` runs the same steps with a tiny model on the CPU (a check of this script).
"""

from __future__ import annotations

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_here) if os.path.abspath(p or ".") == _here else p
               for p in sys.path]

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from esn.schemas import DEFAULT_SUMS  # noqa: E402

RATE = 16000
LABELS = ("anger", "happy", "neutral", "sad")
OMNI_TEXT = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                 tie_word_embeddings=False, initializer_range=0.02, rms_norm_eps=1e-6)
OMNI_AUDIO = dict(d_model=1280, encoder_attention_heads=20, encoder_ffn_dim=5120,
                  encoder_layers=32, num_mel_bins=128, max_source_positions=1500, n_window=100,
                  output_dim=3584)
AF3_AUDIO = dict(hidden_size=1280, num_attention_heads=20, intermediate_size=5120,
                 num_hidden_layers=32, num_mel_bins=128, max_source_positions=1500)
VOCAB = {"omni": 152064, "af3": 151672}
#: Kimi-Audio-7B-Instruct: the Qwen2.5-7B decoder, speech ids from 152064 (16384 of them),
#: Whisper-large-v3 features at 12.5 Hz x 5120 (from esn's stand-in front-end here).
KIMI = dict(token_offset=152064, codebook=16384, adaptor_input_dim=5120)


def build_checkpoint(family: str, folder: Path, tiny: bool) -> float:
    """Save a random-weight checkpoint of ``family`` to ``folder``; seconds taken."""
    from esn.pipeline.models.tiny import (
        AF3_AUDIO as TINY_AF3_AUDIO,
    )
    from esn.pipeline.models.tiny import (
        OMNI_AUDIO as TINY_OMNI_AUDIO,
    )
    from esn.pipeline.models.tiny import (
        TEXT_SIZES,
        build_audioflamingo3,
        build_qwen2_5_omni,
    )

    t0 = time.perf_counter()
    text = TEXT_SIZES if tiny else OMNI_TEXT
    if tiny:
        make = None
        vocab = None
    else:
        def make(cls: type, config: Any) -> torch.nn.Module:
            with torch.device("cuda"):
                return cls._from_config(config, dtype=torch.bfloat16)  # type: ignore[attr-defined]
        vocab = VOCAB.get(family)  # Kimi's follows from its token offset and codebook
    if family == "kimi":
        from esn.pipeline.models.kimi_audio.tiny import build_kimi_audio, save_kimi_checkpoint

        kimi, kimi_processor = build_kimi_audio(0, text_sizes=dict(text), make_model=make,
                                                **({} if tiny else KIMI))
        save_kimi_checkpoint(kimi, kimi_processor, folder)
        del kimi
        return time.perf_counter() - t0
    if family == "omni":
        model, processor = build_qwen2_5_omni(
            text_sizes=text, audio_sizes=TINY_OMNI_AUDIO if tiny else OMNI_AUDIO,
            vocab_size=vocab, make_model=make)
    else:
        model, processor = build_audioflamingo3(
            text_sizes=text, audio_sizes=TINY_AF3_AUDIO if tiny else AF3_AUDIO,
            vocab_size=vocab, make_model=make)
    saving: Any = model
    saving.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return time.perf_counter() - t0


def write_corpus(root: Path, n: int, seconds: float = 3.0) -> Path:
    """``n`` clips of ``seconds`` (tones in noise), emotions in turn, as a manifest corpus."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        for i in range(n):
            wave = 0.3 * np.sin(2 * np.pi * (110 + 7 * i) * t) + 0.05 * rng.standard_normal(t.size)
            sf.write(root / f"c{i:04d}.wav", wave.astype(np.float32), RATE)
            writer.writerow({"path": f"c{i:04d}.wav", "label": LABELS[i % len(LABELS)],
                             "speaker": f"s{i % 8}"})
    return root / "manifest.csv"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def prebuilt_batches(adapter: Any, manifest: Path, batch_size: int) -> list[Any]:
    """The batches esn builds for this corpus (same order, prompts and options)."""
    from esn.pipeline.audio import load_audio
    from esn.pipeline.corpora import load_corpus
    from esn.pipeline.probe import Probe

    listing = load_corpus(f"manifest:{manifest}")
    probe = Probe(labels=tuple(listing.emotions))
    items = list(listing.utterances)
    out = []
    for first in range(0, len(items), batch_size):
        part = items[first:first + batch_size]
        out.append(adapter.build_batch([load_audio(u.path) for u in part],
                                       [probe.prompt(probe.options_for(u.id)) for u in part]))
    return out


def baselines(adapter: Any, batches: list[Any], tokens: int) -> dict[str, float]:
    from esn.pipeline.decoding import greedy_generation

    n = sum(b.size for b in batches)
    own_loop = adapter.family == "kimi_audio"  # no transformers generate: its own loop

    def prefill() -> None:
        with torch.inference_mode():
            for b in batches:
                adapter.model(**b.inputs)

    def generate() -> None:
        if own_loop:  # Kimi-Audio: esn's greedy loop is the model's own decoding
            with torch.inference_mode():
                for b in batches:
                    adapter.generate(b, tokens)
            return
        with torch.inference_mode(), greedy_generation(adapter.model, adapter.tokenizer,
                                                       tokens) as config:
            for b in batches:
                adapter.model.generate(**b.inputs, generation_config=config)

    def generate_with_statistics() -> None:  # esn's hooks alone: no pipeline, no store
        from esn.pipeline.extract.statistics import GateStatistics

        stats = GateStatistics(adapter.gate_modules(), count_dtype="uint16")
        with torch.inference_mode(), stats.attached():
            for b in batches:
                stats.start(b)
                if own_loop:
                    adapter.generate(b, tokens)
                else:
                    with greedy_generation(adapter.model, adapter.tokenizer, tokens) as config:
                        adapter.model.generate(**b.inputs, generation_config=config)
                stats.host_result()

    prefill()  # warm-up
    return {"prefill": n / min(timed(prefill) for _ in range(2)),
            "generate": n / min(timed(generate) for _ in range(2)),
            "generate_with_statistics": n / min(timed(generate_with_statistics)
                                                for _ in range(2))}


def esn_extract(adapter: Any, model_dir: Path, manifest: Path, out: Path, batch_size: int,
                tokens: int, checkpoint_layers: tuple[int, ...] = (),
                sums: str | None = None, batch_workers: int | None = None) -> Any:
    from esn.pipeline.extract import ExtractRequest, extract
    from esn.pipeline.models import LoadOptions

    if out.exists():
        shutil.rmtree(out)
    return extract(ExtractRequest(
        model=LoadOptions(model_id=str(model_dir), device=adapter.device.type,
                          dtype="bfloat16" if adapter.device.type == "cuda" else "float32"),
        corpus=f"manifest:{manifest}", out=str(out), batch_size=batch_size,
        max_new_tokens=tokens, checkpoint_layers=checkpoint_layers, sums=sums,
        batch_workers=batch_workers), adapter=adapter)


def exactness(adapter: Any, store_path: Path, batch: Any) -> dict[str, Any]:
    """The store's first batch against a plain forward's gate outputs reduced by hand."""
    from esn.stores import ActivationStore

    store = ActivationStore.open(store_path)
    n = batch.size
    gates = adapter.gate_modules()
    outputs: dict[int, torch.Tensor] = {}
    handles = [g.register_forward_hook(
        lambda _m, _i, out, layer=layer: outputs.__setitem__(layer, out.detach()))
        for layer, g in enumerate(gates)]
    try:
        with torch.inference_mode():
            adapter.model(**batch.inputs)
    finally:
        for h in handles:
            h.remove()
    audio = (batch.valid & batch.audio).float()
    text = (batch.valid & ~batch.audio).float()
    differ = total = 0
    worst = 0.0
    stored_k = store.read("K", slice(0, n)).astype(np.int64)
    stored_sum = store.read("act_sum", slice(0, n)) if store.records("act_sum") else None
    stored_t = store.read("T", slice(0, n))
    t_ok = bool(np.array_equal(stored_t[:, 0], audio.sum(-1).cpu().numpy())
                and np.array_equal(stored_t[:, 1], text.sum(-1).cpu().numpy()))
    for layer in range(len(gates)):
        a = outputs[layer].float()
        for s, mask in enumerate((audio, text)):
            k = ((a > 0).float() * mask[:, :, None]).sum(1).round().long().cpu().numpy()
            sums = (a * mask[:, :, None]).sum(1).cpu().numpy()
            d = stored_k[:, s, layer] != k
            differ += int(d.sum())
            total += d.size
            if stored_sum is not None:
                scale = float(np.abs(sums).max()) or 1.0
                worst = max(worst, float(np.abs(stored_sum[:, s, layer] - sums).max()) / scale)
    return {"K_entries": total, "K_differing": differ, "T_equal": t_ok,
            "act_sum_max_rel_diff": worst if stored_sum is not None else None}


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def sums_choices(adapter: Any, model_dir: Path, manifest: Path, work: Path, batch_size: int,
                 tokens: int, base: dict[str, float], clips: int,
                 first_batch: Any) -> dict[str, Any]:
    """The same extraction keeping no, bfloat16 and float32 sums: rate, bytes per
    utterance, and the bfloat16 store against the float32 one (bit-equal to torch's cast)."""
    from esn.stores import ActivationStore

    out: dict[str, Any] = {}
    for sums in ("none", "bfloat16", "float32"):
        path = work / f"sums-{sums}.zarr"
        report = esn_extract(adapter, model_dir, manifest, path, batch_size, tokens, sums=sums)
        out[sums] = {"extract": report.items_per_second,
                     "vs_generate": report.items_per_second / base["generate"],
                     "bytes_per_utterance": store_bytes(path) / clips,
                     "writer_busy_s": report.seconds_writing}
        print(json.dumps({f"sums {sums}": out[sums]}), flush=True)
    out["exact_float32"] = exactness(adapter, work / "sums-float32.zarr", first_batch)
    f32 = ActivationStore.open(work / "sums-float32.zarr")
    bf16 = ActivationStore.open(work / "sums-bfloat16.zarr")
    rounded = equal = 0
    worst = 0.0
    for chunk in range(f32.layout.n_chunks):
        sl = f32.layout.chunk_slice(chunk)
        a, b = f32.read("act_sum", sl), bf16.read("act_sum", sl)
        want = torch.from_numpy(a).to(torch.bfloat16).float().numpy()
        equal += int((want == b).sum())
        rounded += int(want.size)
        big = np.abs(a) > 1e-3
        worst = max(worst, float((np.abs(b - a)[big] / np.abs(a[big])).max(initial=0.0)))
    out["bfloat16_vs_float32"] = {"entries": rounded, "equal_to_torch_cast": equal,
                                  "max_rel_diff": worst}
    for path in work.glob("sums-*.zarr"):
        shutil.rmtree(path)
    return out


def replay_vs_full(adapter: Any, store_path: Path, batches: list[Any],
                   layers: tuple[int, ...], neurons: int) -> list[dict[str, Any]]:
    """Per replay layer c: a steering condition on ``neurons`` random neurons of layers
    >= c; the full forward on the prebuilt batches against replay from the stored states
    (read before timing: this is the compute), and whether their first tokens agree."""
    from esn.pipeline.intervene import Intervention
    from esn.pipeline.intervene.replay import ReplayInputs
    from esn.stores import ActivationStore

    store = ActivationStore.open(store_path)
    size = store.layout.utterance_chunk
    chunks = {c: store.read_checkpoints(c) for c in range(store.layout.n_chunks)}
    rng = np.random.default_rng(1)
    rows = []
    for c in layers:
        cond = Intervention.steer(
            list(zip(rng.integers(c, adapter.n_layers, neurons).tolist(),
                     rng.integers(0, adapter.n_neurons, neurons).tolist(), strict=True)), 2.0)
        inputs, first = [], 0
        for b in batches:
            chunk, row = divmod(first, size)
            inputs.append(ReplayInputs.from_checkpoints(
                chunks[chunk], store.layout.checkpoint_layers, c, range(row, row + b.size)))
            first += b.size
        rows.append(_replay_row(adapter, batches, inputs, cond, c))
    return rows


def _replay_row(adapter: Any, batches: list[Any], inputs: list[Any], cond: Any,
                layer: int) -> dict[str, Any]:
    from esn.pipeline.intervene import intervention_hooks
    from esn.pipeline.intervene.replay import replay_first_logits

    tokens: dict[str, list[int]] = {"full": [], "replay": []}

    def full() -> None:
        tokens["full"] = []
        with torch.inference_mode(), intervention_hooks(adapter, cond):
            for b in batches:
                tokens["full"] += adapter.model(**b.inputs).logits[:, -1].argmax(-1).tolist()

    def replay() -> None:
        tokens["replay"] = []
        for i in inputs:
            tokens["replay"] += replay_first_logits(adapter, i, cond).argmax(-1).tolist()

    full()
    replay()  # warm-up
    t_full, t_replay = timed(full), timed(replay)
    return {"from_layer": layer, "full_s": t_full, "replay_s": t_replay,
            "speedup": t_full / t_replay,
            "first_tokens_equal": tokens["full"] == tokens["replay"]}


def esn_intervene(store_path: Path, work: Path, adapter: Any) -> dict[str, Any]:
    import pandas as pd

    from esn.pipeline.intervene.run import InterveneRequest, intervene
    from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
    from esn.stores.neuron_sets import write_neuron_sets

    t0 = time.perf_counter()
    sets, _ = select_neurons(str(store_path), SelectOptions(
        methods=("mad", "conact"), fraction=0.005, random_draws=1,
        pool=PoolOptions(holdout=0.5, correct_only=False, balance=False)))
    t_select = time.perf_counter() - t0
    write_neuron_sets(work / "sets.json", sets, overwrite=True)
    out = work / "results"
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    folder = intervene(InterveneRequest(store=str(store_path), sets=str(work / "sets.json"),
                                        out=str(out), engine="replay", batch_size=32,
                                        random_draws=1, n_boot=100), adapter=adapter)
    seconds = time.perf_counter() - t0
    answers = pd.read_csv(folder / "answers.csv", keep_default_na=False)
    return {"pairs": len(answers), "seconds": seconds, "pairs_per_s": len(answers) / seconds,
            "select_s": t_select, "neurons_per_emotion": sets.budget}


class _NullWriter:
    """Stands in for the chunk writer: finished chunks are dropped (diagnosis only)."""

    seconds_writing = seconds_waiting = 0.0

    def __init__(self, store: Any) -> None:
        pass

    def submit(self, *args: Any) -> None:
        pass

    def __enter__(self) -> _NullWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class _InlinePool:
    """A ``ThreadPoolExecutor`` stand-in that runs each task at once, on the caller's thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        from concurrent.futures import Future

        future: Future[Any] = Future()
        future.set_result(fn(*args))
        return future

    def __enter__(self) -> _InlinePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def diagnose(adapter: Any, model_dir: Path, manifest: Path, work: Path,
             batch_size: int) -> dict[str, Any]:
    """Where the extraction's extra time comes from: the same run with the writer dropped,
    with batches built and statistics copied inline (no batch or assembly thread), both."""
    from concurrent.futures import ThreadPoolExecutor

    import esn.pipeline.extract.run as extract_run

    def pool(max_workers: int | None = None, thread_name_prefix: str = "") -> Any:
        if thread_name_prefix in ("esn-batches", "esn-assembly"):
            return _InlinePool()
        return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix)

    batches = prebuilt_batches(adapter, manifest, batch_size)
    out: dict[str, Any] = {"generate": baselines(adapter, batches, 2)["generate"]}
    variants: dict[str, dict[str, Any]] = {"esn": {}, "no writer": {"ChunkWriter": _NullWriter},
                "inline threads": {"ThreadPoolExecutor": pool},
                "no writer, inline threads": {"ChunkWriter": _NullWriter,
                                              "ThreadPoolExecutor": pool}}
    for name, patches in variants.items():
        saved = {key: getattr(extract_run, key) for key in patches}
        for key, value in patches.items():
            setattr(extract_run, key, value)
        try:
            report = esn_extract(adapter, model_dir, manifest, work / "d.zarr", batch_size, 2)
        finally:
            for key, value in saved.items():
                setattr(extract_run, key, value)
        out[name] = {"extract": report.items_per_second,
                     "vs_generate": report.items_per_second / out["generate"],
                     "stages_s": dict(report.stages)}
        print(json.dumps({name: out[name]}), flush=True)
    return out


def sharded(model_dir: Path, manifest: Path, work: Path, batch_size: int, tokens: int,
            tiny: bool, sizes: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """``esn extract`` on a local Dask cluster of 1 and 2 workers on the same clips: each
    worker on its own GPU where there are enough, else sharing the one GPU; wall clock,
    clips/s, the 2-to-1 scaling ratio, each worker's rate and peak memory, and whether the
    stores equal the 1-worker store array by array."""
    from benchmarks.sharded import same_store
    from esn.pipeline.extract import ExtractRequest
    from esn.pipeline.extract.sharded import ClusterOptions, extract_sharded
    from esn.pipeline.models import LoadOptions

    gpus = torch.cuda.device_count()
    rows = []
    for n in sizes:
        out = work / f"sharded-{n}.zarr"
        if out.exists():
            shutil.rmtree(out)
        own = gpus >= n and not tiny
        request = ExtractRequest(
            model=LoadOptions(model_id=str(model_dir), device="cpu" if tiny else "cuda",
                              dtype="float32" if tiny else "bfloat16"),
            corpus=f"manifest:{manifest}", out=str(out), batch_size=batch_size,
            max_new_tokens=tokens, checkpoint_layers=(0,), utterance_chunk=batch_size)
        t0 = time.perf_counter()
        report = extract_sharded(request, ClusterOptions(workers=n,
                                                         gpus_per_worker=1 if own else 0))
        seconds = time.perf_counter() - t0
        busy = max(w["busy_s"] for w in report.workers.values())
        rows.append({"workers": n, "gpus": n if own else (0 if tiny else 1),
                     "seconds": seconds, "clips_per_s": report.processed / seconds,
                     "busy_clips_per_s": report.processed / busy,
                     "workers_detail": {k: dict(v) for k, v in report.workers.items()}})
    for row in rows[1:]:
        row["identical_to_first"] = same_store(work / f"sharded-{sizes[0]}.zarr",
                                               work / f"sharded-{row['workers']}.zarr")
    return {"batch_size": batch_size, "new_tokens": tokens, "rows": rows,
            "scaling": rows[-1]["busy_clips_per_s"] / rows[0]["busy_clips_per_s"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from esn.pipeline.models import LoadOptions, load_adapter

    work = Path(args.work) / args.family
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / "checkpoint"
    result: dict[str, Any] = {"family": args.family, "date": datetime.date.today().isoformat(),
                              "tiny": args.tiny}

    def save() -> None:  # after every step: a run stopped at its time limit keeps its figures
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))

    if torch.cuda.is_available():
        result["card"] = torch.cuda.get_device_name(0)
    import transformers

    result["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                          "python": platform.python_version(),
                          "cuda": torch.version.cuda or "-"}
    if not (model_dir / "config.json").exists():
        result["build_s"] = build_checkpoint(args.family, model_dir, args.tiny)
    device = "cpu" if args.tiny else "cuda"
    t0 = time.perf_counter()
    adapter = load_adapter(LoadOptions(model_id=str(model_dir), device=device,
                                       dtype="float32" if args.tiny else "bfloat16"))
    result["load_s"] = time.perf_counter() - t0
    result["parameters"] = sum(p.numel() for p in adapter.model.parameters())
    result["layers"], result["neurons_per_layer"] = adapter.n_layers, adapter.n_neurons
    manifest = write_corpus(work / "corpus", args.clips)
    warm = write_corpus(work / "warm", 16)
    esn_extract(adapter, model_dir, warm, work / "warm.zarr", 8, 2)  # warm-up
    if "diagnose" in args.steps:
        result["diagnose"] = diagnose(adapter, model_dir, manifest, work, max(args.batch_sizes))
        save()
    if "sharded" in args.steps:
        result["sharded"] = sharded(model_dir, manifest, work, max(args.batch_sizes),
                                    min(args.tokens), args.tiny)
        save()
    rows = []
    first_batch = None
    for batch_size in args.batch_sizes if "extract" in args.steps else ():
        batches = prebuilt_batches(adapter, manifest, batch_size)
        result["prompt_tokens"] = int(np.mean([n for b in batches for n in b.n_tokens]))
        for tokens in args.tokens:
            base = baselines(adapter, batches, tokens)
            report = esn_extract(adapter, model_dir, manifest, work / "s.zarr", batch_size,
                                 tokens, batch_workers=args.batch_workers)
            rate = report.items_per_second
            rows.append({"batch_size": batch_size, "new_tokens": tokens,
                         "prefill": base["prefill"], "generate": base["generate"],
                         "generate_with_statistics": base["generate_with_statistics"],
                         "extract": rate, "vs_generate": rate / base["generate"],
                         "vs_prefill": rate / base["prefill"],
                         "writer_busy_s": report.seconds_writing,
                         "waited_on_writer_s": report.seconds_waiting_for_writer,
                         "stages_s": dict(report.stages), "seconds": report.seconds})
            print(json.dumps(rows[-1]), flush=True)
            result["extraction"] = rows
            save()
            if batch_size == max(args.batch_sizes) and tokens == min(args.tokens):
                from esn.pipeline.extract.encoding import batch_workers

                workers = batch_workers(adapter, args.batch_workers)
                result["batch_workers"] = workers
                if workers:  # the same run encoding on the batch thread, features on the GPU
                    thread = esn_extract(adapter, model_dir, manifest, work / "thread.zarr",
                                         batch_size, tokens, batch_workers=0)
                    result["batch_thread"] = {
                        "extract": thread.items_per_second,
                        "vs_generate": thread.items_per_second / base["generate"],
                        "stages_s": dict(thread.stages)}
                    print(json.dumps(result["batch_thread"]), flush=True)
                    adapter.feature_device = "cpu"  # as the workers compute them
                    first_batch = prebuilt_batches(adapter, manifest, batch_size)[0]
                    adapter.feature_device = None
                else:
                    first_batch = batches[0]
                result["exact"] = exactness(adapter, work / "s.zarr", first_batch)
                result["sums_default"] = DEFAULT_SUMS
                result["store_bytes_per_utterance"] = store_bytes(work / "s.zarr") / args.clips
                print(json.dumps(result["exact"]), flush=True)
                result["sums"] = sums_choices(adapter, model_dir, manifest, work, batch_size,
                                              tokens, base, args.clips, first_batch)
                save()
    result["extraction"] = rows
    if "intervene" not in args.steps:
        return result
    # At 28 layers: 0 / 14 / 19, the layers of the anchor speed-ups.
    layers = tuple(sorted({0, adapter.n_layers // 2, adapter.n_layers * 19 // 28}))
    ckpt = work / "ckpt.zarr"
    big = max(args.batch_sizes)
    report = esn_extract(adapter, model_dir, manifest, ckpt, big, 2, layers)
    result["extract_with_checkpoints"] = report.items_per_second
    batches = prebuilt_batches(adapter, manifest, big)
    neurons = max(1, int(0.005 * adapter.n_layers * adapter.n_neurons))
    result["replay"] = replay_vs_full(adapter, ckpt, batches, layers, neurons)
    for row in result["replay"]:
        print(json.dumps(row), flush=True)
    save()
    result["intervene"] = esn_intervene(ckpt, work, adapter)
    print(json.dumps(result["intervene"]), flush=True)
    save()
    # The same with one new token: every answer is the replayed first token (no decoding on
    # from the layer-0 checkpoint): the replay engine's own rate.
    esn_extract(adapter, model_dir, manifest, ckpt, big, 1, layers)
    result["intervene_first_token"] = esn_intervene(ckpt, work, adapter)
    print(json.dumps(result["intervene_first_token"]), flush=True)
    save()
    return result


RESULTS_HEAD = """# GPU results

Written by `python -m benchmarks.gpu --results ...` from the JSON that
`python -m benchmarks.gpu --family F --json F.json` wrote on the GPU. Random bf16 weights at
the released shapes, saved as a local checkpoint and loaded through esn; 3-s clips; every
ratio is against a baseline measured in the same process on the same batches (prefill and
generate on prebuilt batches: no processor, no hooks; "generate + esn's hooks" adds only the
statistics hooks; esn's rate includes decoding the audio, the processor, the statistics, the
answers and the store). 256 clips per setting; stages are the main thread's seconds.
"""


def write_results(paths: list[str], out: Path) -> None:
    lines = [RESULTS_HEAD]
    for path in paths:
        r = json.loads(Path(path).read_text())
        v = r["versions"]
        what = f" (`{Path(path).name}`)"
        lines += [
            f"## {r['family']}: {r['parameters'] / 1e9:.2f} B parameters, {r['layers']} layers "
            f"x {r['neurons_per_layer']} neurons{what}",
            "",
            f"{r.get('card', 'CPU')}, torch {v['torch']} (CUDA {v['cuda']}), transformers "
            f"{v['transformers']}, Python {v['python']}, {r['date']}.",
            "",
        ]
        if r.get("extraction"):
            lines += _extraction_lines(r)
        if r.get("replay"):
            lines += _intervene_lines(r)
        if r.get("diagnose"):
            lines += _diagnose_lines(r["diagnose"])
        if r.get("sharded"):
            lines += _sharded_lines(r["sharded"])
    notes = Path(__file__).parent / "gpu-runs" / "NOTES.md"
    if notes.exists():  # what the figures say, written by whoever ran them
        lines += ["", notes.read_text()]
    out.write_text("\n".join(lines))


def _extraction_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{r['prompt_tokens']}-token prompts.",
        "",
        "| batch | new tokens | prefill clips/s | generate clips/s | generate + esn's hooks "
        "| esn extract clips/s | vs generate | vs prefill |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["extraction"]:
        hooks = row.get("generate_with_statistics")
        lines.append(f"| {row['batch_size']} | {row['new_tokens']} | {row['prefill']:.1f} "
                     f"| {row['generate']:.1f} | {f'{hooks:.1f}' if hooks else '-'} "
                     f"| {row['extract']:.1f} "
                     f"| {row['vs_generate']:.2f}x | {row['vs_prefill']:.2f}x |")
    lines.append("")
    for row in r["extraction"]:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in row.get("stages_s", {}).items())
        lines.append(f"- batch {row['batch_size']}, {row['new_tokens']} tokens: "
                     f"{row['seconds']:.2f} s in all; {stages} (s; the batch thread's "
                     f"overlap the main thread's; writer busy {row['writer_busy_s']:.2f} s "
                     "on its own thread)")
    cpu = r.get("features_on_cpu")
    if cpu:
        lines.append(f"- mel features on the CPU instead of the GPU (batch "
                     f"{max(x['batch_size'] for x in r['extraction'])}, "
                     f"{min(x['new_tokens'] for x in r['extraction'])} tokens): "
                     f"{cpu['extract']:.1f} clips/s ({cpu['vs_generate']:.2f}x generate)")
    thread = r.get("batch_thread")
    if thread:
        lines.append(f"- batches encoded by {r['batch_workers']} worker processes "
                     "(`--batch-workers`, features on their CPUs); the same run encoding on the "
                     f"batch thread instead (`--batch-workers 0`, features on the GPU; batch "
                     f"{max(x['batch_size'] for x in r['extraction'])}, "
                     f"{min(x['new_tokens'] for x in r['extraction'])} tokens): "
                     f"{thread['extract']:.1f} clips/s ({thread['vs_generate']:.2f}x generate)")
    e = r["exact"]
    sums = r.get("sums")
    if sums:
        e = sums["exact_float32"]
    lines += [
        "",
        f"Exactness (first batch against a plain forward reduced by hand): "
        f"{e['K_differing']} of {e['K_entries']} K entries differ, T equal: {e['T_equal']}"
        + (f", float32 act_sum max relative difference {e['act_sum_max_rel_diff']:.1e}"
           if e.get("act_sum_max_rel_diff") is not None else "")
        + f". Store on disk with the default sums ({r.get('sums_default', 'float32')}): "
        f"{r['store_bytes_per_utterance'] / 1e6:.2f} MB per utterance."
        + (f" Extraction with checkpoints: {r['extract_with_checkpoints']:.1f} clips/s."
           if "extract_with_checkpoints" in r else ""),
        "",
    ]
    if sums:
        lines += ["`--sums` (same run, batch and tokens as the exactness row):", "",
                  "| --sums | clips/s | vs generate | MB per utterance on disk | writer busy s |",
                  "|---|---|---|---|---|"]
        for name in ("none", "bfloat16", "float32"):
            row = sums[name]
            lines.append(f"| {name} | {row['extract']:.1f} | {row['vs_generate']:.2f}x "
                         f"| {row['bytes_per_utterance'] / 1e6:.2f} | "
                         f"{row['writer_busy_s']:.2f} |")
        c = sums["bfloat16_vs_float32"]
        lines += ["", f"bfloat16 sums against the float32 store of the same run: "
                  f"{c['equal_to_torch_cast']} of {c['entries']} equal torch's cast of the "
                  f"float32 sum; largest relative change {c['max_rel_diff']:.1e} "
                  "(sums above 1e-3).", ""]
    return lines


def _diagnose_lines(d: dict[str, Any]) -> list[str]:
    lines = [f"Where extraction's extra time comes from (batch 32, 2 new tokens; plain "
             f"`generate` {d['generate']:.1f} clips/s):", "",
             "| variant | esn extract clips/s | vs generate | model stage s |",
             "|---|---|---|---|"]
    for name, row in d.items():
        if name != "generate":
            lines.append(f"| {name} | {row['extract']:.1f} | {row['vs_generate']:.2f}x "
                         f"| {row['stages_s'].get('model', float('nan')):.2f} |")
    return [*lines, ""]


def _sharded_lines(d: dict[str, Any]) -> list[str]:
    lines = ["", f"`esn extract --workers N` on a local Dask cluster (batch {d['batch_size']}, "
             f"{d['new_tokens']} new tokens, checkpoints at layer 0; wall clock with the "
             "cluster's start and every worker's model load):", "",
             "| workers | GPUs | wall s | clips/s | clips/s while probing | peak MiB per "
             "worker | store equal to 1 worker's |", "|---|---|---|---|---|---|---|"]
    for row in d["rows"]:
        peak = max(w["peak_mib"] for w in row["workers_detail"].values())
        same = row.get("identical_to_first", "-")
        lines.append(f"| {row['workers']} | {row['gpus']} | {row['seconds']:.1f} | "
                     f"{row['clips_per_s']:.1f} | {row['busy_clips_per_s']:.1f} | "
                     f"{peak:.0f} | {same} |")
    lines += ["", f"Scaling (clips/s while probing, last row over first): "
              f"**{d['scaling']:.2f}x**."]
    return lines


def _intervene_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "| replay from layer | full s | replay s | speed-up | first tokens equal |",
        "|---|---|---|---|---|",
    ]
    for row in r["replay"]:
        lines.append(f"| {row['from_layer']} | {row['full_s']:.3f} | {row['replay_s']:.3f} "
                     f"| {row['speedup']:.2f}x | {row['first_tokens_equal']} |")
    i = r["intervene"]
    lines += ["", f"`esn intervene --engine replay`, {i['neurons_per_emotion']} neurons per "
              f"emotion (fraction 0.005), store probed with 2 new tokens (a digit first "
              f"token decodes on from the layer-0 checkpoint, as a real model's \"2\" "
              f"does): {i['pairs']} (condition, item) pairs in {i['seconds']:.1f} s = "
              f"**{i['pairs_per_s']:.1f} pairs/s** (selection before it: "
              f"{i['select_s']:.1f} s)."]
    one = r.get("intervene_first_token")
    if one:
        lines.append(f"With 1 new token (every answer replayed, no decoding on): "
                     f"{one['pairs_per_s']:.1f} pairs/s.")
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", choices=("omni", "af3", "kimi"), default="omni")
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--tokens", type=int, nargs="+", default=[2, 20])
    parser.add_argument("--work", default="/tmp/esn-gpu")
    parser.add_argument("--json", default=None)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--batch-workers", type=int, default=None,
                        help="esn extract --batch-workers for every extraction (default 0)")
    parser.add_argument("--steps", nargs="+",
                        choices=("extract", "intervene", "diagnose", "sharded"),
                        default=["extract", "intervene"],
                        help="extract: the extraction table and exactness; intervene: "
                             "replay vs full and esn intervene; diagnose: extraction with "
                             "the writer dropped and the batch/assembly threads inline; "
                             "sharded: 1 and 2 Dask workers (one GPU each where there are "
                             "two, else sharing one)")
    parser.add_argument("--results", nargs="+", default=None,
                        help="JSON files to turn into benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.results:
        write_results(args.results, Path(__file__).parent / "RESULTS.md")
        return
    run(args)


if __name__ == "__main__":
    main()
