"""Extraction on a local Dask cluster against one process, on the same clips in one run.

    python -m benchmarks.sharded [--model esn-organism] [--items 256] [--workers 1 2]
                                 [--utterance-chunk 16] [--batch-size 8]

Writes the same store (``--checkpoint-layers 0``, ``--sums float32``) with
``esn.pipeline.extract.extract`` in this process, then with ``extract_sharded`` on a local
cluster of each ``--workers`` size, and prints clips/s, the ratio to the single process
(wall clock, cluster start and each worker's model load included: what a user waits for),
the rate over the chunk work alone (first to last task), each worker's peak resident
memory (the process's ``ru_maxrss``), the single process's peak for comparison, and
whether each store equals the single-process one array by array.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from benchmarks._corpus import write_corpus
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.extract.sharded import ClusterOptions, extract_sharded
from esn.pipeline.models import LoadOptions
from esn.stores.integrity import store_arrays


def same_store(a: Path, b: Path) -> bool:
    """Do the two stores hold the same arrays, dtypes and values (checkpoints included)?"""
    x, y = ({path: node for path, node in store_arrays(zarr.open_group(str(p), mode="r"))}
            for p in (a, b))
    return sorted(x) == sorted(y) and all(
        x[k].dtype == y[k].dtype and x[k].shape == y[k].shape
        and x[k][...].tolist() == y[k][...].tolist() for k in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="esn-organism")
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--utterance-chunk", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "corpus").mkdir()
        manifest = write_corpus(root / "corpus", args.items, np.random.default_rng(0))

        def request(out: Path) -> ExtractRequest:
            return ExtractRequest(model=LoadOptions(model_id=args.model),
                                  corpus=f"manifest:{manifest}", out=str(out),
                                  batch_size=args.batch_size, checkpoint_layers=(0,),
                                  sums="float32", utterance_chunk=args.utterance_chunk,
                                  option_order="fixed", max_new_tokens=2)

        single = root / "single.zarr"
        t0 = time.perf_counter()
        report = extract(request(single))
        base = time.perf_counter() - t0
        rows = [{"run": "one process", "seconds": base, "clips_per_s": report.processed / base,
                 "ratio": 1.0, "busy_clips_per_s": report.items_per_second,
                 "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 "identical": True}]
        for n in args.workers:
            out = root / f"workers-{n}.zarr"
            t0 = time.perf_counter()
            sharded = extract_sharded(request(out), ClusterOptions(workers=n))
            seconds = time.perf_counter() - t0
            busy = max(w["busy_s"] for w in sharded.workers.values())
            rows.append({"run": f"{n} worker(s)", "seconds": seconds,
                         "clips_per_s": sharded.processed / seconds, "ratio": base / seconds,
                         "busy_clips_per_s": sharded.processed / busy,
                         "peak_mib": max(w["peak_mib"] for w in sharded.workers.values()),
                         "identical": same_store(single, out)})
    print(f"{args.model}, {args.items} clips of 1-3 s, chunks of {args.utterance_chunk}, "
          f"batch {args.batch_size}")
    print(f"{'run':<13} {'s':>7} {'clips/s':>8} {'vs one':>7} {'busy clips/s':>13} "
          f"{'peak MiB':>9}  identical")
    for r in rows:
        print(f"{r['run']:<13} {r['seconds']:7.1f} {r['clips_per_s']:8.2f} "
              f"{r['ratio']:6.2f}x {r['busy_clips_per_s']:13.2f} {r['peak_mib']:9.0f}  "
              f"{r['identical']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
