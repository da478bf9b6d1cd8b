"""How a store keeps the activation sums (``esn extract --sums``): none, bfloat16, float32.

The expectation for every choice is the float32 store of the same run: bfloat16 sums are
its sums rounded by torch's own cast, and a store without sums has the same K and T.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import esn
from esn.cli import main
from esn.errors import RequestError, StoreMismatchError
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.models import LoadOptions
from esn.pipeline.stats.measures import grouped_aggregates
from esn.schemas import DEFAULT_SUMS
from esn.stores import ActivationStore
from tests.pipeline.conftest import write_manifest

MODEL = "tiny-qwen2_5_omni"


def run(manifest: Path, out: Path, **kw) -> None:
    extract(ExtractRequest(model=LoadOptions(model_id=MODEL), corpus=f"manifest:{manifest}",
                           out=str(out), batch_size=3, utterance_chunk=4, **kw))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sums")
    manifest = write_manifest(root)
    out = {}
    for sums in ("float32", "bfloat16", "none"):
        out[sums] = root / f"{sums}.zarr"
        run(manifest, out[sums], sums=sums)
    out["manifest"] = manifest
    return out


def test_bfloat16_sums_are_the_float32_sums_rounded_by_torch(stores: dict[str, Path]) -> None:
    f32, bf16 = esn.open_store(stores["float32"]), esn.open_store(stores["bfloat16"])
    done = f32.status.values == 1
    assert done.sum() >= 6
    expected = torch.from_numpy(f32.act_sum.values).to(torch.bfloat16).to(torch.float32)
    assert bf16.act_sum.dtype == np.float32
    np.testing.assert_array_equal(bf16.act_sum.values, expected.numpy())
    assert not np.array_equal(bf16.act_sum.values[done], f32.act_sum.values[done])  # rounded
    for name in ("K", "T", "raw_answer", "status"):
        assert bf16[name].values.tolist() == f32[name].values.tolist(), name
    on_disk = ActivationStore.open(stores["bfloat16"])
    array = on_disk.group["act_sum"]
    assert array.dtype == np.uint16 and array.attrs["encoding"] == "bfloat16 bits"
    np.testing.assert_array_equal(on_disk.read("act_sum", (slice(0, 2),)),
                                  expected.numpy()[:2])
    assert on_disk.validate(deep=True).ok
    # The activation measure moves by bfloat16's rounding only: each stored sum by at most
    # 2**-8 of itself (8 significant bits), so a pooled mean by at most 2**-8 sum|sum| / sum T.
    a = grouped_aggregates(str(stores["float32"]), "emotion").compute()
    b = grouped_aggregates(str(stores["bfloat16"]), "emotion").compute()
    emotions = f32.emotion.values[done]
    magnitude = np.abs(f32.act_sum.values[done].astype(np.float64)).sum(axis=1)
    t = f32.T.values[done].sum(axis=1)
    for g, emotion in enumerate(a.emotion.values):
        rows = emotions == emotion
        bound = 2**-8 * magnitude[rows].sum(0) / t[rows].sum() + 1e-9
        error = np.abs(b.activation.values[g] - a.activation.values[g])
        assert (error <= bound).all(), emotion


def test_a_store_without_sums_has_the_same_counts_and_no_act_sum(stores: dict[str, Path]) -> None:
    f32, none = esn.open_store(stores["float32"]), esn.open_store(stores["none"])
    assert "act_sum" not in none.data_vars
    for name in ("K", "T", "raw_answer", "options", "status"):
        assert none[name].values.tolist() == f32[name].values.tolist(), name
    store = ActivationStore.open(stores["none"])
    assert not (stores["none"] / "act_sum").exists() and not store.records("act_sum")
    assert store.validate(deep=True).ok
    assert store.info()["chunking"]["sums_dtype"] == "none"
    with pytest.raises(RequestError, match=r"none\.zarr keeps no activation sums"):
        store.read("act_sum")
    rates = grouped_aggregates(store, "emotion")
    assert "activation" not in rates and "rate" in rates
    np.testing.assert_array_equal(
        rates.rate.values, grouped_aggregates(str(stores["float32"]), "emotion").rate.values)
    # Less on disk: K and T only.
    assert store.info()["bytes"]["stored"] < ActivationStore.open(
        stores["float32"]).info()["bytes"]["stored"]


def test_select_and_stats_on_a_store_without_sums(stores: dict[str, Path],
                                                   tmp_path: Path) -> None:
    store = str(stores["none"])
    runner = CliRunner()
    selected = runner.invoke(main, ["select", "--store", store, "--out",
                                    str(tmp_path / "sets.json"), "--split", "all",
                                    "--all-items"])
    assert selected.exit_code == 0, selected.output
    reference = runner.invoke(main, ["select", "--store", str(stores["float32"]), "--out",
                                     str(tmp_path / "ref.json"), "--split", "all",
                                     "--all-items"])
    assert reference.exit_code == 0, reference.output
    sets = json.loads((tmp_path / "sets.json").read_text())["methods"]
    assert sets == json.loads((tmp_path / "ref.json").read_text())["methods"]

    rate = runner.invoke(main, ["stats", "--store", store, "--by", "emotion",
                                "--out", str(tmp_path / "rate.zarr")])
    assert rate.exit_code == 0, rate.output
    refused = runner.invoke(main, ["stats", "--store", store, "--by", "emotion",
                                   "--measure", "activation", "--out", str(tmp_path / "a.zarr")])
    assert refused.exit_code == 1
    line = refused.output.strip()
    assert line.count("\n") == 0 and "Traceback" not in line
    assert "none.zarr keeps no activation sums" in line and "--sums bfloat16" in line
    assert not (tmp_path / "a.zarr").exists()


def test_a_new_store_keeps_no_sums_unless_asked_and_a_resume_keeps_its_own(
        stores: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = stores["manifest"]
    out = tmp_path / "default.zarr"
    result = CliRunner().invoke(main, [
        "extract", "--model", MODEL, "--corpus", f"manifest:{manifest}", "--out", str(out),
        "--batch-size", "3", "--utterance-chunk", "4"])
    assert result.exit_code == 0, result.output
    assert DEFAULT_SUMS == "none"
    assert ActivationStore.open(out).layout.sums_dtype == "none"
    assert "sums      not kept (--sums none)" in result.output
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    assert attrs["layout"]["sums_dtype"] == "none"
    # A float32 store records nothing new: its attributes read as before the choice.
    f32 = json.loads((stores["float32"] / "zarr.json").read_text())["attributes"]
    assert "sums_dtype" not in f32["layout"]

    # The same command without --sums resumes a float32 store (nothing left to do) ...
    resumed = CliRunner().invoke(main, [
        "extract", "--model", MODEL, "--corpus", f"manifest:{manifest}",
        "--out", str(stores["float32"]), "--batch-size", "3", "--utterance-chunk", "4"])
    assert resumed.exit_code == 0, resumed.output
    assert "0 items" in resumed.output and "act_sum kept in float32" in resumed.output

    # ... and asking for other sums is refused before the model loads.
    def no_loading(options):  # noqa: ANN001, ANN202
        raise AssertionError("the model was loaded before the store was checked")

    monkeypatch.setattr("esn.pipeline.extract.run.load_adapter", no_loading)
    with pytest.raises(StoreMismatchError,
                       match="layout.sums_dtype: store has 'float32', asked 'bfloat16'"):
        run(manifest, stores["float32"], sums="bfloat16")
