"""`esn select` end to end, the neuron-set file's round trip, and the views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from esn.cli import main
from esn.errors import SchemaError
from esn.pipeline.select import (
    PoolOptions,
    SelectOptions,
    emotion_overlap,
    layer_counts,
    method_overlap,
    select_neurons,
)
from esn.stores.neuron_sets import read_neuron_sets, write_neuron_sets


def test_cli_writes_a_valid_file_and_summarises(small_store: dict, tmp_path: Path) -> None:
    out = tmp_path / "sets.json"
    args = ["select", "--store", small_store["url"], "--method", "all", "--fraction", "0.05",
            "--split", "train", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "mad" in result.stdout and "wrote" in result.stdout
    data = json.loads(out.read_text())
    assert data["format"] == "esn-neuron-sets" and data["schema_version"] == 1
    assert set(data["methods"]) == {"lap", "lape", "mad", "conact", "rnd"}
    assert data["pool"]["options"]["split"] == "train"
    assert len(data["methods"]["rnd"]["draws"]) == 5
    sets = read_neuron_sets(out)
    assert sets.budget == round(0.05 * 3 * 40)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    summary = CliRunner().invoke(main, ["select", "--sets", str(out), "--summary"])
    assert summary.exit_code == 0 and "neurons per layer" in summary.stdout
    assert "Jaccard" in summary.stdout


def test_cli_errors_are_clear(small_store: dict, tmp_path: Path) -> None:
    run = lambda *a: CliRunner().invoke(main, ["select", *a])  # noqa: E731
    result = run("--store", small_store["url"], "--method", "nope", "--out", str(tmp_path / "x"))
    assert result.exit_code == 1 and "unknown method" in result.stderr
    result = run("--store", small_store["url"], "--emotions", "anger,joyless",
                 "--out", str(tmp_path / "x"))
    assert result.exit_code == 1 and "joyless" in result.stderr
    result = run("--store", str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "x"))
    assert result.exit_code == 1 and "no activation store" in result.stderr


def test_file_round_trip_and_views(small_store: dict, tmp_path: Path) -> None:
    sets, _ = select_neurons(small_store["url"], SelectOptions(
        fraction=0.1, pool=PoolOptions(split="train")))
    write_neuron_sets(tmp_path / "s.json", sets)
    assert read_neuron_sets(tmp_path / "s.json") == sets
    counts = layer_counts(sets)
    for name, method in sets.methods.items():
        for emotion, pairs in method.sets.items():
            assert sum(counts[name][emotion]) == len(pairs)
            assert counts[name][emotion][0] == sum(1 for p in pairs if p[0] == 0)
    overlap = method_overlap(sets)
    assert all(0 <= v <= 1 for pairs in overlap.values() for v in pairs.values())
    same = emotion_overlap(sets)["lap"]
    a, b = sets.methods["lap"].sets["anger"], sets.methods["lap"].sets["happy"]
    assert same[("anger", "happy")] == len(set(a) & set(b)) / len(set(a) | set(b))


def test_bad_files_are_refused(tmp_path: Path, small_store: dict) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SchemaError, match="not JSON"):
        read_neuron_sets(bad)
    sets, _ = select_neurons(small_store["url"], SelectOptions(
        methods=("lap",), fraction=0.1, pool=PoolOptions(split="train")))
    data = sets.to_dict()
    data["methods"]["lap"]["sets"]["anger"][0] = [99, 0]
    bad.write_text(json.dumps(data))
    with pytest.raises(SchemaError, match="outside"):
        read_neuron_sets(bad)
    data = sets.to_dict()
    data["schema_version"] = 7
    bad.write_text(json.dumps(data))
    with pytest.raises(SchemaError, match="version 7"):
        read_neuron_sets(bad)
