"""Choose the utterance chunk size by measurement: write time, and a Dask reduction's read rate.

For each chunk size, writes the same synthetic statistics (see store_codecs.py) for
``--utterances`` utterances x ``--layers`` layers x 18944 neurons through
``ActivationStore.write_batch``, then times the selection-style reduction
``K.sum(span).groupby(emotion).sum(utterance)`` on the default threaded scheduler.
The baseline is the smallest chunk size, measured in the same run.

    python benchmarks/store_chunks.py [--utterances 512] [--layers 4]
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
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import esn  # noqa: E402
from esn.schemas import ModelInfo, ProbeInfo, StatsBatch, Utterance  # noqa: E402
from esn.stores import ActivationStore  # noqa: E402

LABELS = ("anger", "happy", "neutral", "sad")


def synthetic_batch(rng: np.random.Generator, n: int, n_layers: int, n_neurons: int) -> StatsBatch:
    t = np.stack([rng.integers(75, 751, n), rng.integers(40, 121, n)], axis=1).astype(np.uint32)
    p = rng.beta(2.0, 3.0, size=(1, 1, n_layers, n_neurons))
    k = rng.binomial(t[:, :, None, None], p)
    s = (k * 0.4 + rng.normal(0, 0.2, k.shape) * np.sqrt(t[:, :, None, None])).astype(np.float32)
    options = np.array([LABELS] * n, dtype=object)
    return StatsBatch.build(K=k.astype(np.uint16), T=t, act_sum=s, options=options)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--chunks", default="16,32,64,128")
    args = parser.parse_args()
    n, n_layers, n_neurons = args.utterances, args.layers, 18944
    rng = np.random.default_rng(0)
    batch = synthetic_batch(rng, n, n_layers, n_neurons)
    utterances = [Utterance(id=f"u{i}", corpus="synthetic", path=f"/u{i}.wav",
                            emotion=LABELS[i % 4], raw_label=LABELS[i % 4]) for i in range(n)]
    raw_mb = (batch.K.nbytes + batch.act_sum.nbytes) / 1e6
    print(f"{n} utterances x {n_layers} layers x {n_neurons} neurons; {raw_mb:.0f} MB raw")
    print(f"{'chunk':>6} {'write s':>8} {'reduce s':>9} {'read MB/s':>10} {'vs baseline':>12}")
    baseline = None
    for chunk in (int(c) for c in args.chunks.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            url = Path(tmp) / "s.zarr"
            store = ActivationStore.create(
                url, utterances=utterances, model=ModelInfo(id="synthetic"),
                probe=ProbeInfo(template="t"), labels=LABELS, n_layers=n_layers,
                n_neurons=n_neurons, utterance_chunk=chunk,
            )
            t0 = time.perf_counter()
            store.write_batch(0, batch)
            t_write = time.perf_counter() - t0
            ds = esn.open_store(url)
            t0 = time.perf_counter()
            ds.K.sum("span").groupby("emotion").sum("utterance").compute()
            t_reduce = time.perf_counter() - t0
        k_mb = batch.K.nbytes / 1e6
        baseline = baseline or t_reduce
        print(f"{chunk:6d} {t_write:8.2f} {t_reduce:9.2f} {k_mb / t_reduce:10.0f} "
              f"{baseline / t_reduce:11.2f}x")


if __name__ == "__main__":
    main()
