"""The sweep end to end: test items, results folder, and a summary that an independent
computation from the tidy CSV reproduces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from esn.errors import RequestError
from esn.pipeline.intervene.run import InterveneRequest, intervene


def test_sweep_writes_results_that_recompute(prepared, tmp_path: Path) -> None:
    store, sets = prepared
    folder = intervene(InterveneRequest(store=str(store), sets=str(sets),
                                        out=str(tmp_path / "res"), mode="steer",
                                        strengths=(4.0,), methods=("mad", "conact"),
                                        n_boot=50))
    ds = xr.open_zarr(folder / "results.zarr", consolidated=False)
    answers = pd.read_csv(folder / "answers.csv", keep_default_na=False)
    summary = json.loads((folder / "summary.json").read_text())
    pool = set(json.loads(sets.read_text())["pool"]["item_ids"]["anger"])
    assert not pool & set(ds.item.values.tolist())  # test items are held out
    assert len(answers) == ds.sizes["condition"] * ds.sizes["item"]
    labels = summary["labels"]
    for table in summary["tables"]:
        base = answers[answers.condition == "baseline"]
        for r, row in enumerate(table["rows"]):
            if row == "rnd":
                part = answers[answers.condition.str.startswith("rnd/")]
            else:
                part = answers[answers.condition == f"{table['method']}/{row}/4"]
            for c, emotion in enumerate(labels):
                draws = [recall(g, emotion) for _, g in part.groupby("condition")]
                expected = 100 * (np.mean(draws) - recall(base, emotion))
                assert table["delta"][r][c] == pytest.approx(expected)
        assert len(table["self"]) == len(table["rows"])
    context, ids = summary["context"], json.loads(sets.read_text())
    assert json.loads((folder / "neuron_sets.json").read_text())["methods"] == ids["methods"]
    assert context["fraction"] == ids["fraction"] and context["budget"] == ids["budget"]
    assert context["pool_per_emotion"] == {e: len(v) for e, v in ids["pool"]["item_ids"].items()}
    assert context["test_per_emotion"] == {
        e: int((ds.emotion.values == e).sum()) for e in labels}
    assert context["mode"] == "steer" and not context["transfer"]


def recall(frame: pd.DataFrame, emotion: str) -> float:
    mine = frame[frame.emotion == emotion]
    return float((mine.parsed == emotion).mean())


def test_overlap_with_the_pool_is_refused(prepared, tmp_path: Path) -> None:
    store, sets = prepared
    with pytest.raises(RequestError, match="identification pool"):
        intervene(InterveneRequest(store=str(store), sets=str(sets), split="all",
                                   out=str(tmp_path / "res"), mode="steer"))


def test_cli_prints_the_self_cross_table(prepared, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from esn.cli import main

    store, sets = prepared
    args = ["intervene", "--store", str(store), "--sets", str(sets), "--mode", "deactivate",
            "--method", "mad", "--random-draws", "1", "--bootstrap", "20",
            "--out", str(tmp_path / "cli")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "mad at 0.05" in result.stdout and "gap" in result.stdout
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "overwrite" in again.stderr
    wrong = CliRunner().invoke(main, [*args[:-2], "--alpha", "1", "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 2 and "--alpha is for" in wrong.stderr


def test_summary_flag_reads_an_existing_folder(prepared, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from esn.cli import main

    store, sets = prepared
    intervene(InterveneRequest(store=str(store), sets=str(sets), out=str(tmp_path / "res"),
                               mode="steer", methods=("lap",), n_boot=20))
    shown = CliRunner().invoke(main, ["intervene", "--summary", "--out", str(tmp_path / "res")])
    assert shown.exit_code == 0 and "lap at 0.5" in shown.stdout
    missing = CliRunner().invoke(main, ["intervene", "--summary", "--out", str(tmp_path)])
    assert missing.exit_code == 1 and "no intervention results" in missing.stderr


def test_transfer_to_another_store_of_the_same_model(prepared, manifest: Path,
                                                     tmp_path: Path) -> None:
    import shutil

    from esn.pipeline.extract import ExtractRequest, extract
    from esn.pipeline.models import LoadOptions

    store, sets = prepared
    other = tmp_path / "other"
    shutil.copytree(manifest.parent, other)
    rows = (other / "manifest.csv").read_text().splitlines()
    for path in other.glob("*.wav"):  # other corpus: other file names, so other ids
        path.rename(other / f"b_{path.name}")
    (other / "manifest.csv").write_text("\n".join(
        [rows[0], *[f"b_{r}" for r in rows[1:]]]) + "\n")
    extract(ExtractRequest(model=LoadOptions(model_id="tiny-qwen2_5_omni"),
                           corpus=f"manifest:{other / 'manifest.csv'}",
                           out=str(tmp_path / "b.zarr"), batch_size=4, utterance_chunk=4))
    folder = intervene(InterveneRequest(store=str(store), sets=str(sets),
                                        eval_store=str(tmp_path / "b.zarr"), split="all",
                                        out=str(tmp_path / "res"), mode="steer",
                                        methods=("mad",), n_boot=20))
    ds = xr.open_zarr(folder / "results.zarr", consolidated=False)
    assert all(str(i).startswith("b_") for i in ds.item.values)
    assert (ds.engine.values == "full").all()  # the other store has no checkpoints
    context = json.loads((folder / "summary.json").read_text())["context"]
    assert context["transfer"] and context["eval_store"] == str(tmp_path / "b.zarr")
    with pytest.raises(RequestError, match="not selected from"):
        intervene(InterveneRequest(store=str(tmp_path / "b.zarr"), sets=str(sets),
                                   out=str(tmp_path / "x"), mode="steer"))


def test_label_agnostic_union_and_two_pass(prepared, tmp_path: Path) -> None:
    from esn.pipeline.intervene.label_agnostic import (
        mix_conditions,
        option_probabilities,
        two_pass_conditions,
    )
    from esn.pipeline.models import LoadOptions, load_adapter
    from esn.stores import ActivationStore
    from esn.stores.neuron_sets import read_neuron_sets

    store, sets_path = prepared
    sets = read_neuron_sets(sets_path)
    predicted = ["anger", "", "sad", "happy"]
    (cond,) = two_pass_conditions(sets, predicted, strengths=(2.0,), methods=("mad",))
    assert cond.per_item is not None and cond.per_item[1] is None
    assert cond.per_item[2].neurons == sets.methods["mad"].sets["sad"]
    assert cond.first_layer == min(p[0] for i in (0, 2, 3)
                                   for p in sets.methods["mad"].sets[predicted[i]])
    labels = sets.emotions
    weights = np.zeros((2, len(labels)))
    weights[0, labels.index("anger")], weights[0, labels.index("sad")] = 0.25, 0.75
    weights[1, labels.index("happy")] = 1.0
    (mixed,) = mix_conditions(sets, weights, labels, strengths=(2.0,), methods=("mad",))
    assert mixed.per_item is not None
    first = mixed.per_item[0]
    expected: dict = {}
    for emotion, w in (("anger", 0.25), ("sad", 0.75)):
        for pair in sets.methods["mad"].sets[emotion]:
            expected[pair] = expected.get(pair, 0.0) + 2.0 * w
    for emotion in set(labels) - {"anger", "sad"}:
        for pair in sets.methods["mad"].sets[emotion]:
            expected.setdefault(pair, 0.0)
    assert dict(zip(first.neurons, first.alphas, strict=True)) == pytest.approx(expected)
    store_obj = ActivationStore.open(store)
    probs = option_probabilities(load_adapter(LoadOptions(model_id="tiny-qwen2_5_omni")),
                                 store_obj, [0, 1, 2], temperature=2.0)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    folder = intervene(InterveneRequest(store=str(store), sets=str(sets_path),
                                        out=str(tmp_path / "res"), mode="steer",
                                        methods=("mad",),
                                        label_agnostic=("union", "2pass", "mix"), n_boot=20))
    summary = json.loads((folder / "summary.json").read_text())
    names = [row["condition"] for row in summary["label_agnostic"]]
    assert names == ["mad/union/0.5", "mad/2pass/0.5", "mad/mix/0.5"]
    answers = pd.read_csv(folder / "answers.csv", keep_default_na=False)
    assert set(answers.condition) >= set(names)
    with pytest.raises(RequestError, match="steer only"):
        intervene(InterveneRequest(store=str(store), sets=str(sets_path), mode="deactivate",
                                   out=str(tmp_path / "x"), label_agnostic=("union",)))
