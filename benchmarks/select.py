"""Selection out of core: peak memory, throughput, and ratios to two same-run baselines.

1. Builds (once; reused if present) a synthetic store of realistic shape: 28 layers x 18944
   neurons, uint16 counts K and float32 activation sums, ``--utterances`` utterances (default
   4160: 26.5 GB of raw statistics, more than this machine's 24 GiB of RAM), four emotions.
2. Runs, each in a fresh subprocess (so peak memory is the step's own):
     read      read and decompress every chunk of the arrays the selectors need (K and T:
               every built-in selector ranks by firing rates), nothing else: the floor;
     read all  the same for K, T and act_sum (what selection read before it skipped act_sum);
     select    ``esn select`` with every selector (lap, lape, mad, conact, rnd) in one pass;
3. Baseline in memory: on a smaller store that fits (``--small`` utterances), numpy reads
   everything into RAM and computes the same aggregates; compared with esn on that store.
Prints (a) peak resident memory, (b) GB/s of raw data, (c) select / read time, (d) esn vs
numpy time on the small store.

    python benchmarks/select.py [--dir /tmp/esn-bench] [--utterances 4160] [--small 256]
"""

from __future__ import annotations

import os
import sys

# benchmarks/select.py is named like the standard library's `select`, which subprocess and
# asyncio import: when a script here runs directly, the repository root takes this folder's
# place on the import path (so `benchmarks._corpus` imports too).
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_here) if os.path.abspath(p or ".") == _here else p
               for p in sys.path]

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._steps import run_step  # noqa: E402
from esn.schemas import ModelInfo, ProbeInfo, StatsBatch, Utterance  # noqa: E402
from esn.stores import ActivationStore  # noqa: E402

LAYERS, NEURONS, CHUNK = 28, 18944, 64
LABELS = ("anger", "happy", "neutral", "sad")


def build(path: Path, n: int) -> None:
    if (path / "zarr.json").exists() and ActivationStore.open(path).progress().pending == 0:
        return
    rng = np.random.default_rng(0)
    utterances = [Utterance(id=f"u{i:06d}", corpus="synthetic", path=f"/u{i}.wav",
                            emotion=LABELS[i % 4], raw_label=LABELS[i % 4],
                            split="train" if i % 5 else "test") for i in range(n)]
    store = ActivationStore.create(path, utterances=utterances, model=ModelInfo(id="synthetic"),
                                   probe=ProbeInfo(template="{options}"), labels=LABELS,
                                   n_layers=LAYERS, n_neurons=NEURONS, utterance_chunk=CHUNK,
                                   if_exists="overwrite")
    # A few random chunks, rolled along the neuron axis per chunk: realistic values and
    # compressibility without drawing 26 GB of binomials.
    t = rng.integers(100, 800, size=(CHUNK, 2)).astype(np.uint32)
    rate = rng.beta(2.0, 3.0, size=(4, 1, 2, LAYERS, NEURONS))
    bases = [rng.binomial(t[:, :, None, None], rate[i]).astype(np.uint16) for i in range(2)]
    sums = [(b * 0.4 + rng.normal(0, 2, b.shape)).astype(np.float32) for b in bases]
    options = np.array([LABELS] * CHUNK, dtype=object)
    for c in range(-(-n // CHUNK)):
        size = min(CHUNK, n - c * CHUNK)
        shift = int(rng.integers(NEURONS))
        batch = StatsBatch.build(
            K=np.roll(bases[c % 2], shift, axis=-1)[:size], T=t[:size],
            act_sum=np.roll(sums[c % 2], shift, axis=-1)[:size], options=options[:size],
            correct=rng.uniform(size=size) < 0.8)
        store.write_batch(c * CHUNK, batch)
        print(f"\rbuilding {path.name}: chunk {c + 1}/{-(-n // CHUNK)}", end="", file=sys.stderr)
    print(file=sys.stderr)


STEP = r"""
import json, sys, time
import dask, numpy as np
import esn
from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
step, url = sys.argv[1], sys.argv[2]
ds = esn.open_store(url)
t0 = time.perf_counter()
names = ("K", "T", "act_sum") if step in ("read_all", "numpy") else ("K", "T")
if step in ("read", "read_all"):
    tiny = lambda b: np.zeros((1,) * b.ndim, b.dtype)  # decompressed, then dropped
    dask.compute(*[ds[v].data.map_blocks(tiny, chunks=(1,) * ds[v].ndim).sum()
                   for v in names])
elif step == "select":
    select_neurons(url, SelectOptions(pool=PoolOptions(split="all", correct_only=False)))
elif step == "numpy":
    k = ds.K.values.astype(np.float64); t = ds.T.values.astype(np.float64)
    s = ds.act_sum.values.astype(np.float64)
    e = np.array([str(x) for x in ds.emotion.values])
    w = np.stack([(e == lab).astype(np.float64) for lab in ("anger","happy","neutral","sad")], 1)
    aggs = [np.tensordot(w, a, axes=(0, 0)) for a in (k, t, s)]
seconds = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report the
# parent's peak (the store builder's).
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
raw = sum(ds[v].nbytes for v in names)
print(json.dumps({"seconds": seconds, "peak": peak, "raw": raw}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=Path("/tmp/esn-bench"))
    parser.add_argument("--utterances", type=int, default=4160)
    parser.add_argument("--small", type=int, default=256)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    big, small = args.dir / "big.zarr", args.dir / "small.zarr"
    t0 = time.perf_counter()
    build(big, args.utterances)
    build(small, args.small)
    print(f"stores ready in {time.perf_counter() - t0:.0f} s")
    read, select = run_step(STEP, "read", str(big)), run_step(STEP, "select", str(big))
    read_all = run_step(STEP, "read_all", str(big))
    esn_small = run_step(STEP, "select", str(small))
    numpy_small = run_step(STEP, "numpy", str(small))
    gb = read["raw"] / 1e9
    stored = ActivationStore.open(big).info()["bytes"]["stored"] / 1e9
    print(f"store: {args.utterances} utterances x {LAYERS} layers x {NEURONS} neurons, "
          f"{gb:.1f} GB raw, {stored:.1f} GB on disk")
    for name, r in (("read K, T", read), ("read K, T, act_sum", read_all),
                    ("esn select (all)", select)):
        print(f"  {name:18s} {r['seconds']:7.1f} s  {r['raw'] / 1e9 / r['seconds']:5.2f} GB/s raw"
              f"  peak RSS {r['peak'] / 2**30:.2f} GiB")
    print(f"  (c) select / read-and-decompress of what it needs = "
          f"{select['seconds'] / read['seconds']:.2f}x (target <= 1.2); against reading all "
          f"three arrays {select['seconds'] / read_all['seconds']:.2f}x")
    print(f"  (d) small store ({args.small} utterances, {numpy_small['raw'] / 1e9:.1f} GB raw): "
          f"esn {esn_small['seconds']:.1f} s (peak {esn_small['peak'] / 2**30:.2f} GiB) vs "
          f"numpy in memory {numpy_small['seconds']:.1f} s (peak "
          f"{numpy_small['peak'] / 2**30:.2f} GiB): esn/numpy time = "
          f"{esn_small['seconds'] / numpy_small['seconds']:.2f}x")


if __name__ == "__main__":
    main()
