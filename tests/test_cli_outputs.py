"""Every command that writes follows one rule (issue 11): an existing path that is not an
esn artifact of the expected kind is refused with a one-line error, with or without
``--overwrite``, before any work, and not one byte of it changes; ``--overwrite`` replaces
esn's own artifact and keeps a user's file inside it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from esn.cli import main
from esn.errors import OutputRefusedError, RequestError
from esn.pipeline.demo.run import DEMO_OUTPUT, DemoOptions, run_demo
from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter
from esn.pipeline.organism.model import WEIGHTS_DIR
from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
from esn.pipeline.stats import read_stats
from esn.pipeline.synth import synthesize
from esn.stores import ActivationStore
from esn.stores.neuron_sets import read_neuron_sets, write_neuron_sets
from esn.stores.outputs import claim_output
from tests.conftest import make_batch, store_kwargs

EXAMPLE = Path(__file__).parents[1] / "examples" / "tiny"
MODEL = "tiny-qwen2_5_omni"
NO_STORE = "no-such-store.zarr"  # a check that comes first never opens it


def user_folder(path: Path) -> dict[str, bytes]:
    """A folder of a user's files, some named as esn names its own; returns their bytes."""
    (path / "photos").mkdir(parents=True)
    (path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8\xff\xe0 a cat")
    (path / "thesis.tex").write_text("\\chapter{Emotion}\n")
    (path / "summary.json").write_text('{"mine": true}')
    (path / "manifest.csv").write_text("path,label\nmy.wav,happy\n")
    return snapshot(path)


def snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def invoke(args: Sequence[str]) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(args: Sequence[str], path: Path, flags: Sequence[Sequence[str]] = ((),
                                                                             ("--overwrite",))
            ) -> None:
    """``args`` fail, with and without ``--overwrite``, with one line naming ``path``, and
    ``path`` keeps every byte."""
    before = snapshot(path)
    for extra in flags:
        result = invoke([*args, *extra])
        assert result.exit_code != 0, (extra, result.output)
        assert isinstance(result.exception, SystemExit), result.exception  # no traceback
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert str(path) in lines[0], lines[0]
        assert "Traceback" not in result.output
        assert snapshot(path) == before, extra


def plain_file(path: Path) -> Path:
    path.write_text("just a file\n")
    return path


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    url = tmp_path / "s.zarr"
    store = ActivationStore.create(url, **store_kwargs(24, n_layers=2, n_neurons=8, chunk=8))
    store.write_batch(0, make_batch(np.random.default_rng(0), 8, 2, 8))
    store.write_batch(8, make_batch(np.random.default_rng(1), 8, 2, 8))
    store.write_batch(16, make_batch(np.random.default_rng(2), 8, 2, 8))
    return url


SELECT = ["--method", "mad", "--method", "rnd", "--random-draws", "1", "--split", "all",
          "--all-items", "--no-balance"]


# -- esn select ------------------------------------------------------------------------------

def test_select_refuses_what_is_not_a_neuron_set_file(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    user_folder(folder)
    refused(["select", "--store", NO_STORE, "--out", folder], folder)
    text = plain_file(tmp_path / "notes.json")
    refused(["select", "--store", NO_STORE, "--out", text], text)
    other = tmp_path / "other.json"
    other.write_text('{"format": "not-esn", "data": [1, 2, 3]}')
    refused(["select", "--store", NO_STORE, "--out", other], other)


def test_select_overwrite_replaces_its_own_file(small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "sets.json"
    first = invoke(["select", "--store", small_store, "--out", out, "--fraction", "0.25",
                    *SELECT])
    assert first.exit_code == 0, first.output
    again = invoke(["select", "--store", small_store, "--out", out, *SELECT])
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    assert read_neuron_sets(out).fraction == 0.25
    done = invoke(["select", "--store", small_store, "--out", out, "--fraction", "0.5",
                   *SELECT, "--overwrite"])
    assert done.exit_code == 0, done.output
    assert read_neuron_sets(out).fraction == 0.5
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


# -- esn stats -------------------------------------------------------------------------------

def test_stats_refuses_what_is_not_a_stats_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    user_folder(folder)
    refused(["stats", "--store", NO_STORE, "--out", folder], folder)
    text = plain_file(tmp_path / "stats.zarr")
    refused(["stats", "--store", NO_STORE, "--out", text], text)
    partial = tmp_path / "new.zarr.partial"  # the sibling esn would write first
    user_folder(partial)
    refused(["stats", "--store", NO_STORE, "--out", tmp_path / "new.zarr"], partial)
    assert not (tmp_path / "new.zarr").exists()


def test_stats_csv_never_replaces_a_users_file(small_store: Path, tmp_path: Path) -> None:
    mine = plain_file(tmp_path / "top.csv")
    refused(["stats", "--store", NO_STORE, "--out", tmp_path / "new.zarr", "--csv", mine], mine)
    table = tmp_path / "esn-top.csv"
    args = ["stats", "--store", small_store, "--out", tmp_path / "a.zarr", "--csv", table]
    assert invoke(args).exit_code == 0
    first = table.read_text()
    assert first.startswith("emotion,layer,neuron,effect,diff")
    again = invoke(args)
    assert again.exit_code == 1 and "already holds an esn stats dataset" in again.stderr
    result = invoke([*args, "--overwrite", "--top", "2"])
    assert result.exit_code == 0, result.output
    assert table.read_text() != first and not list(tmp_path.glob("esn-top.csv.*.partial"))


def test_stats_overwrite_keeps_a_users_file_inside(small_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "st.zarr"
    args = ["stats", "--store", small_store, "--out", out]
    assert invoke(args).exit_code == 0
    (out / "README.txt").write_text("my notes on these statistics")
    again = invoke(args)
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    result = invoke([*args, "--test", "rank", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "README.txt").read_text() == "my notes on these statistics"
    with pytest.warns(UserWarning, match="README.txt"):  # zarr notices the user's file
        ds = read_stats(str(out))
    assert "u" in ds and "t" not in ds and "df" not in ds  # the Welch arrays are gone
    assert not (tmp_path / "st.zarr.partial").exists()


# -- esn intervene and esn report ------------------------------------------------------------

@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny model, a store of the example corpus, sets, and one results folder."""
    from esn.pipeline.extract import ExtractRequest, extract
    from esn.pipeline.intervene.run import InterveneRequest, intervene

    root = tmp_path_factory.mktemp("outputs_chain")
    adapter = load_adapter(LoadOptions(model_id=MODEL))
    extract(ExtractRequest(model=LoadOptions(model_id=MODEL),
                           corpus=f"manifest:{EXAMPLE / 'manifest.csv'}",
                           out=str(root / "s.zarr"), checkpoint_layers=(0,),
                           option_order="fixed", max_new_tokens=2, batch_size=8),
            adapter=adapter)
    sets, _ = select_neurons(str(root / "s.zarr"), SelectOptions(
        methods=("mad", "rnd"), fraction=0.05, random_draws=1,
        pool=PoolOptions(correct_only=False, balance=False, holdout=0.5)))
    write_neuron_sets(root / "sets.json", sets)
    intervene(InterveneRequest(store=str(root / "s.zarr"), sets=str(root / "sets.json"),
                               out=str(root / "results"), methods=("mad",), n_boot=10),
              adapter=adapter)
    return {"root": root, "adapter": adapter, "store": root / "s.zarr",
            "sets": root / "sets.json", "results": root / "results"}


def test_intervene_refuses_what_is_not_a_results_folder(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    user_folder(folder)
    args = ["intervene", "--store", NO_STORE, "--sets", "no-sets.json", "--out"]
    refused([*args, folder], folder)
    text = plain_file(tmp_path / "results")
    refused([*args, text], text)


def test_intervene_overwrite_keeps_a_users_file_inside(chain: dict, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "results"
    shutil.copytree(chain["results"], out)
    (out / "checks.json").write_text("[]")  # esn's (the demo writes it): goes with the rest
    (out / "my-analysis.ipynb").write_text('{"cells": []}')
    adapter: ModelAdapter = chain["adapter"]
    monkeypatch.setattr("esn.pipeline.intervene.run.load_adapter", lambda options: adapter)
    args = ["intervene", "--store", chain["store"], "--sets", chain["sets"], "--out", out,
            "--method", "mad", "--bootstrap", "10"]
    again = invoke(args)
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    before = (out / "summary.json").stat().st_mtime_ns
    result = invoke([*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "my-analysis.ipynb").read_text() == '{"cells": []}'
    assert not (out / "checks.json").exists()
    assert (out / "summary.json").stat().st_mtime_ns != before
    assert {p.name for p in out.iterdir()} == {"results.zarr", "neuron_sets.json",
                                               "answers.csv", "summary.json",
                                               "my-analysis.ipynb"}


def test_report_refuses_what_is_not_a_report(tmp_path: Path) -> None:
    results = tmp_path / "results"  # never read: the check comes first
    results.mkdir()
    folder = tmp_path / "mine"
    user_folder(folder)
    refused(["report", results, "--out", folder], folder)
    text = plain_file(tmp_path / "report")
    refused(["report", results, "--out", text], text)
    half = tmp_path / "half"  # an HTML page alone is not an esn report either
    half.mkdir()
    (half / "report.html").write_text("<html>mine</html>")
    refused(["report", results, "--out", half], half)


def test_report_is_remade_keeping_a_users_file(chain: dict, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["report", chain["results"], "--out", out, "--n-boot", "10"]
    assert invoke(args).exit_code == 0
    (out / "figures" / "stale.png").write_bytes(b"old")  # inside esn's figures/: replaced
    (out / "talk.pptx").write_bytes(b"my slides")
    summary = (out / "summary.json").read_text()
    for extra in ([], ["--overwrite"]):
        result = invoke([*args, *extra])
        assert result.exit_code == 0, result.output
        assert (out / "talk.pptx").read_bytes() == b"my slides"
        assert not (out / "figures" / "stale.png").exists()
        assert (out / "summary.json").read_text() == summary


# -- esn synth -------------------------------------------------------------------------------

SYNTH = ["--per-emotion-per-speaker", "2", "--speakers", "2", "--test-every", "2"]


def test_synth_refuses_what_is_not_a_synth_corpus(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    user_folder(folder)
    refused(["synth", "--out", folder, *SYNTH], folder)
    text = plain_file(tmp_path / "corpus")
    refused(["synth", "--out", text, *SYNTH], text)
    assert {p.name for p in tmp_path.iterdir()} == {"mine", "corpus"}  # no staging left


def test_synth_overwrite_keeps_a_users_file_inside(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    assert invoke(["synth", "--out", out, *SYNTH]).exit_code == 0
    (out / "my-recording.wav").write_bytes(b"RIFF mine")
    (out / "labels-by-hand.csv").write_text("a,b\n")
    again = invoke(["synth", "--out", out, *SYNTH])
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    result = invoke(["synth", "--out", out, "--per-emotion-per-speaker", "1", "--speakers",
                     "2", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "my-recording.wav").read_bytes() == b"RIFF mine"
    assert (out / "labels-by-hand.csv").read_text() == "a,b\n"
    clips = sorted(p.name for p in out.glob("spk*.wav"))
    assert len(clips) == 2 * 5 and not [c for c in clips if c.endswith("_001.wav")]
    assert json.loads((out / "synth.json").read_text())["per_emotion_per_speaker"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- esn organism train ----------------------------------------------------------------------

def test_organism_train_refuses_what_is_not_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    user_folder(folder)
    refused(["organism", "train", "--out", folder, "--epochs", "1"], folder)
    text = plain_file(tmp_path / "organism-run")
    refused(["organism", "train", "--out", text, "--epochs", "1"], text)
    ours = tmp_path / "run"  # esn's folder (its corpus), but organism/ is the user's
    synthesize(ours / "corpus", per_emotion_per_speaker=1, speakers=2)
    user_folder(ours / "organism")
    refused(["organism", "train", "--out", ours, "--epochs", "1"], ours / "organism")


def test_organism_train_checks_its_corpus_before_synthesizing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(WEIGHTS_DIR, out / "organism")
    user_folder(out / "corpus")  # the user's corpus/ beside an esn organism
    refused(["organism", "train", "--out", out, "--epochs", "1"], out / "corpus")
    shutil.rmtree(out)
    synthesize(out / "corpus", per_emotion_per_speaker=1, speakers=2)  # not the shipped one
    before = snapshot(out)
    result = invoke(["organism", "train", "--out", out, "--epochs", "1"])
    assert result.exit_code == 1 and "other settings than the shipped" in result.stderr
    assert "per_emotion_per_speaker" in result.stderr and "--overwrite" in result.stderr
    assert snapshot(out) == before  # nothing was synthesized or trained


def test_organism_train_overwrite_keeps_a_users_file(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    synthesize(corpus, per_emotion_per_speaker=2, speakers=2, test_every=2)
    out = tmp_path / "run"
    shutil.copytree(WEIGHTS_DIR, out / "organism")  # an earlier organism
    (out / "organism" / "my-notes.md").write_text("# trained on Tuesday")
    (out / "plots.png").write_bytes(b"\x89PNG mine")
    args = ["organism", "train", "--out", out, "--corpus", corpus / "manifest.csv",
            "--epochs", "1", "--encoder-epochs", "1"]
    again = invoke(args)
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    result = invoke([*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "organism" / "my-notes.md").read_text() == "# trained on Tuesday"
    assert (out / "plots.png").read_bytes() == b"\x89PNG mine"
    record = json.loads((out / "organism" / "organism.json").read_text())
    assert record["training"]["epochs"] == 1
    assert {p.name for p in out.iterdir()} == {"organism", "plots.png"}  # no staging left


# -- esn demo --------------------------------------------------------------------------------

def test_demo_refuses_a_folder_of_user_files(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    user_folder(folder)
    refused(["demo", "--out", folder], folder, flags=((),))
    text = plain_file(tmp_path / "esn-demo")
    refused(["demo", "--out", text], text, flags=((),))


def test_demo_marks_its_folder_first_and_resumes_it(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    bad_seed = DemoOptions(out=out, corpus_seed=0)  # the organism's: refused after marking
    with pytest.raises(RequestError, match="corpus seed"):
        run_demo(bad_seed, say=lambda line: None)
    marker = json.loads((out / "demo.json").read_text())
    assert marker["format"] == "esn-demo" and marker["options"]["corpus_seed"] == 0
    assert [p.name for p in out.iterdir()] == ["demo.json"]
    (out / "my-notes.txt").write_text("resume me")
    with pytest.raises(RequestError, match="corpus seed"):  # resumed, not refused
        run_demo(bad_seed, say=lambda line: None)
    assert (out / "my-notes.txt").read_text() == "resume me"


def test_demo_folders_from_before_the_marker(tmp_path: Path) -> None:
    old = tmp_path / "old"
    synthesize(old / "corpus", per_emotion_per_speaker=1, speakers=2)
    for name in ("stores", "sets", "results", "models"):
        (old / name).mkdir()
    assert claim_output(old, DEMO_OUTPUT, resume=True) == "esn"
    (old / "thesis.tex").write_text("mine")  # not the demo's: the folder is not recognised
    with pytest.raises(OutputRefusedError, match="not an esn demo folder"):
        claim_output(old, DEMO_OUTPUT, resume=True)
    fake = tmp_path / "fake"  # the demo's names, but no esn corpus
    (fake / "corpus").mkdir(parents=True)
    (fake / "corpus" / "manifest.csv").write_text("path,label\n")
    with pytest.raises(OutputRefusedError):
        claim_output(fake, DEMO_OUTPUT, resume=True)


# -- esn acoustics (writes into an existing store only) ---------------------------------------

def test_acoustics_never_writes_into_what_is_not_an_esn_store(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    user_folder(folder)
    refused(["acoustics", "--store", folder], folder,
            flags=((), ("--overwrite",), ("--overwrite", "--break-lock")))
    text = plain_file(tmp_path / "store.zarr")
    refused(["acoustics", "--store", text], text, flags=((), ("--overwrite",)))
