"""Choose the activation store's codecs by measurement: ratio and write/read speed per codec.

Data: statistics shaped like one real store chunk of a 7B model layer
(32 utterances x 2 spans x 18944 neurons), K ~ Binomial(T, p_neuron) with
per-neuron firing rates p ~ Beta(2, 3), audio span T in [75, 750] and text span
T in [40, 120] positions, activation sums ~ K * 0.4 + N(0, 0.2 sqrt(T)).
Baseline: the same chunk stored uncompressed, measured in the same run.

    python benchmarks/store_codecs.py [--layers 4]
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

import numpy as np  # noqa: E402
import zarr  # noqa: E402
from zarr.codecs import BloscCodec, ZstdCodec  # noqa: E402


def synthetic_chunk(rng: np.random.Generator, n_utt: int, n_neurons: int, n_layers: int):
    t = np.stack([rng.integers(75, 751, n_utt), rng.integers(40, 121, n_utt)], axis=1)
    p = rng.beta(2.0, 3.0, size=(1, 1, n_layers, n_neurons))
    k = rng.binomial(t[:, :, None, None], p).astype(np.uint32)
    s = k * 0.4 + rng.normal(0, 0.2, k.shape) * np.sqrt(t[:, :, None, None])
    return k, s.astype(np.float32)


def measure(data: np.ndarray, codec, chunks, repeats: int = 3) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        arr = zarr.create_array(
            tmp, shape=data.shape, chunks=chunks, dtype=data.dtype,
            compressors=None if codec is None else [codec], fill_value=0,
        )
        t0 = time.perf_counter()
        for _ in range(repeats):
            arr[...] = data
        t_write = (time.perf_counter() - t0) / repeats
        t0 = time.perf_counter()
        for _ in range(repeats):
            arr[...]
        t_read = (time.perf_counter() - t0) / repeats
        ratio = data.nbytes / arr.nbytes_stored()
    mb = data.nbytes / 1e6
    return ratio, mb / t_write, mb / t_read


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--utterances", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    k, s = synthetic_chunk(rng, args.utterances, 18944, args.layers)
    chunks = (args.utterances, 2, 1, 18944)
    candidates = {
        "none (baseline)": None,
        "zstd-1": ZstdCodec(level=1),
        "zstd-3": ZstdCodec(level=3),
        "blosc-zstd-1-shuffle": BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
        "blosc-zstd-1-bitshuffle": BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle"),
        "blosc-zstd-3-bitshuffle": BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),
        "blosc-zstd-5-bitshuffle": BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"),
        "blosc-lz4-5-bitshuffle": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
    }
    print(f"chunk {chunks}, {args.layers} layers; ratio = raw/stored, speeds in MB/s of raw data")
    for label, data in [("K uint16", k.astype(np.uint16)), ("K uint32", k), ("act_sum f32", s)]:
        print(f"\n{label}: {data.nbytes / 1e6:.1f} MB raw")
        print(f"  {'codec':26s} {'ratio':>6s} {'write':>8s} {'read':>8s}")
        for name, codec in candidates.items():
            ratio, w, r = measure(data, codec, chunks)
            print(f"  {name:26s} {ratio:6.2f} {w:8.0f} {r:8.0f}")


if __name__ == "__main__":
    main()
