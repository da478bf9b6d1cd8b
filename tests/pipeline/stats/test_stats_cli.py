"""``esn stats`` from the command line: files written, table printed, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from esn.cli import main
from esn.pipeline.stats import read_stats


def test_stats_command_writes_dataset_table_and_csv(store: dict, tmp_path: Path) -> None:
    out, csv = tmp_path / "st.zarr", tmp_path / "top.csv"
    args = ["stats", "--store", store["url"], "--by", "emotion", "--out", str(out),
            "--csv", str(csv), "--top", "3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ds = read_stats(str(out))
    assert ds.attrs["format"] == "esn-stats" and ds.attrs["schema_version"] == 1
    assert ds.attrs["store"]["fingerprint"]
    assert ds.attrs["options"]["by"] == "emotion"
    assert ds.q_value.dims == ("emotion", "layer", "neuron")
    assert {"effect", "diff", "t", "p_value", "q_value", "n"} <= set(ds.data_vars)
    table = pd.read_csv(csv)
    assert len(table) == 12 and list(table.columns[:3]) == ["emotion", "layer", "neuron"]
    for _, rows in table.groupby("emotion"):
        q = rows.q_value.to_numpy()
        assert (np.diff(q) >= 0).all()
    assert "anger" in result.output and "wrote" in result.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
    rank = CliRunner().invoke(main, [*args, "--test", "rank", "--within", "speaker",
                                     "--groups", "anger,sad", "--overwrite"])
    assert rank.exit_code == 0, rank.output
    assert read_stats(str(out)).u.dims == ("emotion", "layer", "neuron")


def test_stats_command_bad_grouping(store: dict, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["stats", "--store", store["url"], "--by", "mood",
                                       "--out", str(tmp_path / "x.zarr")])
    assert result.exit_code != 0
    assert "'mood'" in result.output and "available" in result.output
