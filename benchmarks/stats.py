"""``esn stats`` out of core: peak memory and time against a same-run in-memory baseline.

1. Builds (once; reused if present) a synthetic store on disk: ``--utterances`` utterances x
   ``--layers`` x ``--neurons``, four emotions, eight speakers, uint16 counts.
2. Runs, each in a fresh subprocess (so peak memory is the step's own):
     esn-welch   ``compute_stats`` (each emotion vs the rest, Welch, BH), streamed by Dask;
     esn-rank    the same with the Mann-Whitney test (neuron blocks of every utterance);
     np-welch    numpy baseline: the whole store in RAM, ``scipy.stats.ttest_ind``;
     np-rank     numpy baseline: the whole store in RAM, ``scipy.stats.mannwhitneyu``.
Prints each step's time and peak resident memory, and esn / numpy ratios.

    python benchmarks/stats.py [--dir /tmp/esn-bench-stats] [--utterances 1024]
                               [--layers 8] [--neurons 4096]
"""

from __future__ import annotations

import os
import sys

# This folder holds benchmarks/select.py, named like the standard library's `select`: when a
# script here runs directly, the repository root takes this folder's place on the path.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_here) if os.path.abspath(p or ".") == _here else p
               for p in sys.path]

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._steps import run_step  # noqa: E402
from esn.schemas import ModelInfo, ProbeInfo, StatsBatch, Utterance  # noqa: E402
from esn.stores import ActivationStore  # noqa: E402

CHUNK = 64
LABELS = ("anger", "happy", "neutral", "sad")


def build(path: Path, n: int, layers: int, neurons: int) -> None:
    if (path / "zarr.json").exists():
        store = ActivationStore.open(path)
        if (store.progress().pending == 0 and store.layout.n_layers == layers
                and store.layout.n_neurons == neurons and len(store.utterance_ids()) == n):
            return
    rng = np.random.default_rng(0)
    utterances = [Utterance(id=f"u{i:06d}", corpus="synthetic", path=f"/u{i}.wav",
                            emotion=LABELS[i % 4], raw_label=LABELS[i % 4],
                            speaker=f"s{(i // 4) % 8}") for i in range(n)]
    store = ActivationStore.create(path, utterances=utterances, model=ModelInfo(id="synthetic"),
                                   probe=ProbeInfo(template="{options}"), labels=LABELS,
                                   n_layers=layers, n_neurons=neurons, utterance_chunk=CHUNK,
                                   if_exists="overwrite")
    rate = rng.beta(2.0, 3.0, size=(4, 2, layers, neurons))
    options = np.array([LABELS] * CHUNK, dtype=object)
    for c in range(-(-n // CHUNK)):
        size = min(CHUNK, n - c * CHUNK)
        t = rng.integers(100, 800, size=(size, 2)).astype(np.uint32)
        emo = (np.arange(c * CHUNK, c * CHUNK + size)) % 4
        k = rng.binomial(t[:, :, None, None], rate[emo]).astype(np.uint16)
        store.write_batch(c * CHUNK, StatsBatch.build(
            K=k, T=t, act_sum=(k * 0.4).astype(np.float32), options=options[:size],
            correct=rng.uniform(size=size) < 0.8))
        print(f"\rbuilding {path.name}: chunk {c + 1}/{-(-n // CHUNK)}", end="", file=sys.stderr)
    print(file=sys.stderr)


STEP = r"""
import json, sys, time
import numpy as np, scipy.stats
from esn.pipeline.stats import StatsOptions, compute_stats
from esn.stores import ActivationStore
step, url = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if step.startswith("esn-"):
    compute_stats(url, StatsOptions(test=step[4:]))
else:
    store = ActivationStore.open(url)
    ds = store.to_xarray()
    x = ds.K.values.astype(np.float64).sum(1) / ds.T.values.astype(np.float64).sum(1)[:, None, None]
    e = store.metadata("emotion")
    for lab in ("anger", "happy", "neutral", "sad"):
        a, b = x[e == lab], x[e != lab]
        if step == "np-welch":
            scipy.stats.ttest_ind(a, b, equal_var=False, axis=0)
        else:
            scipy.stats.mannwhitneyu(a, b, method="asymptotic", axis=0)
seconds = time.perf_counter() - t0
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "peak": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=Path("/tmp/esn-bench-stats"))
    parser.add_argument("--utterances", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--neurons", type=int, default=4096)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / "stats.zarr"
    build(path, args.utterances, args.layers, args.neurons)
    raw = args.utterances * 2 * args.layers * args.neurons * (2 + 4) / 1e9
    print(f"store: {args.utterances} utterances x {args.layers} layers x {args.neurons} "
          f"neurons, {raw:.2f} GB raw (K + act_sum)")
    results = {step: run_step(STEP, step, str(path))
               for step in ("esn-welch", "np-welch", "esn-rank", "np-rank")}
    for step, r in results.items():
        print(f"  {step:10s} {r['seconds']:7.2f} s  peak RSS {r['peak'] / 2**30:.2f} GiB")
    for test in ("welch", "rank"):
        e, n = results[f"esn-{test}"], results[f"np-{test}"]
        print(f"  {test}: esn/numpy time = {e['seconds'] / n['seconds']:.2f}x, "
              f"peak memory = {e['peak'] / n['peak']:.2f}x")


if __name__ == "__main__":
    main()
