"""The demo end to end, small: the positive control shows the known signature through the
whole chain (recovered neurons, a self effect far above cross and random effects, steering
towards the target), the organism's checks are reported, and a rerun resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from esn.pipeline.audio import load_audio
from esn.pipeline.demo.run import DEMO_LABELS, DemoOptions, run_demo
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.organism import ORGANISM_ID
from esn.pipeline.probe import Probe
from esn.pipeline.report.screenshot import SCREEN, rendered_body
from esn.stores import ActivationStore
from esn.stores.neuron_sets import read_neuron_sets

pytestmark = pytest.mark.slow

OPTIONS = dict(per_emotion_per_speaker=8, fraction=0.02, fractions=(0.02, 0.05),
               alphas=(1.0, 16.0), id_sizes=(2,), random_draws=2, n_boot=100)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(DemoOptions(out=out, **OPTIONS), say=lambda line: None)


def answers(folder: Path) -> xr.Dataset:
    return xr.open_zarr(folder / "results.zarr", consolidated=False).load()


def recall(ds: xr.Dataset, condition: str, emotion: str) -> float:
    mine = ds.emotion.values == emotion
    return float((ds.parsed.sel(condition=condition).values[mine] == emotion).mean())


def test_the_positive_control_shows_the_signature(demo) -> None:
    out, _ = demo
    ds = answers(out / "results" / "planted" / "deactivate-f0.02")
    labels = list(DEMO_LABELS)
    base = {e: recall(ds, "baseline", e) for e in labels}
    rnd = [str(c) for c in ds.condition.values if str(c).startswith("rnd/")]
    random_change = np.mean([abs(np.mean([recall(ds, c, e) for c in rnd]) - base[e])
                             for e in labels])
    shown = {}
    for method in ("mad", "conact"):
        delta = np.array([[recall(ds, f"{method}/{m}/0.02", e) - base[e] for e in labels]
                          for m in labels])
        diagonal = float(np.mean(np.diag(delta)))
        off = float(np.mean(np.abs(delta[~np.eye(len(labels), dtype=bool)])))
        shown[method] = (diagonal, off, random_change)
    assert any(d < 0 and -d >= 3 * off and -d >= 3 * r for d, off, r in shown.values()), shown


def test_the_selectors_recover_the_planted_neurons(demo) -> None:
    out, _ = demo
    planted = json.loads((out / "models" / "planted" / "planted.json").read_text())
    sets = read_neuron_sets(out / "results" / "planted" / "deactivate-f0.02" /
                            "neuron_sets.json")
    found = {method: sum(len({tuple(p) for p in pairs} & set(chosen.sets[emotion]))
                         for emotion, pairs in planted.items())
             for method, chosen in sets.methods.items()}
    total = sum(len(pairs) for pairs in planted.values())
    assert max(found["mad"], found["conact"]) > total / 2, found
    checks = json.loads((out / "results" / "planted" / "deactivate-f0.02" /
                         "checks.json").read_text())
    reported = {c["name"]: c["value"] for c in checks}
    for method, n in found.items():
        assert reported[f"planted neurons recovered by {method}"] == pytest.approx(
            100 * n / total)


def test_steering_raises_the_target_share(demo) -> None:
    out, _ = demo
    ds = answers(out / "results" / "planted" / "steer")
    said = ds.parsed.values
    names = [str(c) for c in ds.condition.values]
    base = said[names.index("baseline")]
    # The planted circuits only add votes for their own emotion, so amplifying a set that
    # holds planted neurons of e can move an answer only to e, never to a third emotion.
    planted = json.loads((out / "models" / "planted" / "planted.json").read_text())
    sets = read_neuron_sets(out / "results" / "planted" / "steer" / "neuron_sets.json")
    checked = 0
    for method in ("mad", "conact"):
        for e in DEMO_LABELS:
            if not {tuple(p) for p in planted[e]} & set(sets.methods[method].sets[e]):
                continue
            now = said[names.index(f"{method}/{e}/16")]
            changed = now != base
            assert (now[changed] == e).all(), (method, e, now[changed])
            checked += 1
    assert checked > 0  # the selectors found planted neurons (see the recovery test)


def test_steering_grows_with_alpha_on_the_positive_control(demo) -> None:
    """The planted neurons fire weakly on other emotions' audio too, so amplifying e's
    planted neurons draws more and more answers to e as alpha grows."""
    out, _ = demo
    ds = answers(out / "results" / "planted" / "steer")
    said, names = ds.parsed.values, [str(c) for c in ds.condition.values]
    planted = json.loads((out / "models" / "planted" / "planted.json").read_text())
    sets = read_neuron_sets(out / "results" / "planted" / "steer" / "neuron_sets.json")
    curves = []
    for method in ("mad", "conact"):
        for e in DEMO_LABELS:
            if {tuple(p) for p in planted[e]} <= set(sets.methods[method].sets[e]):
                curves.append([float((said[names.index(c)] == e).mean()) for c in
                               ("baseline", f"{method}/{e}/1", f"{method}/{e}/16")])
    assert curves, "no set holds all of an emotion's planted neurons"
    base, low, high = np.mean(curves, axis=0)
    assert base <= low + 0.02 and high >= low + 0.15, curves


def test_the_organism_checks_and_the_report(demo) -> None:
    """Both accuracies of checks.json against an independent recomputation: the stored
    extraction answers, and plain generation with a hook that zeroes every gate output."""
    out, html = demo
    folder = out / "results" / "organism" / "deactivate-f0.02"
    names = {c["name"]: c for c in json.loads((folder / "checks.json").read_text())}
    store = ActivationStore.open(out / "stores" / "organism-a.zarr")
    index = {u: i for i, u in enumerate(store.metadata("utterance").tolist())}
    items = [index[u] for u in answers(folder).item.values.tolist()]
    gold, options = store.metadata("emotion")[items], store.metadata("options")[items]
    as_answered = store.metadata("correct")[items].astype(bool)
    adapter = load_adapter(LoadOptions(model_id=ORGANISM_ID))
    probe = Probe.from_info(store.attributes.probe, store.attributes.labels)
    hooks = [gate.register_forward_hook(lambda m, a, y: torch.zeros_like(y))
             for gate in adapter.gate_modules()]
    try:
        audio = [load_audio(p, adapter.sample_rate) for p in store.metadata("path")[items]]
        prompts = [probe.prompt(tuple(o)) for o in options]
        said = adapter.generate(adapter.build_batch(audio, prompts), probe.max_new_tokens)
    finally:
        for hook in hooks:
            hook.remove()
    zeroed_correct = np.array([probe.parse(a, tuple(o)) == g
                               for a, o, g in zip(said, options, gold, strict=True)])
    for name, correct in (("accuracy as answered", as_answered),
                          ("accuracy with every decoder MLP neuron zeroed", zeroed_correct)):
        draws = np.random.default_rng(0).integers(0, len(items), size=(100, len(items)))
        boot = correct[draws].mean(axis=1)
        assert names[name]["value"] == pytest.approx(100 * correct.mean()), name
        assert names[name]["ci"] == pytest.approx([100 * np.percentile(boot, 2.5),
                                                   100 * np.percentile(boot, 97.5)]), name
    assert html.exists() and (html.parent / "summary.json").exists()


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (apt-get install chromium)")
def test_the_first_screen_states_the_findings_of_both_models(demo) -> None:
    """The demo's report, 1280 x 900 in Chromium: the findings of the organism and of the
    positive control come first and end on the first screen, the control's verdict is the
    signature and the organism's is not, and nothing is wider than the window."""
    _, html = demo
    summary = json.loads((html.parent / "summary.json").read_text())
    models = [f["model"] for f in summary["findings"]]
    assert models[0] == ORGANISM_ID and models[1].endswith("planted") and len(models) == 2
    organism, planted = summary["findings"]
    assert planted["best"]["present"] and not organism["best"]["present"]
    assert all(f"UAR {f['uar']:.1f}%" in f["text"][0] for f in (organism, planted))
    body = rendered_body(html, SCREEN)
    assert body["findings-before-tables"] == "true"
    assert float(body["findings-bottom"]) <= SCREEN[1]
    assert int(body["document-width"]) <= int(body["viewport-width"])
    assert int(body["images-decoded"]) == int(body["images-total"])


def test_a_rerun_resumes_without_recomputing(demo) -> None:
    out, html = demo
    finished = {p: p.stat().st_mtime_ns for p in (out / "results").glob("*/*/summary.json")}
    finished |= {p: p.stat().st_mtime_ns for p in (out / "sets").glob("*.json")}
    before = json.loads((html.parent / "summary.json").read_text())
    run_demo(DemoOptions(out=out, **OPTIONS), say=lambda line: None)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    assert json.loads((html.parent / "summary.json").read_text()) == before
