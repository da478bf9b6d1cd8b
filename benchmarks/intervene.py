"""Replay vs full forward: time to the first-token logits of many conditions.

On a tiny model (CPU), a store of ``--items`` clips with checkpoints at every layer, and
``--conditions`` steering conditions whose masks start at layer c: for each c, the time
to obtain every (condition, item) first-token logits by
  full    rebuilding the batch from audio + prompt and running the whole model
          (audio encoder included) with the intervention;
  replay  rerunning layers c..N-1 from the stored states entering layer c.
Both in this run, on the same items; the logits agree (max difference printed).

    python -m benchmarks.intervene [--model tiny-qwen2_5_omni] [--items 32]
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
from esn.pipeline.extract import ExtractRequest, extract  # noqa: E402
from esn.pipeline.intervene import Intervention, intervention_hooks  # noqa: E402
from esn.pipeline.intervene.replay import ReplayInputs, replay_first_logits  # noqa: E402
from esn.pipeline.models import LoadOptions, load_adapter  # noqa: E402
from esn.pipeline.probe import Probe  # noqa: E402
from esn.stores import ActivationStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny-qwen2_5_omni")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--conditions", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_corpus(Path(tmp), args.items, rng, noise=0.0)
        adapter = load_adapter(LoadOptions(model_id=args.model))
        layers = tuple(range(adapter.n_layers))
        extract(ExtractRequest(model=LoadOptions(model_id=args.model),
                               corpus=f"manifest:{manifest}", out=f"{tmp}/s.zarr",
                               batch_size=args.batch_size, utterance_chunk=args.items,
                               checkpoint_layers=layers), adapter=adapter)
        store = ActivationStore.open(f"{tmp}/s.zarr")
        saved = store.read_checkpoints(0)
        probe = Probe.from_info(store.attributes.probe, store.attributes.labels)
        audios = [load_audio(str(p)) for p in store.metadata("path")]
        prompts = [probe.prompt(tuple(o)) for o in store.metadata("options")]
        print(f"{args.model}: {args.items} clips of 1-3 s x {args.conditions} conditions, "
              f"batch {args.batch_size}, CPU, {torch.get_num_threads()} threads")
        print(f"  {'from layer':>10} {'full s':>8} {'replay s':>9} {'speed-up':>9} {'max |d|':>9}")
        for c in layers:
            conditions = [Intervention.steer(
                [(int(layer), int(n)) for layer, n in zip(
                    rng.integers(c, adapter.n_layers, 5), rng.integers(0, adapter.n_neurons, 5),
                    strict=True)], 2.0) for _ in range(args.conditions)]
            t0 = time.perf_counter()
            full = []
            with torch.inference_mode():
                for cond in conditions:
                    with intervention_hooks(adapter, cond):
                        for s in range(0, args.items, args.batch_size):
                            batch = adapter.build_batch(audios[s:s + args.batch_size],
                                                        prompts[s:s + args.batch_size])
                            full.append(adapter.model(**batch.inputs).logits[:, -1].float())
            t_full = time.perf_counter() - t0
            t0 = time.perf_counter()
            replayed = []
            for cond in conditions:
                for s in range(0, args.items, args.batch_size):
                    inputs = ReplayInputs.from_checkpoints(
                        saved, layers, c, range(s, min(s + args.batch_size, args.items)))
                    replayed.append(replay_first_logits(adapter, inputs, cond))
            t_replay = time.perf_counter() - t0
            diff = max(float((a - b).abs().max()) for a, b in zip(full, replayed, strict=True))
            print(f"  {c:>10} {t_full:8.2f} {t_replay:9.2f} {t_full / t_replay:8.2f}x "
                  f"{diff:9.1e}")


if __name__ == "__main__":
    main()
