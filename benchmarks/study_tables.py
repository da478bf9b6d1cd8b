"""The results tables of a demo study, in Markdown, from its per-item answers.

    python -m benchmarks.study_tables DEMO_DIR [--model NAME] [--n-boot 1000]

Reads ``DEMO_DIR/results/MODEL/*/answers.csv`` (so a study whose ``results.zarr`` stayed on
the GPU machine can still be summarised) and ``DEMO_DIR/sets/``, and prints, with the
report's own effect tables and stratified paired bootstrap (``esn.pipeline.report.effects``,
95% percentile intervals):

- deactivation per method and fraction: self (mean over emotions of the own-emotion recall
  change), the most negative per-emotion self, cross (mean |off-diagonal change|), and
  random (mean |change| of every emotion's recall under the random masks), all in points;
- steering per method and alpha: self, cross and the share of answers naming the mask's
  emotion;
- the identification-pool sweep and the transfers, as deactivation;
- where each method's sets lie in depth, and how much the emotions' sets overlap.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esn.pipeline.intervene.conditions import BASELINE, RANDOM
from esn.pipeline.report.effects import (
    effect_tables,
    interval,
    resample,
    table_delta,
    table_summary,
    target_share,
)
from esn.pipeline.report.results import ResultsFolder


def read_answers(folder: Path) -> ResultsFolder:
    """A results folder from its ``answers.csv`` and ``summary.json`` alone."""
    answers = pd.read_csv(folder / "answers.csv", keep_default_na=False, dtype={"parsed": str})
    summary = json.loads((folder / "summary.json").read_text())
    conditions = tuple(dict.fromkeys(answers["condition"]))
    base = answers[answers["condition"] == BASELINE]
    items = list(base["item"])
    gold = base.set_index("item")["emotion"].reindex(items).to_numpy(dtype=object)
    parsed = (answers.pivot(index="condition", columns="item", values="parsed")
              .reindex(index=list(conditions), columns=items).to_numpy(dtype=object))
    first = answers.drop_duplicates("condition").set_index("condition").reindex(
        list(conditions))
    context = summary.get("context", {})
    return ResultsFolder(
        path=folder, id=folder.name, name=folder.name, mode=str(summary.get("mode", "")),
        model=str(context.get("model", "")), store=str(context.get("store", "")),
        eval_store=str(context.get("eval_store", "")), labels=tuple(summary["labels"]),
        gold=gold, parsed=parsed, conditions=conditions,
        method=tuple(str(m) for m in first["method"]),
        mask=tuple(str(m) for m in first["mask"]),
        strength=first["strength"].to_numpy(dtype=float), context=context, sets=None,
        checks=())


def effects(r: ResultsFolder, n_boot: int) -> list[dict[str, Any]]:
    """Per (method, strength): self, cross_abs, rnd (signed) and rnd_abs with intervals,
    the most negative per-emotion self, and (steering) the target share."""
    boot = resample(r, n_boot=n_boot, seed=0)
    out = []
    for table in effect_tables(r):
        point = table_delta(boot.point, r.baseline_index, table)
        samples = table_delta(boot.boot, r.baseline_index, table)
        summary, spread = table_summary(point, table), table_summary(samples, table)
        rows = [row for row in table.rows if row in table.columns]
        diag = [point[i, table.columns.index(row)] for i, row in enumerate(rows)]
        worst = int(np.argmin(diag)) if diag else None
        entry: dict[str, Any] = {"method": table.method, "strength": table.strength}
        for key in ("self", "cross_abs", "rnd", "rnd_abs"):
            entry[key] = float(summary[key])
            entry[key + "_ci"] = interval(spread[key])
        if worst is not None:
            entry["worst"] = rows[worst]
            entry["worst_self"] = float(diag[worst])
            entry["worst_ci"] = interval(samples[:, worst, table.columns.index(rows[worst])])
            entry["per_emotion_self"] = dict(zip(rows, (float(d) for d in diag), strict=True))
        if r.mode == "steer":
            conditions = [m[0] for m, row in zip(table.members, table.rows, strict=True)
                          if row in table.columns]
            entry["target_share"] = target_share(r, conditions, rows)
            rnd = [i for i in range(len(r.conditions)) if r.method[i] == RANDOM
                   and r.strength[i] == table.strength]
            entry["rnd_answers"] = {e: 100.0 * float(np.mean([(r.parsed[i] == e).mean()
                                                              for i in rnd]))
                                    for e in rows} if rnd else {}
        out.append(entry)
    return out


def _ci(value: float, ci: Sequence[float] | None) -> str:
    if ci is None:
        return f"{value:+.1f}"
    return f"{value:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]"


def deactivation_table(folders: Sequence[tuple[str, list[dict[str, Any]]]], what: str) -> str:
    lines = [f"| {what} | method | self [95%] | most negative self [95%] | cross | "
             "random |change| [95%] |",
             "|---|---|---|---|---|---|"]
    for name, entries in folders:
        for e in entries:
            lines.append(f"| {name} | {e['method']} | {_ci(e['self'], e['self_ci'])} | "
                         f"{e['worst']} {_ci(e['worst_self'], e['worst_ci'])} | "
                         f"{e['cross_abs']:.1f} | {_ci(e['rnd_abs'], e['rnd_abs_ci'])} |")
    return "\n".join(lines)


def steering_table(entries: Sequence[dict[str, Any]]) -> str:
    lines = ["| alpha | method | self [95%] | cross | answers naming the mask's emotion | "
             "random |change| [95%] |", "|---|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['strength']:g} | {e['method']} | {_ci(e['self'], e['self_ci'])} | "
                     f"{e['cross_abs']:.1f} | {e['target_share']:.1f}% | "
                     f"{_ci(e['rnd_abs'], e['rnd_abs_ci'])} |")
    return "\n".join(lines)


BANDS = ((0, 10), (10, 20), (20, 30))


def layer_table(sets_file: Path) -> str:
    """Per method: the share of every emotion's set in each band of ten layers (min-max over
    emotions), its most frequent layers, and the mean pairwise overlap between emotions."""
    data = json.loads(sets_file.read_text())
    n_layers = int(data["n_layers"])
    bands = [(lo, min(hi, n_layers)) for lo, hi in BANDS if lo < n_layers]
    head = " | ".join(f"layers {lo}-{hi - 1}" for lo, hi in bands)
    lines = [f"| method | {head} | top layers (count over emotions) | overlap between "
             "emotions |", "|---|" + "---|" * (len(bands) + 2)]
    for method, entry in data["methods"].items():
        sets = {e: {tuple(n) for n in v} for e, v in entry["sets"].items()}
        shares = []
        for lo, hi in bands:
            s = [100.0 * sum(lo <= layer < hi for layer, _ in v) / max(len(v), 1)
                 for v in sets.values()]
            shares.append(f"{min(s):.0f}-{max(s):.0f}%")
        counts = np.bincount([layer for v in sets.values() for layer, _ in v],
                             minlength=n_layers)
        top = ", ".join(f"{i} ({counts[i]})" for i in np.argsort(-counts, kind="stable")[:3])
        names = list(sets)
        overlaps = [len(sets[a] & sets[b]) / max(len(sets[a]), 1)
                    for i, a in enumerate(names) for b in names[i + 1:]]
        lines.append(f"| {method} | {' | '.join(shares)} | {top} | "
                     f"{100.0 * float(np.mean(overlaps)):.0f}% |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo")
    parser.add_argument("--model")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--json", help="also write every number here")
    args = parser.parse_args()
    demo = Path(args.demo)
    results = demo / "results"
    model = args.model or sorted(p.name for p in results.iterdir())[0]
    folders = {p.name: p for p in sorted((results / model).iterdir())
               if (p / "answers.csv").exists()}
    numbers = {name: effects(read_answers(p), args.n_boot) for name, p in folders.items()}
    options = json.loads((demo / "demo.json").read_text())["options"]
    print(f"## {model} ({demo})\n")
    print(f"options: fractions {options['fractions']}, main fraction {options['fraction']}, "
          f"alphas {options['alphas']}, random draws {options['random_draws']}, "
          f"span {options.get('span', 'all')}\n")
    sweep = sorted((n for n in numbers if n.startswith("deactivate-f")),
                   key=lambda n: float(n.split("-f")[1]))
    print("### Deactivation\n")
    print(deactivation_table([(f"{float(n.split('-f')[1]) * 100:g}%", numbers[n])
                              for n in sweep], "fraction"))
    pools = [n for n in numbers if n.startswith("deactivate-id")]
    if pools:
        print("\n### Identification pool (items per emotion; the full pool is the main "
              "fraction's row above)\n")
        print(deactivation_table([(n.split("-id")[1], numbers[n]) for n in pools], "pool"))
    transfers = [n for n in numbers if n.startswith("transfer-")]
    if transfers:
        print("\n### Transfer between speaker groups (identified on -> evaluated on)\n")
        print(deactivation_table([(n.removeprefix("transfer-").replace("-to-", " -> "),
                                   numbers[n]) for n in transfers], "groups"))
    if "steer" in numbers:
        print(f"\n### Steering at {options['fraction'] * 100:g}%\n")
        print(steering_table(numbers["steer"]))
    main_sets = demo / "sets" / f"{model}-a-f{options['fraction']:g}.json"
    if main_sets.exists():
        print(f"\n### Where the sets lie ({main_sets.name})\n")
        print(layer_table(main_sets))
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=1) + "\n")


if __name__ == "__main__":
    main()
