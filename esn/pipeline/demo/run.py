"""``esn demo``: the whole method, end to end, on the embedded default (or on given models).

One folder holds every step's output, so an interrupted demo resumes where it stopped
(a finished step is recognised by its output and skipped; extraction resumes its store):

    demo.json                 written first: marks the folder as a demo's (format
                              ``esn-demo``), with the options of the run that began it
    corpus/                   synthetic emotional speech (``esn synth``, the organism's
                              training settings, another seed), speaker groups a, b
    models/planted/           the positive control, saved as a checkpoint directory
    stores/MODEL-GROUP.zarr   activation stores with a hidden-state checkpoint at layer 0
    sets/MODEL-GROUP-*.json   neuron sets: every method, per mask fraction and pool size
    results/MODEL/*/          intervention results (deactivate per fraction, steer per alpha,
                              identification-size sweep, transfer between the speaker groups)
    report/report.html        ``esn report`` over every results folder

By default two models run through the same chain (``DemoOptions.models`` names others:
any model id, e.g. ``esn-whisper-smollm2``, the pretrained organism, or a checkpoint
directory; each is asked with the study's random option order, and its stores, sets and
results are named by ``model_slug``): ``esn-organism`` (the trained model organism) and the
positive control: a copy of the organism with planted emotion circuits
(``esn.pipeline.demo.planted``: three layer-0 gate neurons per emotion read a detector of
that emotion built on the organism's audio encoder and vote for its option; every other
gate neuron's output is silenced, so the planted circuits alone decide), whose emotion
neurons are therefore known. Beside the sweeps, the demo measures for each model how much
its answers use the decoder MLPs at all (accuracy with every gate neuron zeroed) and, for
the positive control, how many planted neurons each selector recovered; these go to
``checks.json`` in the main deactivation folder, which the report shows.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import fnmatch
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import xarray as xr

import esn
from esn.errors import RequestError
from esn.pipeline.demo.planted import plant, planted_neurons
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.intervene import Intervention
from esn.pipeline.intervene.conditions import Condition
from esn.pipeline.intervene.engine import answer_items
from esn.pipeline.intervene.run import InterveneRequest, intervene
from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter
from esn.pipeline.organism.model import organism_record
from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
from esn.pipeline.synth.corpus import SYNTH_OUTPUT
from esn.pipeline.weights.builtin import PRETRAINED_ID, pretrained_record
from esn.stores.activations import ActivationStore
from esn.stores.neuron_sets import read_neuron_sets, write_neuron_sets
from esn.stores.outputs import OutputKind, claim_output, has_json_marker

__all__ = ["DEMO_LABELS", "DEMO_OUTPUT", "DemoOptions", "run_demo"]

DEMO_LABELS = ("anger", "happy", "neutral", "sad", "surprise")
#: The planted neurons' gate gain (``plant``): at 1 their output on other emotions' audio
#: is a tenth of their output on their own, as natural neurons' weak responses are.
#: Measured on the demo corpus's test clips, amplifying one emotion's planted neurons: the
#: share of answers naming it at alpha 0/1/4/16 averages 20/21/23/47% over the five
#: emotions (neutral 76% and sad 81% at 16, the other three 25-26%), with deactivation's
#: self effect unchanged (-88 to -100 points, cross 0 to +2) and accuracy 94%; at gain 4
#: (before) steering moved nothing (20% at alpha 16).
PLANTED_GATE_GAIN = 1.0
ORGANISM, PLANTED = "organism", "planted"
METHODS = ("lap", "lape", "mad", "conact", "rnd")
GROUPS = ("a", "b")

Say = Callable[[str], None]

DEMO_FORMAT = "esn-demo"
DEMO_FILE = "demo.json"
_has_marker = has_json_marker(DEMO_FILE, "format", (DEMO_FORMAT,))


def _is_demo(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """A demo folder: its ``demo.json`` says so; or, from before ``demo.json`` existed, it
    holds nothing but the demo's own entries and its ``corpus/`` is an esn synth corpus."""
    if _has_marker(fs, path):
        return True
    names = [e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path, detail=False)]
    return SYNTH_OUTPUT.recognise(fs, f"{path}/corpus") and all(
        any(fnmatch.fnmatchcase(n, p) for p in DEMO_OUTPUT.entries) for n in names)


#: What the demo writes into its folder (the corpus's staging name included); see the
#: module docstring.
DEMO_OUTPUT = OutputKind(
    name="demo folder", folder=True, recognise=_is_demo,
    entries=(DEMO_FILE, f"{DEMO_FILE}.*.partial", "corpus", ".corpus.*", "models", "stores",
             "sets", "results", "report"),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """The demo's sizes. ``fraction`` is the main mask fraction (steering, pool-size sweep,
    transfer); ``fractions`` the deactivation sweep; ``id_sizes`` pools per emotion."""

    out: Path
    per_emotion_per_speaker: int = 12
    speakers: int = 4
    #: ``organism`` (esn-organism), ``planted`` (its positive control) or any model id a
    #: command takes (``esn-whisper-smollm2``, a checkpoint directory...).
    models: tuple[str, ...] = (ORGANISM, PLANTED)
    device: str = "cpu"
    fraction: float = 0.02
    fractions: tuple[float, ...] = (0.01, 0.02, 0.05)
    alphas: tuple[float, ...] = (1.0, 4.0, 16.0)
    id_sizes: tuple[int, ...] = (2, 4)
    random_draws: int = 3
    #: Identify neurons on wrongly answered items too (``esn select --all-items``), for a
    #: model that answers too few correctly.
    all_items: bool = False
    #: The positions whose rates select neurons (``esn select --span``): ``all`` prompt
    #: positions, or only the ``audio`` or ``text`` ones; one span for the whole study.
    span: str = "all"
    n_boot: int = 1000
    batch_size: int = 64
    seed: int = 0
    #: The synthetic corpus: the organism's training settings (jitter, speakers) with
    #: another seed, so every demo clip is new to the organism.
    corpus_seed: int = 1

    def __post_init__(self) -> None:
        if not self.models or len(set(map(model_slug, self.models))) != len(self.models):
            raise RequestError(f"the demo needs one or more distinct models, got "
                               f"{list(self.models)}")
        if self.fraction not in self.fractions:
            raise RequestError(f"the main fraction {self.fraction} must be one of the swept "
                               f"fractions {list(self.fractions)}")


def run_demo(options: DemoOptions, *, say: Say = print) -> Path:
    """Run (or resume) the demo in ``options.out``; returns the report's HTML path.

    ``options.out`` must be new, an empty folder or a demo folder (``DEMO_OUTPUT``), which
    is resumed; anything else is refused (``OutputRefusedError``) before any work."""
    from esn.pipeline.report import build_report
    from esn.pipeline.synth import synthesize

    out = Path(options.out)
    claim_output(out, DEMO_OUTPUT, resume=True)
    _mark(out, options)
    started = time.perf_counter()

    def step(message: str) -> None:
        say(f"[{time.perf_counter() - started:6.1f} s] {message}")

    corpus = out / "corpus"
    if not (corpus / "manifest.csv").exists():
        step("synthesizing emotional speech")
        trained_on = organism_record()["corpus"]["synth"]
        if options.corpus_seed in _training_seeds(options.models):
            raise RequestError(f"corpus seed {options.corpus_seed} is the seed of a demo "
                               "model's training corpus; choose another")
        synthesize(corpus, per_emotion_per_speaker=options.per_emotion_per_speaker,
                   speakers=options.speakers, seed=options.corpus_seed, test_every=2,
                   jitter=float(trained_on["jitter"]))
    manifests = split_speaker_groups(corpus / "manifest.csv")
    folders: list[Path] = []
    for name in options.models:
        model_id, adapter = _model(name, out, manifests["a"], options.device, step)
        slug = model_slug(name)
        stores = {}
        for group, manifest in manifests.items():
            stores[group] = out / "stores" / f"{slug}-{group}.zarr"
            step(f"{slug}: extracting speaker group {group}")
            extract(ExtractRequest(model=LoadOptions(model_id=model_id, device=options.device),
                                   corpus=f"manifest:{manifest}", out=str(stores[group]),
                                   checkpoint_layers=(0,), option_order=_option_order(name),
                                   max_new_tokens=2, batch_size=options.batch_size,
                                   utterance_chunk=64), adapter=adapter)
        folders += _study(slug, adapter, stores, out, options, step)
    step("writing the report")
    title = ("esn demo: model organism and positive control on synthetic emotional speech"
             if set(options.models) == {ORGANISM, PLANTED} else
             f"esn demo: {', '.join(map(model_slug, options.models))} on synthetic "
             "emotional speech")
    html = build_report(folders, out / "report", title=title, n_boot=options.n_boot,
                        seed=options.seed)
    step(f"done: {html}")
    return html


def _mark(out: Path, options: DemoOptions) -> None:
    """Write ``demo.json`` (once, before anything else), renamed into place."""
    if (out / DEMO_FILE).exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "format": DEMO_FORMAT, "version": 1, "esn_version": esn.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "options": {**dataclasses.asdict(options), "out": str(options.out)},
    }
    tmp = out / f"{DEMO_FILE}.{os.getpid()}.partial"
    tmp.write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    tmp.replace(out / DEMO_FILE)


def split_speaker_groups(manifest: Path) -> dict[str, Path]:
    """Two manifests beside ``manifest``, one per speaker group (its ``group`` column, 0 and
    1, written by ``esn synth``), for the transfer between speaker groups."""
    with manifest.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    if "group" not in fields or {r["group"] for r in rows} != {"0", "1"}:
        raise RequestError(f"{manifest}: the transfer needs a group column with groups 0, 1")
    paths = {}
    for group, number in zip(GROUPS, ("0", "1"), strict=True):
        paths[group] = manifest.with_name(f"manifest-{group}.csv")
        with paths[group].open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(r for r in rows if r["group"] == number)
    return paths


def model_slug(name: str) -> str:
    """The name of a demo model's stores, sets and results: ``organism``, ``planted``, or
    the model id's last two path parts with anything but ``[A-Za-z0-9._-]`` made ``-``."""
    if name in (ORGANISM, PLANTED):
        return name
    tail = "-".join(Path(name.rstrip("/")).parts[-2:]) if "/" in name else name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-") or "model"


def _option_order(name: str) -> str:
    """esn-organism (and its control) was trained with the options in a fixed order; any
    other model is asked as the study asks: a seeded random order per item."""
    return "fixed" if name in (ORGANISM, PLANTED) else "random"


def _training_seeds(models: tuple[str, ...]) -> set[int]:
    """Synth seeds of the demo models' training corpora, where their records say."""
    seeds = set()
    if {ORGANISM, PLANTED} & set(models):
        seeds.add(int(organism_record()["corpus"]["synth"]["seed"]))
    if PRETRAINED_ID in models:
        seeds.add(int(pretrained_record()["corpus"]["synth"]["seed"]))
    return seeds


def _model(name: str, out: Path, manifest: Path, device: str,
           step: Say) -> tuple[str, ModelAdapter]:
    """The model id recorded in the stores, and the loaded adapter."""
    if name not in (ORGANISM, PLANTED):
        step(f"loading {name}")
        return name, load_adapter(LoadOptions(model_id=name, device=device))
    if name == ORGANISM:
        step("loading the model organism (esn-organism)")
        return "esn-organism", load_adapter(LoadOptions(model_id="esn-organism", device=device))
    folder = out / "models" / PLANTED
    if not (folder / "config.json").exists():
        step("planting emotion circuits in a copy of the organism (the positive control)")
        adapter = load_adapter(LoadOptions(model_id="esn-organism"))
        neurons = planted_neurons(DEMO_LABELS, per_emotion=3, n_neurons=adapter.n_neurons)
        circuits = plant(adapter, manifest, neurons, labels=DEMO_LABELS, layer=0,
                         silence_others=True, gate_gain=PLANTED_GATE_GAIN)
        folder.mkdir(parents=True, exist_ok=True)
        adapter.model.save_pretrained(folder)
        adapter.processor.save_pretrained(folder)
        (folder / "planted.json").write_text(json.dumps(
            {e: [list(p) for p in pairs] for e, pairs in circuits.items()}, indent=1))
    step("loading the positive control")
    return str(folder), load_adapter(LoadOptions(model_id=str(folder), device=device))


def _select(store: Path, path: Path, fraction: float, id_size: int | None,
            options: DemoOptions) -> Path:
    if not path.exists():
        sets, _ = select_neurons(str(store), SelectOptions(
            methods=METHODS, fraction=fraction, random_draws=options.random_draws,
            seed=options.seed, span=options.span,
            pool=PoolOptions(id_size=id_size, seed=options.seed,
                             correct_only=not options.all_items)))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_neuron_sets(path, sets)
    return path


def _intervene(adapter: ModelAdapter, folder: Path, options: DemoOptions, **kw: Any) -> Path:
    if not (folder / "summary.json").exists():
        intervene(InterveneRequest(out=str(folder), n_boot=options.n_boot, seed=options.seed,
                                   batch_size=options.batch_size, overwrite=True, **kw),
                  adapter=adapter)
    return folder


def _study(name: str, adapter: ModelAdapter, stores: dict[str, Path], out: Path,
           options: DemoOptions, step: Say) -> list[Path]:
    """Selection and every intervention sweep of one model; returns the results folders."""
    sets_dir, results = out / "sets", out / "results" / name
    folders = []
    main: Path | None = None
    for fraction in options.fractions:
        step(f"{name}: select every method at fraction {fraction:g}, deactivate")
        sets = _select(stores["a"], sets_dir / f"{name}-a-f{fraction:g}.json", fraction, None,
                       options)
        folder = _intervene(adapter, results / f"deactivate-f{fraction:g}", options,
                            store=str(stores["a"]), sets=str(sets), mode="deactivate")
        folders.append(folder)
        if fraction == options.fraction:
            main, main_sets = folder, sets
    assert main is not None
    step(f"{name}: steer with alpha {', '.join(f'{a:g}' for a in options.alphas)}")
    folders.append(_intervene(adapter, results / "steer", options, store=str(stores["a"]),
                              sets=str(main_sets), mode="steer", strengths=options.alphas))
    pool = min(len(ids) for ids in read_neuron_sets(main_sets).pool["item_ids"].values())
    for size in options.id_sizes:
        if size >= pool:
            step(f"{name}: skipping the pool of {size} per emotion (the full pool has {pool})")
            continue
        step(f"{name}: identification pool of {size} per emotion")
        sets = _select(stores["a"], sets_dir / f"{name}-a-id{size}.json", options.fraction,
                       size, options)
        folders.append(_intervene(adapter, results / f"deactivate-id{size}", options,
                                  store=str(stores["a"]), sets=str(sets), mode="deactivate"))
    step(f"{name}: transfer between speaker groups a and b")
    sets_b = _select(stores["b"], sets_dir / f"{name}-b-f{options.fraction:g}.json",
                     options.fraction, None, options)
    for source, target, sets in (("a", "b", main_sets), ("b", "b", sets_b),
                                 ("b", "a", sets_b)):
        kw: dict[str, Any] = {"eval_store": str(stores[target])} if source != target else {}
        folders.append(_intervene(adapter, results / f"transfer-{source}-to-{target}",
                                  options, store=str(stores[source]), sets=str(sets),
                                  mode="deactivate", split="test", **kw))
    if not (main / "checks.json").exists():
        step(f"{name}: zeroing every decoder MLP neuron")
        checks = [*mlp_checks(adapter, stores["a"], main, options)]
        planted_file = out / "models" / PLANTED / "planted.json"
        if name == PLANTED:
            checks += recovery_checks(planted_file, main_sets)
        (main / "checks.json").write_text(json.dumps(checks, indent=1))
    return folders


def mlp_checks(adapter: ModelAdapter, store_path: Path, results: Path,
               options: DemoOptions) -> list[dict[str, Any]]:
    """Accuracy on the test items of ``results`` as answered, and with every decoder gate
    neuron zeroed, with percentile bootstrap intervals over items."""
    store = ActivationStore.open(store_path)
    ds = xr.open_zarr(results / "results.zarr", consolidated=False)
    index = {u: i for i, u in enumerate(store.metadata("utterance").tolist())}
    items = [index[u] for u in ds.item.values.tolist()]
    gold = store.metadata("emotion")[items]
    layout = store.layout
    everything = [(layer, n) for layer in range(layout.n_layers)
                  for n in range(layout.n_neurons)]
    answers = answer_items(adapter, store, items, [
        Condition("baseline", "", 0.0, 0, None),
        Condition("all-mlp", "all", 0.0, 0, Intervention.deactivate(everything))],
        batch_size=options.batch_size)
    correct = answers.parsed == gold[None, :]
    rng = np.random.default_rng(options.seed)
    draws = rng.integers(0, len(items), size=(options.n_boot, len(items)))
    out = []
    for row, label in ((0, "accuracy as answered"),
                       (1, "accuracy with every decoder MLP neuron zeroed")):
        boot = correct[row][draws].mean(axis=1)
        out.append({"name": label, "value": 100 * float(correct[row].mean()),
                    "ci": [100 * float(np.percentile(boot, 2.5)),
                           100 * float(np.percentile(boot, 97.5))],
                    "unit": "%", "text": f"{len(items)} test items; chance is "
                    f"{100 / len(store.attributes.labels):.0f}%"})
    return out


def recovery_checks(planted_file: Path, sets_file: Path) -> list[dict[str, Any]]:
    """Per method, the share of planted neurons found in the selected sets of their emotion."""
    planted = {e: {tuple(p) for p in pairs}
               for e, pairs in json.loads(planted_file.read_text()).items()}
    sets = read_neuron_sets(sets_file)
    out = []
    for method, chosen in sets.methods.items():
        found = sum(len(planted[e] & set(chosen.sets.get(e, ()))) for e in planted)
        total = sum(len(v) for v in planted.values())
        out.append({"name": f"planted neurons recovered by {method}",
                    "value": 100 * found / total, "ci": None, "unit": "%",
                    "text": f"{found} of {total} planted neurons are in their emotion's "
                    f"set of {sets.budget}"})
    return out
