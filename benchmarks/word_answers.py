"""Answers that open with a word, decided by decoding on from the layer-0 checkpoint vs by
full generation: the pretrained organism answers "sad, 4", so no first token decides.

On ``esn-whisper-smollm2`` (CPU unless ``--device``), a store of ``--items`` synthetic clips
(layer-0 checkpoint, two new tokens, the study's random option order) and ``--conditions``
deactivation conditions (random neurons, 1% of all) plus the baseline: the time for
``answer_items`` with ``engine="full"`` (decode the audio, run the audio tower and generate
with the intervention) and with ``engine="auto"`` (decode on from the stored hidden states
with a KV cache), in this run, on the same pairs; the parsed answers must agree.

    python -m benchmarks.word_answers [--items 12] [--conditions 4]
"""

from __future__ import annotations

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_here) if os.path.abspath(p or ".") == _here else p
               for p in sys.path]

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from esn.pipeline.extract import ExtractRequest, extract  # noqa: E402
from esn.pipeline.intervene import Intervention  # noqa: E402
from esn.pipeline.intervene.conditions import Condition  # noqa: E402
from esn.pipeline.intervene.engine import answer_items  # noqa: E402
from esn.pipeline.models import LoadOptions, load_adapter  # noqa: E402
from esn.pipeline.synth import synthesize  # noqa: E402
from esn.stores import ActivationStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--conditions", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    options = LoadOptions(model_id="esn-whisper-smollm2", device=args.device)
    adapter = load_adapter(options)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = synthesize(Path(tmp) / "corpus", per_emotion_per_speaker=-(-args.items // 10),
                              speakers=2, seed=7, jitter=0.4)
        store_path = Path(tmp) / "s.zarr"
        extract(ExtractRequest(model=options, corpus=f"manifest:{manifest}",
                               out=str(store_path), checkpoint_layers=(0,),
                               option_order="random", max_new_tokens=2, batch_size=8),
                adapter=adapter)
        store = ActivationStore.open(store_path)
        items = list(range(store.layout.n_utterances))
        rng = np.random.default_rng(0)
        layers, neurons = adapter.n_layers, adapter.n_neurons
        size = round(0.01 * layers * neurons)
        conditions = [Condition("baseline", "", 0.0, 0, None)] + [
            Condition(f"rnd{k}", "rnd", 0.01, k, Intervention.deactivate(tuple(
                (int(i) // neurons, int(i) % neurons)
                for i in rng.choice(layers * neurons, size, replace=False))))
            for k in range(args.conditions)]
        pairs = len(conditions) * len(items)
        timed = {}
        for engine in ("full", "auto"):
            started = time.perf_counter()
            timed[engine] = (answer_items(adapter, store, items, conditions, engine=engine,
                                          batch_size=8), time.perf_counter() - started)
        full, auto = timed["full"][0], timed["auto"][0]
        assert (full.parsed == auto.parsed).all(), "the engines disagree"
        assert (auto.engine == "replay").all()
        for engine, (_, seconds) in timed.items():
            print(f"{engine:5s} {pairs} pairs in {seconds:6.1f} s = {pairs / seconds:6.1f} "
                  "pairs/s")
        print(f"decode-on replay is {timed['full'][1] / timed['auto'][1]:.1f}x full generation; "
              f"answers agree on all {pairs} pairs "
              f"(e.g. {auto.raw[0, 0]!r} -> {auto.parsed[0, 0]!r})")


if __name__ == "__main__":
    main()
