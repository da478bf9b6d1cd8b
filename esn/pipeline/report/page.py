"""The report page: one self-contained HTML file (inline CSS, figures as base64 PNG, no
external resources), drawn from the summary dict and the figures' PNG bytes only."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["relative_paths", "render_page"]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1250px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #aaa; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 90%; }
.scroll { overflow-x: auto; max-width: 100%; } td.text { overflow-wrap: anywhere; }
.findings { background: #f4f8f1; border: 1px solid #cfe0c6; border-radius: 6px;
            padding: .4em 1.2em .8em; } .findings h2 { margin-top: .6em; border: none; }
.findings h3 { margin: .8em 0 .2em; } .findings li { margin: .15em 0; }
details { margin: .6em 0; } summary { cursor: pointer; font-weight: 600; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
tr.present td { background: #e3f4e1; } tr.absent td { background: #fafafa; }
figure { margin: 1em 0 1.6em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 88%; color: #444; margin-top: .3em; }
.rule { background: #f6f6fb; border-left: 4px solid #6a6ab0; padding: .6em 1em; }
.verdicts li { margin: .3em 0; } .muted { color: #777; } code { font-size: 90%; }
"""

SCRIPT = """
window.addEventListener("load", function () {
  var body = document.body;
  var images = Array.prototype.slice.call(document.images);
  var decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  body.setAttribute("data-images-decoded", String(decoded.length));
  body.setAttribute("data-images-total", String(images.length));
  // What a test of the first screen reads back (document width against the viewport's,
  // where the findings are and whether they come before the first table).
  body.setAttribute("data-document-width", String(document.documentElement.scrollWidth));
  body.setAttribute("data-viewport-width", String(window.innerWidth));
  var findings = document.getElementById("findings");
  var table = document.querySelector("table");
  if (findings) {
    body.setAttribute("data-findings-top", String(findings.getBoundingClientRect().top));
    body.setAttribute("data-findings-bottom",
                      String(findings.getBoundingClientRect().bottom));
    body.setAttribute("data-findings-before-tables", String(!table ||
      !!(findings.compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING)));
  }
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _n(value: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _ci(value: float | None, ci: Sequence[float] | None) -> str:
    text = _n(value, "{:+.2f}")
    return text + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")


def _pct(fraction: float | None) -> str:
    return "–" if fraction is None else f"{100 * fraction:.3g}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, text_cols: int = 1,
           row_classes: Sequence[str] | None = None) -> str:
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(f"<{tag}{' class=text' if i < text_cols else ''}>{v}</{tag}>"
                       for i, v in enumerate(values))
    body = "".join(f"<tr{f' class={row_classes[i]}' if row_classes else ''}>"
                   f"{cells('td', r)}</tr>" for i, r in enumerate(rows))
    return f"<div class=scroll><table><tr>{cells('th', header)}</tr>{body}</table></div>"


def _figures(figures: Sequence[Mapping[str, Any]], images: Mapping[str, bytes], study: str,
             kind: str) -> str:
    out = []
    for f in figures:
        if f["study"] == study and f["kind"] == kind:
            data = base64.b64encode(images[f["file"]]).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" '
                       f'alt="{_e(f["caption"])}"><figcaption>{_e(f["caption"])} '
                       f'<span class=muted>({_e(f["file"])})</span></figcaption></figure>')
    return "".join(out)


def _study(s: Mapping[str, Any], summary: Mapping[str, Any], images: Mapping[str, bytes],
           name: Callable[[str], str], label: Callable[[str], str],
           rel: Callable[[str], str]) -> str:
    sid, figures = s["id"], summary["figures"]
    parts = [f"<h2 id={sid}>Study {sid}: {_e(s['model'])}, neurons identified on "
             f"{_e(label(s['store']))}"
             + (f" ({_e(', '.join(_spec(c, rel) for c in s['corpus']))})" if s["corpus"]
                else "") + "</h2>",
             f"<p class=muted>Identification store: <code>{_e(rel(s['store']))}</code>; "
             f"results {_e(', '.join(name(r) for r in s['results']))}.</p>",
             f"<details><summary>Verdicts per fraction ({len(s['verdicts'])})</summary>"]
    if s["verdicts"]:
        rows = [[_e(name(v["results"])), _e(v["method"]), _pct(v["fraction"]),
                 _n(v["pool_size"], "{}"), _ci(v["self"], v["self_ci"]),
                 _ci(v["cross"], v["cross_ci"]), _ci(v["rnd"], v["rnd_ci"]),
                 "present" if v["present"] else "not present"] for v in s["verdicts"]]
        parts.append(_table(["results", "method", "fraction", "pool / emotion",
                             "self [95% CI]", "cross (mean |off-diag.|)",
                             "random (mean |RND|)", "specific signature"], rows, text_cols=2,
                            row_classes=["present" if v["present"] else "absent"
                                         for v in s["verdicts"]]))
        parts.append("<ul class=verdicts>" + "".join(
            f"<li>{_e(name(v['results']))}: {_e(v['text'])}</li>" for v in s["verdicts"])
            + "</ul>")
    else:
        parts.append("<p>No deactivation results evaluated on the identification store: "
                     "no verdict.</p>")
    parts.append("</details>")
    labels = list(dict.fromkeys(e for b in s["baseline"] for e in b["recall"]))
    parts.append("<details><summary>Baseline accuracy (recall per emotion, %) and UAR"
                 "</summary>")
    parts.append(_table(["results", "evaluation store", "items", *labels, "UAR"],
                        [[_e(name(b["results"])), _e(label(b["eval_store"])),
                          str(b["n_items"]), *(_n(b["recall"].get(e)) for e in labels),
                          _n(b["uar"])] for b in s["baseline"]], text_cols=2))
    parts.append("</details>")
    if s["checks"]:
        parts.append(f"<details><summary>Checks ({len(s['checks'])})</summary>")
        parts.append(_table(["results", "check", "value", "95% CI", "unit", "what"],
                            [[_e(name(c["results"])), _e(c["name"]), f"{c['value']:.4g}",
                              "–" if c["ci"] is None else
                              f"[{c['ci'][0]:.4g}, {c['ci'][1]:.4g}]", _e(c["unit"]),
                              _e(c["text"])] for c in s["checks"]], text_cols=2))
        parts.append("</details>")
    sections = [("heatmap", "Accuracy change per mask source and evaluated emotion"),
                ("bars", "Self versus cross effect"),
                ("alpha", "Dose-response over steering strength alpha"),
                ("fraction", "Dose-response over mask fraction"),
                ("id_size", "Identification-pool size"),
                ("layers", "Layer distribution of the selected neurons")]
    for kind, heading in sections:
        shown = _figures(figures, images, sid, kind)
        if shown:
            parts.append(f"<h3>{heading}</h3>{shown}")
    return "".join(parts)


def _spec(corpus: str, rel: Callable[[str], str]) -> str:
    """A corpus spec (``layout:path``) with its path shown relative."""
    layout, sep, path = corpus.partition(":")
    return f"{layout}:{rel(path)}" if sep and path else corpus


def relative_paths(base: Path | None) -> Callable[[str], str]:
    """Existing paths under ``base`` (the folder the report lives in) shown relative to it;
    anything else (a hub id, a URL, a path elsewhere) as it is."""
    def rel(path: str) -> str:
        if base is None or "://" in path:
            return path
        try:
            resolved = Path(path).resolve()
            if resolved.exists() and resolved.is_relative_to(base):
                return os.path.relpath(resolved, base)
        except (OSError, ValueError):
            pass
        return path
    return rel


def _findings(summary: Mapping[str, Any], images: Mapping[str, bytes],
              rel: Callable[[str], str]) -> str:
    parts = ["<section id=findings class=findings><h2>Findings</h2>"]
    for entry in summary.get("findings", []):
        parts.append(f"<h3>{_e(rel(entry['model']))}</h3><ul>"
                     + "".join(f"<li>{_e(line)}</li>" for line in entry["text"]) + "</ul>")
    parts.append("<p class=muted>Effects are accuracy changes in points (percent of an "
                 "emotion's test items) against the unchanged model on the same items, with "
                 "95% bootstrap intervals; a specific signature follows the verdict rule "
                 "(below, under Details).</p></section>")
    return "".join(parts) + _figures(summary["figures"], images, "", "grid") + _figures(
        summary["figures"], images, "", "alpha_grid")


def render_page(summary: Mapping[str, Any], images: Mapping[str, bytes], *, created: str = "",
                base: Path | None = None) -> str:
    """The whole page; ``images`` maps each figure's file name to its PNG bytes; paths
    under ``base`` are shown relative to it (``summary.json`` keeps them whole)."""
    results = {r["id"]: r for r in summary["results"]}
    rel = relative_paths(base)

    def name(rid: str) -> str:
        return f"{rid} ({results[rid]['name']})"

    labels = summary["store_labels"]

    def label(store: str) -> str:
        return labels.get(store, store)

    rows = [[_e(r["id"]), _e(rel(r["path"])), f"<a href=#{r['study']}>{r['study']}</a>",
             _e(r["mode"]), _e(r["model"]), _e(label(r["store"])), _e(label(r["eval_store"])),
             _pct(r["fraction"]), _n(r["pool_size"], "{}"),
             _e(", ".join(_pct(s) if r["mode"] == "deactivate" else f"{s:g}"
                          for s in r["strengths"])), str(r["n_items"]),
             "yes" if r["checks"] else "–"] for r in summary["results"]]
    parts = [f"<h1>{_e(summary['title'])}</h1>",
             f"<p class=muted>Made {_e(created)} by esn "
             f"{_e(summary['versions'].get('esn', ''))}; {summary['n_boot']} bootstrap "
             f"resamples, seed {summary['seed']}.</p>",
             _findings(summary, images, rel),
             "<h2>Details</h2>",
             f"<details><summary>Results folders ({len(rows)})</summary>",
             _table(["id", "folder", "study", "mode", "model", "identification store",
                     "evaluation store", "set fraction", "pool / emotion",
                     "strengths (fraction or alpha)",
                     "items", "checks"], rows, text_cols=7), "</details>",
             "<details><summary>Verdict rule</summary>",
             f"<p class=rule>{_e(summary['rule']['text'])}</p></details>"]
    for s in summary["studies"]:
        parts.append(_study(s, summary, images, name, label, rel))
    if summary["transfer"]:
        parts.append("<h2 id=transfer>Transfer across stores</h2>")
        parts.append(_figures(summary["figures"], images, "", "transfer"))
    body = "".join(parts)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>{_e(summary['title'])}</title><style>{CSS}</style></head>"
            f"<body>{body}<script>{SCRIPT}</script></body></html>\n")
