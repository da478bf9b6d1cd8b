"""The report end to end on real results folders: every number in summary.json recomputed
independently (pandas from answers.csv, numpy from results.zarr, the neuron-set JSON), the
page self-contained and rendered by a real browser, and the edge cases."""

from __future__ import annotations

import base64
import functools
import html
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from esn.errors import OutputRefusedError, RequestError
from esn.pipeline.report import build_report
from esn.pipeline.report.screenshot import rendered_body, screenshot
from tests.pipeline.report.conftest import BIG, CHECKS, N_BOOT, SMALL

SEED = 3
FACTOR = 3.0
SCREEN = (1280, 900)  # the first screen of a laptop


@pytest.fixture(scope="module")
def report(chain: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("report") / "out"
    order = ["deact", "deact_big", "steer", "pool2", "a_to_b", "b"]
    page = build_report([chain[n] for n in order], out, title="chain", n_boot=N_BOOT,
                        seed=SEED)
    assert page == out / "report.html"
    return out, json.loads((out / "summary.json").read_text())


# --- independent recomputation ------------------------------------------------------------

def answers(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "answers.csv", keep_default_na=False)


def recall(frame: pd.DataFrame, emotion: str) -> float:
    mine = frame[frame.emotion == emotion]
    return float((mine.parsed == emotion).mean())


def delta_rows(frame: pd.DataFrame, labels: list[str], method: str, strength: float
               ) -> dict[str, list[float]]:
    """Row name -> accuracy change per label, in points (rnd: recalls averaged over draws)."""
    base = frame[frame.condition == "baseline"]
    at = frame[np.isclose(frame.strength, strength) & (frame.condition != "baseline")]
    rows = {}
    for emotion in labels:
        part = at[(at.method == method) & (at["mask"] == emotion)]
        if len(part):
            rows[emotion] = [100 * (recall(part, c) - recall(base, c)) for c in labels]
    rnd = at[at.method == "rnd"]
    if len(rnd):
        rows["rnd"] = [100 * (np.mean([recall(g, c) for _, g in rnd.groupby("condition")])
                              - recall(base, c)) for c in labels]
    return rows


def summaries(rows: dict[str, list[float]], labels: list[str]) -> dict[str, float]:
    emotions = [r for r in rows if r != "rnd"]
    diag = [rows[e][labels.index(e)] for e in emotions]
    off = [v for e in emotions for j, v in enumerate(rows[e]) if labels[j] != e]
    out = {"self": float(np.mean(diag)), "cross": float(np.mean(off)),
           "cross_abs": float(np.mean(np.abs(off)))}
    out["gap"] = out["self"] - out["cross"]
    if "rnd" in rows:
        out["rnd"] = float(np.mean(rows["rnd"]))
        out["rnd_abs"] = float(np.mean(np.abs(rows["rnd"])))
    return out


@functools.cache
def resampled_recalls(folder: Path) -> tuple[np.ndarray, xr.Dataset]:
    """Recall ``(resample, condition, emotion)``, resampling items within each gold emotion
    the way esn's evaluate module does (per resample, per emotion in label order)."""
    ds = xr.open_zarr(folder / "results.zarr", consolidated=False).load()
    parsed, gold = ds.parsed.values.astype(object), ds.emotion.values.astype(object)
    labels = list(ds.attrs["labels"])
    rng = np.random.default_rng(SEED)
    strata = [np.flatnonzero(gold == e) for e in labels]
    out = np.empty((N_BOOT, len(parsed), len(labels)))
    for b in range(N_BOOT):
        idx = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata])
        for j, e in enumerate(labels):
            mine = idx[gold[idx] == e]
            out[b, :, j] = (parsed[:, mine] == e).mean(axis=1)
    return out, ds


def bootstrap(folder: Path, method: str, strength: float) -> dict[str, list[float]]:
    """95% percentile intervals of the summaries over the resamples."""
    boot, ds = resampled_recalls(folder)
    labels = list(ds.attrs["labels"])
    meth, mask, power = ds.method.values, ds["mask"].values, ds.strength.values
    base = list(meth).index("baseline")
    members = {e: [k for k in range(len(meth)) if meth[k] == method and mask[k] == e
                   and np.isclose(power[k], strength)] for e in labels}
    members = {e: k for e, k in members.items() if k}
    rnd = [k for k in range(len(meth)) if meth[k] == "rnd" and np.isclose(power[k], strength)]
    if rnd:
        members["rnd"] = rnd
    samples: dict[str, list[float]] = {}
    for rec in boot:
        rows = {row: list(100 * (rec[ks].mean(axis=0) - rec[base]))
                for row, ks in members.items()}
        for key, value in summaries(rows, labels).items():
            samples.setdefault(key, []).append(value)
    return {k: list(np.percentile(v, [2.5, 97.5])) for k, v in samples.items()}


def folder_of(summary: dict[str, Any], rid: str) -> Path:
    return Path(next(r["path"] for r in summary["results"] if r["id"] == rid))


def study(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in summary["studies"] if s["id"] == name)


# --- the summary --------------------------------------------------------------------------

def test_studies_group_by_model_and_identification_store(report, chain) -> None:
    _, summary = report
    by_study: dict[str, list[str]] = {}
    for r in summary["results"]:
        by_study.setdefault(r["study"], []).append(Path(r["path"]).name)
        context = json.loads((Path(r["path"]) / "summary.json").read_text())["context"]
        assert r["fraction"] == context["fraction"] and r["transfer"] == context["transfer"]
    assert by_study == {"s1": ["deact", "deact_big", "steer", "pool2", "a_to_b"], "s2": ["b"]}
    assert [r["pool_size"] for r in summary["results"]] == [3, 3, 3, 2, 3, 3]


def test_heatmaps_recompute_from_the_answers(report) -> None:
    _, summary = report
    seen = set()
    for s in summary["studies"]:
        for h in s["heatmaps"]:
            frame = answers(folder_of(summary, h["results"]))
            rows = delta_rows(frame, h["columns"], h["method"], h["strength"])
            assert h["rows"] == list(rows)
            np.testing.assert_allclose(np.array(h["delta"], dtype=float),
                                       np.array(list(rows.values())), atol=1e-9)
            seen.add((h["results"], h["method"], h["strength"]))
    for r in summary["results"]:  # every (method, strength) of every folder is shown
        frame = answers(Path(r["path"]))
        swept = frame[~frame.method.isin(["baseline", "rnd"])]
        expected = {(r["id"], m, s) for m, s in zip(swept.method, swept.strength, strict=True)}
        assert {k for k in seen if k[0] == r["id"]} == expected
    lowest = min(v for s in summary["studies"] for h in s["heatmaps"] for row in h["delta"]
                 for v in row)
    assert lowest <= -20  # the planted circuit gives the data a real effect to show


def test_bars_and_verdicts_recompute_with_their_intervals(report) -> None:
    _, summary = report
    s1 = study(summary, "s1")
    verdict_folders = set()
    for v in [*s1["verdicts"], *study(summary, "s2")["verdicts"]]:
        folder = folder_of(summary, v["results"])
        verdict_folders.add(folder.name)
        labels = json.loads((folder / "summary.json").read_text())["labels"]
        point = summaries(delta_rows(answers(folder), labels, v["method"], v["fraction"]),
                          labels)
        ci = bootstrap(folder, v["method"], v["fraction"])
        assert v["self"] == pytest.approx(point["self"])
        assert v["cross"] == pytest.approx(point["cross_abs"])
        assert v["rnd"] == pytest.approx(point["rnd_abs"])
        for key, mine in (("self", "self"), ("cross", "cross_abs"), ("rnd", "rnd_abs")):
            assert v[f"{key}_ci"] == pytest.approx(ci[mine])
        present = (point["self"] < 0 and ci["self"][1] < 0
                   and abs(point["self"]) >= FACTOR * point["cross_abs"]
                   and abs(point["self"]) >= FACTOR * point["rnd_abs"])
        assert v["present"] == present
        assert ("specific signature present" in v["text"]) == present
        assert bool(v["failed"]) != present
    # in-store deactivation only: not the steering, not the transfer
    assert verdict_folders == {"deact", "deact_big", "pool2", "b"}
    for b in s1["bars"]:
        folder = folder_of(summary, b["results"])
        labels = json.loads((folder / "summary.json").read_text())["labels"]
        rows = delta_rows(answers(folder), labels,
                          b["method"] if b["method"] != "rnd" else "mad", b["strength"])
        point, ci = summaries(rows, labels), None
        if b["method"] == "rnd":
            assert b["self"] == pytest.approx(point["rnd"]) == b["cross"]
            continue
        ci = bootstrap(folder, b["method"], b["strength"])
        for key in ("self", "cross", "gap"):
            assert b[key] == pytest.approx(point[key])
            assert b[f"{key}_ci"] == pytest.approx(ci[key])


def test_curves_recompute(report) -> None:
    _, summary = report
    s1 = study(summary, "s1")
    (fraction,) = s1["fraction_curves"]
    assert fraction["pool_size"] == 3
    assert {(p["method"], p["fraction"]) for p in fraction["points"]} == {
        (m, f) for m in ("mad", "conact", "rnd") for f in (SMALL, BIG)}
    for p in fraction["points"]:
        folder = folder_of(summary, p["results"])
        assert folder.name == ("deact" if p["fraction"] == SMALL else "deact_big")
        labels = json.loads((folder / "summary.json").read_text())["labels"]
        point = summaries(delta_rows(answers(folder), labels,
                                     "mad" if p["method"] == "rnd" else p["method"],
                                     p["fraction"]), labels)
        if p["method"] == "rnd":
            assert p["self"] == pytest.approx(point["rnd"]) and p["gap"] is None
        else:
            assert (p["self"], p["gap"]) == pytest.approx((point["self"], point["gap"]))
    (alpha,) = s1["alpha_curves"]
    assert {(p["method"], p["alpha"]) for p in alpha["points"]} == {
        (m, a) for m in ("mad", "conact", "rnd") for a in (1.0, 4.0)}
    frame = answers(folder_of(summary, alpha["points"][0]["results"]))
    labels = sorted(set(frame.emotion))
    base = frame[frame.condition == "baseline"]
    for p in alpha["points"]:
        at = frame[np.isclose(frame.strength, p["alpha"])]
        if p["method"] == "rnd":
            rnd = at[at.method == "rnd"]
            share = np.mean([(rnd.parsed == e).mean() for e in labels])
            assert p["self"] == pytest.approx(np.mean(delta_rows(frame, labels, "mad",
                                                                 p["alpha"])["rnd"]))
        else:
            mine = at[at.method == p["method"]]
            share = np.mean([(g.parsed == e).mean() for e, g in mine.groupby("mask")])
            rows = delta_rows(frame, labels, p["method"], p["alpha"])
            assert p["self"] == pytest.approx(summaries(rows, labels)["self"])
        assert p["target_share"] == pytest.approx(100 * share)
        assert p["baseline_share"] == pytest.approx(
            100 * np.mean([(base.parsed == e).mean() for e in labels]))
    (pool,) = [c for c in s1["id_size_curves"] if c["mode"] == "deactivate"]
    assert pool["strength"] == SMALL
    assert {(p["method"], p["pool_size"]) for p in pool["points"]} == {
        (m, n) for m in ("mad", "conact", "rnd") for n in (2, 3)}
    for p in pool["points"]:
        folder = folder_of(summary, p["results"])
        assert folder.name == ("pool2" if p["pool_size"] == 2 else "deact")
        pools = json.loads((folder / "neuron_sets.json").read_text())["pool"]["item_ids"]
        assert min(len(v) for v in pools.values()) == p["pool_size"]
        labels = json.loads((folder / "summary.json").read_text())["labels"]
        point = summaries(delta_rows(answers(folder), labels, "mad" if p["method"] == "rnd"
                                     else p["method"], SMALL), labels)
        assert p["self"] == pytest.approx(point["rnd" if p["method"] == "rnd" else "self"])


def test_layer_counts_recompute_from_the_neuron_sets(report) -> None:
    _, summary = report
    s1 = study(summary, "s1")
    assert len(s1["layers"]) == 3  # three distinct set files in study a
    for entry in [*s1["layers"], *study(summary, "s2")["layers"]]:
        sets = json.loads((folder_of(summary, entry["results"]) / "neuron_sets.json")
                          .read_text())
        assert entry["fraction"] == sets["fraction"] and entry["n_layers"] == sets["n_layers"]
        shown = {(s["method"], s["emotion"]): s for s in entry["sets"]}
        assert set(shown) == {(m, e) for m in sets["methods"] for e in sets["emotions"]}
        for (method, emotion), s in shown.items():
            pairs = sets["methods"][method]["sets"][emotion]
            counts = Counter(layer for layer, _ in pairs)
            assert s["counts"] == [counts.get(i, 0) for i in range(sets["n_layers"])]
            assert s["share"] == pytest.approx([100 * counts.get(i, 0) / len(pairs)
                                                for i in range(sets["n_layers"])])
        for rid in entry["also"]:  # folders listed as sharing the sets do share them
            other = json.loads((folder_of(summary, rid) / "neuron_sets.json").read_text())
            assert other["methods"] == sets["methods"]


def test_transfer_matrix_recomputes(report) -> None:
    _, summary = report
    (t,) = summary["transfer"]
    assert t["mode"] == "deactivate" and t["strength"] == SMALL
    expected = {}
    for r in summary["results"]:
        context = json.loads((Path(r["path"]) / "summary.json").read_text())["context"]
        if context["fraction"] == SMALL and r["pool_size"] == 3 and r["mode"] == "deactivate":
            expected[(Path(context["store"]).name, Path(context["eval_store"]).name)] = r
    assert set(expected) == {("a.zarr", "a.zarr"), ("a.zarr", "b.zarr"), ("b.zarr", "b.zarr")}
    assert {(Path(c["ident"]).name, Path(c["eval"]).name) for c in t["cells"]} == set(expected)
    for c in t["cells"]:
        r = expected[(Path(c["ident"]).name, Path(c["eval"]).name)]
        assert c["results"] == r["id"]
        rows = delta_rows(answers(Path(r["path"])), r["labels"], c["method"], SMALL)
        point = summaries(rows, r["labels"])
        assert (c["self"], c["gap"]) == pytest.approx((point["self"], point["gap"]))


def test_baseline_table_and_checks(report) -> None:
    _, summary = report
    for s in summary["studies"]:
        for b in s["baseline"]:
            frame = answers(folder_of(summary, b["results"]))
            base = frame[frame.condition == "baseline"]
            assert b["n_items"] == len(base)
            expected = {e: 100 * recall(base, e) for e in sorted(set(base.emotion))}
            assert b["recall"] == pytest.approx(expected)
            assert b["uar"] == pytest.approx(np.mean(list(expected.values())))
    s1 = study(summary, "s1")
    deact = next(r["id"] for r in summary["results"] if Path(r["path"]).name == "deact")
    assert s1["checks"] == [{"results": deact, **c} for c in CHECKS]
    assert study(summary, "s2")["checks"] == []


# --- the page -----------------------------------------------------------------------------

def test_page_is_self_contained_and_shows_every_figure(report) -> None:
    out, summary = report
    page = (out / "report.html").read_text()
    figures = summary["figures"]
    kinds = Counter(f["kind"] for f in figures)
    assert kinds == {"heatmap": 7, "bars": 7, "alpha": 1, "fraction": 1, "id_size": 1,
                     "layers": 4, "transfer": 1, "grid": 1, "alpha_grid": 1}
    assert page.count("<img ") == len(figures)
    for f in figures:
        data = (out / "figures" / f["file"]).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert base64.b64encode(data).decode() in page
        vector = (out / "figures" / f["vector"]).read_text()  # the same figure for papers
        assert vector.lstrip().startswith("<?xml") and "<svg" in vector
    referenced = {x["figure"] for s in summary["studies"]
                  for key in ("heatmaps", "bars", "alpha_curves", "fraction_curves",
                              "id_size_curves", "layers") for x in s[key]}
    referenced |= {t["figure"] for t in summary["transfer"]}
    referenced |= {f[key] for f in summary["findings"] for key in ("grid", "alpha_grid")}
    assert referenced == {f["file"] for f in figures}
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing fetched from outside
    assert "<link" not in page and "@import" not in page
    assert "|self| &gt;= 3 x cross" in page  # the rule is written in the page
    for s in summary["studies"]:
        for v in s["verdicts"]:
            assert html.escape(v["text"]) in page


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (apt-get install chromium)")
def test_page_renders_in_a_browser(report, tmp_path: Path) -> None:
    """Rendered in headless Chromium at 1280 x 900: every image decoded, the findings on the
    first screen before any table, nothing wider than the window; and its screenshot."""
    out, summary = report
    body = rendered_body(out / "report.html")
    assert int(body["images-decoded"]) == int(body["images-total"]) == len(summary["figures"])
    assert body["findings-before-tables"] == "true"
    assert float(body["findings-top"]) < float(body["findings-bottom"]) <= SCREEN[1]
    assert int(body["document-width"]) <= int(body["viewport-width"]) == SCREEN[0]
    shot = screenshot(out / "report.html", tmp_path / "first-screen.png", SCREEN)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_findings_recompute_from_the_answers(report) -> None:
    """The opening summary: the baseline UAR and its interval, the best method by the rule
    (a present signature with the most negative self, else the most negative self + cross),
    its steering at the largest alpha and its transfer, all recomputed from answers.csv."""
    _, summary = report
    (entry,) = summary["findings"]
    s1 = study(summary, "s1")
    verdicts = []
    for v in s1["verdicts"]:
        folder = folder_of(summary, v["results"])
        labels = json.loads((folder / "summary.json").read_text())["labels"]
        point = summaries(delta_rows(answers(folder), labels, v["method"], v["fraction"]),
                          labels)
        ci = bootstrap(folder, v["method"], v["fraction"])
        present = (point["self"] < 0 and ci["self"][1] < 0
                   and abs(point["self"]) >= FACTOR * point["cross_abs"]
                   and abs(point["self"]) >= FACTOR * point["rnd_abs"])
        score = point["self"] if present else point["self"] + point["cross_abs"]
        verdicts.append((not present, score, v["results"], v["method"], v["fraction"], point,
                         ci))
    _, _, rid, method, fraction, point, ci = min(verdicts, key=lambda t: t[:2])
    best = entry["best"]
    assert (best["results"], best["method"], best["fraction"]) == (rid, method, fraction)
    assert best["self"] == pytest.approx(point["self"])
    assert best["self_ci"] == pytest.approx(ci["self"])
    assert best["cross"] == pytest.approx(point["cross_abs"])
    assert best["rnd"] == pytest.approx(point["rnd_abs"])
    folder = folder_of(summary, rid)
    frame = answers(folder)
    labels = json.loads((folder / "summary.json").read_text())["labels"]
    base = frame[frame.condition == "baseline"]
    assert entry["uar"] == pytest.approx(100 * np.mean([recall(base, e) for e in labels]))
    boot, ds = resampled_recalls(folder)
    baseline = list(ds.method.values).index("baseline")
    uar = 100 * boot[:, baseline, :].mean(axis=-1)
    assert entry["uar_ci"] == pytest.approx(list(np.percentile(uar, [2.5, 97.5])))
    counts = base.emotion.value_counts()
    assert entry["min_per_emotion"] == int(counts.min())
    assert (entry["caveat"] is not None) == (counts.min() < 30)
    # Steering: the best method at the largest alpha of the steering folder.
    steer = answers(folder_of(summary, entry["steering"]["results"]))
    top = float(steer.strength[steer.method == method].max())
    assert entry["steering"]["alpha"] == top
    rows = delta_rows(steer, labels, method, top)
    assert entry["steering"]["self"] == pytest.approx(summaries(rows, labels)["self"])
    # Transfer: the best method, identified on a, evaluated on b.
    (cell,) = entry["transfer"]
    transfer = answers(folder_of(summary, cell["results"]))
    point = summaries(delta_rows(transfer, labels, method, cell["fraction"]), labels)
    assert (cell["self"], cell["gap"]) == pytest.approx((point["self"], point["gap"]))
    # The sentences say these numbers; the page and the terminal show the sentences.
    text = " ".join(entry["text"])
    assert f"{entry['uar']:.1f}%" in text and f"{best['self']:+.1f}" in text
    assert ("a specific signature" in text) == best["present"]


def test_esn_report_prints_the_findings(chain, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from esn.cli import main

    result = CliRunner().invoke(main, ["report", str(chain["deact"]), str(chain["steer"]),
                                       "--out", str(tmp_path / "r"), "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    (entry,) = summary["findings"]
    lines = result.output.splitlines()
    assert lines[0] == f"{entry['model']}:"
    assert [line.strip() for line in lines[1:1 + len(entry["text"])]] == entry["text"]


# --- edge cases ---------------------------------------------------------------------------

def test_a_single_folder(chain, tmp_path: Path) -> None:
    page = build_report([chain["deact"]], tmp_path / "one", n_boot=20)
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    (s,) = summary["studies"]
    assert len(s["verdicts"]) == 2 and not summary["transfer"]
    assert not (s["alpha_curves"] or s["fraction_curves"] or s["id_size_curves"])
    assert summary["title"] == "esn report" and "esn report" in page.read_text()


def test_steering_only_has_no_verdict(chain, tmp_path: Path) -> None:
    page = build_report([chain["steer"]], tmp_path / "steer", n_boot=20)
    summary = json.loads((tmp_path / "steer" / "summary.json").read_text())
    (s,) = summary["studies"]
    assert s["verdicts"] == [] and len(s["alpha_curves"]) == 1
    assert {h["strength"] for h in s["heatmaps"]} == {1.0, 4.0}
    assert "no verdict" in page.read_text()


def test_optional_files_may_be_missing(chain, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(chain["deact"] / "results.zarr", bare / "results.zarr")
    build_report([bare], tmp_path / "out", n_boot=20)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    (r,) = summary["results"]
    assert r["fraction"] is None and r["pool_size"] is None and not r["checks"]
    (s,) = summary["studies"]
    assert s["layers"] == [] and s["checks"] == []
    assert s["heatmaps"] and s["verdicts"]  # the answers alone give the effects
    full = json.loads((chain["deact"] / "summary.json").read_text())["context"]
    assert r["store"] == str(Path(full["store"]))


def test_refuses_what_is_not_esn_results(chain, tmp_path: Path) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "readme.txt").write_text("hello")
    with pytest.raises(RequestError, match=re.escape(str(other))):
        build_report([chain["deact"], other], tmp_path / "out")
    with pytest.raises(RequestError, match="no such results folder"):
        build_report([tmp_path / "missing"], tmp_path / "out")
    with pytest.raises(RequestError, match="no results folders"):
        build_report([], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_checks_are_refused(chain, tmp_path: Path) -> None:
    folder = tmp_path / "deact"
    shutil.copytree(chain["deact"], folder)
    (folder / "checks.json").write_text(json.dumps([{"name": "x", "value": "high"}]))
    with pytest.raises(RequestError, match=re.escape(str(folder / "checks.json"))):
        build_report([folder], tmp_path / "out")


def test_a_report_is_remade_in_place_but_nothing_else_is_replaced(chain, tmp_path: Path
                                                                  ) -> None:
    out = tmp_path / "out"
    build_report([chain["b"]], out, n_boot=10)
    (out / "figures" / "stale.png").write_bytes(b"old")
    build_report([chain["b"], chain["deact"]], out, n_boot=10)  # an esn report: remade
    assert not (out / "figures" / "stale.png").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["results"]) == 2
    build_report([chain["b"], chain["deact"]], out, n_boot=10)
    assert json.loads((out / "summary.json").read_text()) == summary  # deterministic
    assert not list(out.glob("*.partial"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "summary.json").write_text('{"mine": 1}')
    for overwrite in (False, True):  # a folder esn did not write is never written into
        with pytest.raises(OutputRefusedError, match="not an esn report"):
            build_report([chain["b"]], foreign, n_boot=10, overwrite=overwrite)
    assert [p.name for p in foreign.iterdir()] == ["summary.json"]
    assert (foreign / "summary.json").read_text() == '{"mine": 1}'
    with pytest.raises(RequestError, match="is a results folder"):
        build_report([chain["b"]], chain["b"], n_boot=10, overwrite=True)
