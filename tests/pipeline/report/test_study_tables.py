"""benchmarks/study_tables.py on real results folders: the answers.csv reading equals the
results.zarr reading, and its self / cross / random effects and intervals are the report's
(whose own tests recompute them independently), steering's target share included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.study_tables import effects, layer_table, read_answers
from esn.pipeline.report import build_report
from esn.pipeline.report.results import read_results

N_BOOT = 1000  # study_tables' default; effects() always draws with seed 0


@pytest.mark.parametrize("name", ["deact", "steer", "a_to_b"])
def test_answers_csv_reads_as_the_zarr_does(chain: dict[str, Path], name: str) -> None:
    from_csv, from_zarr = read_answers(chain[name]), read_results(chain[name])
    assert from_csv.conditions == from_zarr.conditions
    assert list(from_csv.gold) == list(from_zarr.gold)
    assert from_csv.parsed.tolist() == from_zarr.parsed.tolist()
    assert from_csv.method == from_zarr.method and from_csv.mask == from_zarr.mask
    np.testing.assert_array_equal(from_csv.strength, from_zarr.strength)
    assert from_csv.store == from_zarr.store and from_csv.eval_store == from_zarr.eval_store


def test_effects_are_the_reports(chain: dict[str, Path], tmp_path: Path) -> None:
    names = ["deact", "deact_big", "steer"]
    build_report([chain[n] for n in names], tmp_path / "report", title="t", n_boot=N_BOOT,
                 seed=0)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    by_id = {r["id"]: Path(r["path"]).name for r in summary["results"]}
    ours = {n: effects(read_answers(chain[n]), N_BOOT) for n in names}
    compared = 0
    for study in summary["studies"]:
        for bar in study["bars"]:
            if bar["method"] == "rnd":
                continue  # the random sets are every table's random row, not a method
            entry = next(e for e in ours[by_id[bar["results"]]]
                         if e["method"] == bar["method"]
                         and np.isclose(e["strength"], bar["strength"]))
            assert entry["self"] == pytest.approx(bar["self"])
            assert entry["self_ci"] == pytest.approx(bar["self_ci"])
            compared += 1
        for verdict in study["verdicts"]:
            entry = next(e for e in ours[by_id[verdict["results"]]]
                         if e["method"] == verdict["method"])
            assert entry["cross_abs"] == pytest.approx(verdict["cross"])
            assert entry["rnd_abs"] == pytest.approx(verdict["rnd"])
            assert entry["rnd_abs_ci"] == pytest.approx(verdict["rnd_ci"])
            compared += 1
    assert compared >= 4
    steer = read_answers(chain["steer"])
    for entry in ours["steer"]:
        # The share of all answers naming the mask's emotion, counted here by hand.
        rows = [i for i, (m, s) in enumerate(zip(steer.method, steer.strength, strict=True))
                if m == entry["method"] and s == entry["strength"]]
        shares = [np.mean(steer.parsed[i] == steer.mask[i]) for i in rows]
        assert entry["target_share"] == pytest.approx(100 * np.mean(shares))


def test_layer_table_counts_the_sets(tmp_path: Path) -> None:
    sets = {"format": "esn-neuron-sets", "n_layers": 12, "n_neurons": 4,
            "methods": {"mad": {"sets": {"a": [[0, 1], [11, 2], [11, 3], [5, 0]],
                                         "b": [[11, 1], [11, 2], [10, 0], [10, 1]]}}}}
    path = tmp_path / "sets.json"
    path.write_text(json.dumps(sets))
    row = layer_table(path).splitlines()[-1]
    # a's layers 0, 11, 11, 5: 50% in 0-9 and 50% in 10-11; b's: 0% and 100%; layer 11
    # holds 4, layer 10 two; the sets share (11, 2): 25%.
    assert row == "| mad | 0-50% | 50-100% | 11 (4), 10 (2), 0 (1) | 25% |"
