"""Extraction speed as a ratio to the same model's plain forward and plain generate.

All three run on the same batches of the same clips in this one process:
  forward   the prefill alone (``model(**inputs)``), no hooks: the floor;
  generate  greedy generation of the answers (what the probe must do anyway), no hooks;
  extract   ``esn.pipeline.extract.extract_into``: audio decoding on worker threads, batch
            building, generation with the statistics hooks armed for the prefill, answer
            parsing and the background writer (a real store on local disk).
Batch building (processor) is timed inside forward and generate too, so the ratios show
what the statistics, the store and the bookkeeping add.

    python benchmarks/extract.py [--model tiny-qwen2_5_omni] [--items 64] [--batch-size 8]
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
import torch  # noqa: E402

from benchmarks._corpus import write_corpus  # noqa: E402
from esn.pipeline.audio import load_audio  # noqa: E402
from esn.pipeline.extract.run import ExtractRequest, extract_into, select_utterances  # noqa: E402
from esn.pipeline.models import LoadOptions, load_adapter  # noqa: E402
from esn.pipeline.probe import Probe  # noqa: E402
from esn.stores import ActivationStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny-qwen2_5_omni")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_corpus(Path(tmp), args.items, rng)
        request = ExtractRequest(model=LoadOptions(model_id=args.model),
                                 corpus=f"manifest:{manifest}", out=f"{tmp}/s.zarr",
                                 batch_size=args.batch_size, utterance_chunk=args.batch_size * 4)
        utterances, labels = select_utterances(request)
        adapter = load_adapter(request.model)
        probe = Probe(labels=labels)
        audios = [load_audio(u.path, adapter.sample_rate) for u in utterances]
        prompts = [probe.prompt(probe.options_for(u.id)) for u in utterances]
        spans = [slice(i, i + args.batch_size) for i in range(0, len(audios), args.batch_size)]

        def forward() -> None:
            with torch.inference_mode():
                for sl in spans:
                    adapter.model(**adapter.build_batch(audios[sl], prompts[sl]).inputs)

        def generate() -> None:
            with torch.inference_mode():
                for sl in spans:
                    adapter.generate(adapter.build_batch(audios[sl], prompts[sl]),
                                     probe.max_new_tokens)

        def extract() -> None:
            store = ActivationStore.create(
                request.out, utterances=utterances, model=adapter.info, probe=probe.info,
                labels=labels, n_layers=adapter.n_layers, n_neurons=adapter.n_neurons,
                utterance_chunk=request.utterance_chunk, if_exists="overwrite")
            extract_into(store, adapter, utterances, probe, batch_size=args.batch_size)

        runs = {"forward": forward, "generate": generate, "extract": extract}
        for run in runs.values():
            run()  # warm-up
        # Round robin, best of each: a busy neighbour on the machine hits all three alike.
        timings = {name: float("inf") for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                timings[name] = min(timings[name], _timed(run))
    n = len(utterances)
    print(f"{args.model}: {n} clips of 1-3 s, batch {args.batch_size}, CPU, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}")
    for name, seconds in timings.items():
        print(f"  {name:9s} {n / seconds:8.1f} clips/s  ({seconds:.2f} s)")
    print(f"  extract / generate = {timings['generate'] / timings['extract']:.2f} "
          f"(rate ratio; 1.00 = no overhead)")
    print(f"  extract / forward  = {timings['forward'] / timings['extract']:.2f}")


def _timed(run) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
