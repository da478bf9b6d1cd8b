"""Interventions run on the store's own model: loaded from its record, checked, and the
unintervened answers compared with those stored at extraction (issue 12, part 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from esn.cli import main
from esn.errors import ModelMismatchError
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.intervene.describe import format_results
from esn.pipeline.intervene.run import InterveneRequest, intervene
from esn.pipeline.intervene.store_model import load_options, model_differences
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
from esn.schemas.store import ModelInfo
from esn.stores import ActivationStore
from esn.stores.neuron_sets import write_neuron_sets

MODEL = "tiny-qwen2_5_omni"


def test_load_options_follow_the_store_record() -> None:
    stored = ModelInfo(id="org/model", revision="abc123", adapter="qwen2_5_omni",
                       dtype="bfloat16", attn_implementation="eager", trust_remote_code=True,
                       config_digest="d1")
    options = load_options(stored, device="cuda:1")
    assert options == LoadOptions(model_id="org/model", revision="abc123", dtype="bfloat16",
                                  device="cuda:1", attn_implementation="eager",
                                  trust_remote_code=True)
    assert load_options(stored, dtype="float32").dtype == "float32"  # an override, checked
    loaded = ModelInfo(id="org/model", revision="abc124", dtype="float32", config_digest="d2")
    assert model_differences(stored, loaded) == [
        "revision: store 'abc123', loaded 'abc124'", "dtype: store 'bfloat16', loaded 'float32'",
        "config_digest: store 'd1', loaded 'd2'"]
    assert model_differences(ModelInfo(id="org/model"), loaded) == []  # nothing recorded


def test_the_store_records_how_its_model_was_loaded(tmp_path: Path) -> None:
    adapter = load_adapter(LoadOptions(model_id=MODEL, attn_implementation="eager"))
    assert adapter.info.attn_implementation == "eager"
    assert len(adapter.info.config_digest) == 64
    again = load_adapter(LoadOptions(model_id=MODEL, dtype="bfloat16"))
    assert again.info.config_digest == adapter.info.config_digest  # dtype is not the model


@pytest.fixture
def bf16_store(manifest: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "bf16.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id=MODEL, dtype="bfloat16"),
                           corpus=f"manifest:{manifest}", out=str(out), batch_size=4,
                           utterance_chunk=4, checkpoint_layers=(0,)))
    sets, _ = select_neurons(str(out), SelectOptions(
        fraction=0.05, random_draws=1,
        pool=PoolOptions(holdout=0.4, correct_only=False, balance=False)))
    write_neuron_sets(tmp_path / "sets.json", sets)
    return out, tmp_path / "sets.json"


def args(store: Path, sets: Path, out: Path, *more: str) -> list[str]:
    return ["intervene", "--store", str(store), "--sets", str(sets), "--method", "mad",
            "--random-draws", "1", "--bootstrap", "20", "--out", str(out), *more]


def test_a_bf16_store_refuses_an_fp32_model_unless_forced(bf16_store, tmp_path: Path) -> None:
    store, sets = bf16_store
    assert ActivationStore.open(store).attributes.model.dtype == "bfloat16"
    refused = CliRunner().invoke(main, args(store, sets, tmp_path / "a", "--dtype", "float32"))
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "dtype: store 'bfloat16', loaded 'float32'" in refused.stderr
    assert "--force-model" in refused.stderr and not (tmp_path / "a").exists()
    with pytest.raises(ModelMismatchError):
        intervene(InterveneRequest(store=str(store), sets=str(sets), out=str(tmp_path / "b"),
                                   methods=("mad",), random_draws=1, n_boot=20,
                                   dtype="float32"))
    forced = CliRunner().invoke(main, args(store, sets, tmp_path / "c", "--dtype", "float32",
                                           "--force-model"))
    assert forced.exit_code == 0, forced.output
    assert "model     forced: dtype: store 'bfloat16', loaded 'float32'" in forced.stdout
    context = json.loads((tmp_path / "c" / "summary.json").read_text())["context"]
    assert context["forced_model"] and context["model_record"]["dtype"] == "float32"
    # By default the store's own dtype is loaded: bf16 on the CPU, no complaint.
    same = CliRunner().invoke(main, args(store, sets, tmp_path / "d"))
    assert same.exit_code == 0, same.output
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["context"]["model_record"]["dtype"] == "bfloat16"
    assert not summary["context"]["forced_model"]
    assert summary["baseline_agreement"]["fraction"] == 1.0  # the same model, the same answers


def test_a_planted_disagreement_with_the_stored_answers_is_reported(prepared,
                                                                    tmp_path: Path) -> None:
    store, sets = prepared
    first = CliRunner().invoke(main, args(store, sets, tmp_path / "a"))
    assert first.exit_code == 0, first.output
    agreement = json.loads((tmp_path / "a" / "summary.json").read_text())["baseline_agreement"]
    assert agreement["agree"] == agreement["n"] > 0 and agreement["differing"] == []
    assert f"baseline  {agreement['n']}/{agreement['n']} unintervened answers" in first.stdout
    # Plant: the same checkpoint record, but an LM head that answers otherwise (as a GPU's
    # bf16 near-ties could): nothing in the record differs, the answers do.
    adapter = load_adapter(LoadOptions(model_id=MODEL))
    with torch.no_grad():
        adapter.lm_head.weight.mul_(-1.0)
    folder = intervene(InterveneRequest(store=str(store), sets=str(sets), out=str(tmp_path / "b"),
                                        methods=("mad",), random_draws=1, n_boot=20),
                       adapter=adapter)
    agreement = json.loads((folder / "summary.json").read_text())["baseline_agreement"]
    answers = pd.read_csv(folder / "answers.csv", keep_default_na=False)
    base = answers[answers.condition == "baseline"].set_index("item")
    meta = ActivationStore.open(store)
    stored = dict(zip(meta.metadata("utterance").tolist(),
                      meta.metadata("parsed_answer").tolist(), strict=True))
    expected = sorted(str(i) for i, row in base.iterrows() if row.parsed != stored[i])
    assert expected, "the planted head should change at least one answer"
    assert sorted(row["item"] for row in agreement["differing"]) == expected
    assert agreement["agree"] == agreement["n"] - len(expected) == len(base) - len(expected)
    for row in agreement["differing"]:
        assert row["stored"] == stored[row["item"]] and row["now"] == base.parsed[row["item"]]
    printed = format_results(folder)
    assert f"baseline  {agreement['agree']}/{agreement['n']} unintervened answers" in printed
    assert f"  differs  {expected[0]}: stored" in printed


def test_the_full_engine_hears_what_extraction_heard(manifest: Path, tmp_path: Path) -> None:
    """A store cut at 0.6 s (``--max-seconds``): generation from audio (the full engine,
    the label-agnostic weights) gets the same 9600 samples per clip, and answers as stored."""
    store = tmp_path / "cut.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id=MODEL), corpus=f"manifest:{manifest}",
                           out=str(store), batch_size=4, utterance_chunk=4, max_seconds=0.6))
    sets, _ = select_neurons(str(store), SelectOptions(
        fraction=0.05, random_draws=1,
        pool=PoolOptions(holdout=0.4, correct_only=False, balance=False)))
    write_neuron_sets(tmp_path / "sets.json", sets)
    adapter = load_adapter(LoadOptions(model_id=MODEL))
    heard: list[int] = []
    build = adapter.build_batch

    def recording(audios, prompts):  # noqa: ANN001, ANN202
        heard.extend(len(a) for a in audios)
        return build(audios, prompts)

    adapter.build_batch = recording  # type: ignore[method-assign]
    folder = intervene(InterveneRequest(
        store=str(store), sets=str(tmp_path / "sets.json"), out=str(tmp_path / "r"),
        mode="steer", strengths=(0.5,), methods=("mad",), random_draws=1, n_boot=20,
        engine="full", label_agnostic=("mix",)), adapter=adapter)
    assert max(ActivationStore.open(store).metadata("duration")) > 0.6  # some clips cut
    assert heard and max(heard) == 9600
    agreement = json.loads((folder / "summary.json").read_text())["baseline_agreement"]
    assert agreement["agree"] == agreement["n"] > 0


def test_a_store_from_before_the_decoding_record_is_intervened_with_a_warning(
        manifest: Path, tmp_path: Path) -> None:
    import zarr

    from esn.errors import EsnWarning

    store = tmp_path / "old.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id=MODEL), corpus=f"manifest:{manifest}",
                           out=str(store), batch_size=4, utterance_chunk=4))
    group = zarr.open_group(str(store), mode="r+")
    attrs = dict(group.attrs)
    attrs["probe"] = {k: v for k, v in attrs["probe"].items() if k != "decoding"}
    group.attrs.put(attrs)  # as an esn from before the record wrote it
    assert ActivationStore.open(store).attributes.probe.decoding == {}
    sets, _ = select_neurons(str(store), SelectOptions(
        fraction=0.05, random_draws=1,
        pool=PoolOptions(holdout=0.4, correct_only=False, balance=False)))
    write_neuron_sets(tmp_path / "sets.json", sets)
    with pytest.warns(EsnWarning, match="made before esn recorded its decoding"):
        intervene(InterveneRequest(store=str(store), sets=str(tmp_path / "sets.json"),
                                   out=str(tmp_path / "r"), methods=("mad",), random_draws=1,
                                   n_boot=20))
