"""What keeping the activation sums costs and what bfloat16 sums change (``esn extract --sums``).

One corpus (``esn synth``: the organism's training settings, another seed), one model
(default ``esn-organism``, the trained decoder), extracted three times in the same run with
``--sums none``, ``bfloat16`` and ``float32``; then:

- bytes per utterance on disk and extraction rate of each (ratios to float32);
- ``esn stats --measure activation`` (Welch, each emotion vs the rest) on the bfloat16 and
  the float32 store: the largest change of t, of the effect size and of log10 p, how many
  neuron tests change their BH decision at q < 0.05, and the overlap of the top 10% of
  neurons by |t| per emotion;
- ``esn select`` (every method) on the three stores: the sets must be identical, since no
  built-in selector reads the sums.

    python -m benchmarks.sums [--model esn-organism] [--per-cell 6]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.models import LoadOptions
from esn.pipeline.select import SelectOptions, select_neurons
from esn.pipeline.select.pool import PoolOptions
from esn.pipeline.stats.run import StatsOptions, compute_stats
from esn.pipeline.synth import synthesize

CHOICES = ("none", "bfloat16", "float32")


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="esn-organism")
    parser.add_argument("--per-cell", type=int, default=6, help="clips per emotion and speaker")
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="esn-sums-"))
    try:
        synthesize(work / "corpus", per_emotion_per_speaker=args.per_cell,
                   speakers=args.speakers, seed=7, jitter=0.4)
        manifest = work / "corpus" / "manifest.csv"
        rows: dict[str, dict[str, float]] = {}
        for sums in CHOICES:
            out = work / f"{sums}.zarr"
            report = extract(ExtractRequest(
                model=LoadOptions(model_id=args.model), corpus=f"manifest:{manifest}",
                out=str(out), batch_size=args.batch_size, option_order="fixed",
                max_new_tokens=2, sums=sums))
            rows[sums] = {"bytes_per_utterance": store_bytes(out) / report.progress.total,
                          "items_per_s": report.items_per_second}
        n = int(report.progress.total)
        print(f"{args.model}, {n} clips, batch {args.batch_size}")
        print(f"{'--sums':<9} {'bytes/utt':>10} {'vs float32':>10} {'items/s':>8}")
        for sums, row in rows.items():
            ratio = row["bytes_per_utterance"] / rows["float32"]["bytes_per_utterance"]
            print(f"{sums:<9} {row['bytes_per_utterance']:>10.0f} {ratio:>9.2f}x "
                  f"{row['items_per_s']:>8.1f}")

        started = time.perf_counter()
        stats = {s: compute_stats(str(work / f"{s}.zarr"), StatsOptions(measure="activation"))
                 for s in ("bfloat16", "float32")}
        a, b = stats["float32"], stats["bfloat16"]
        finite = np.isfinite(a.t.values) & np.isfinite(b.t.values)
        dt = np.abs(b.t.values - a.t.values)[finite]
        de = np.abs(b.effect.values - a.effect.values)[np.isfinite(a.effect.values)]
        logp = np.abs(np.log10(b.p_value.values) - np.log10(a.p_value.values))[finite]
        flips = int(((a.q_value.values < 0.05) != (b.q_value.values < 0.05)).sum())
        significant = int((a.q_value.values < 0.05).sum())
        overlaps = []
        k = max(10, a.t.values[0].size // 10)
        for g in range(a.sizes["emotion"]):
            top = [set(np.argsort(-np.nan_to_num(np.abs(x.t.values[g])), axis=None)[:k])
                   for x in (a, b)]
            overlaps.append(len(top[0] & top[1]) / k)
        print(f"esn stats --measure activation, bfloat16 against float32 "
              f"({time.perf_counter() - started:.1f} s): {finite.sum()} finite tests; "
              f"max |dt| {dt.max():.2e} (|t| up to {np.abs(a.t.values[finite]).max():.1f}), "
              f"max |d effect| {de.max():.2e}, max |d log10 p| {logp.max():.2e}; "
              f"{flips} of {a.q_value.size} BH decisions at q<0.05 change "
              f"({significant} significant in float32); top-{k} |t| (10%) overlap per emotion "
              f"{', '.join(f'{o:.3f}' for o in overlaps)}")

        sets = {}
        for s in CHOICES:
            chosen, _ = select_neurons(str(work / f"{s}.zarr"),
                                       SelectOptions(pool=PoolOptions(split="all")))
            sets[s] = json.dumps({k: v for k, v in chosen.to_dict().items()
                                  if k not in ("store", "created")}, sort_keys=True)
        same = sets["none"] == sets["bfloat16"] == sets["float32"]
        print(f"esn select (every method): the sets of the three stores are "
              f"{'identical' if same else 'DIFFERENT'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
