"""The report page: one self-contained HTML file (inline CSS, figures as base64 PNG, no
external resources), drawn from the summary dict and the figures' PNG bytes only."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["render_page"]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1250px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #aaa; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 90%; }
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
  var images = Array.prototype.slice.call(document.images);
  var decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images-decoded", String(decoded.length));
  document.body.setAttribute("data-images-total", String(images.length));
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
    return f"<table><tr>{cells('th', header)}</tr>{body}</table>"


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
           name: Callable[[str], str], label: Callable[[str], str]) -> str:
    sid, figures = s["id"], summary["figures"]
    parts = [f"<h2 id={sid}>Study {sid}: {_e(s['model'])}, neurons identified on "
             f"{_e(label(s['store']))}"
             + (f" ({_e(', '.join(s['corpus']))})" if s["corpus"] else "") + "</h2>",
             f"<p class=muted>Identification store: <code>{_e(s['store'])}</code>; results "
             f"{_e(', '.join(name(r) for r in s['results']))}.</p>", "<h3>Verdict</h3>"]
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
    labels = list(dict.fromkeys(e for b in s["baseline"] for e in b["recall"]))
    parts.append("<h3>Baseline accuracy (recall per emotion, %) and UAR</h3>")
    parts.append(_table(["results", "evaluation store", "items", *labels, "UAR"],
                        [[_e(name(b["results"])), _e(label(b["eval_store"])),
                          str(b["n_items"]), *(_n(b["recall"].get(e)) for e in labels),
                          _n(b["uar"])] for b in s["baseline"]], text_cols=2))
    if s["checks"]:
        parts.append("<h3>Checks</h3>")
        parts.append(_table(["results", "check", "value", "95% CI", "unit", "what"],
                            [[_e(name(c["results"])), _e(c["name"]), f"{c['value']:.4g}",
                              "–" if c["ci"] is None else
                              f"[{c['ci'][0]:.4g}, {c['ci'][1]:.4g}]", _e(c["unit"]),
                              _e(c["text"])] for c in s["checks"]], text_cols=2))
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


def render_page(summary: Mapping[str, Any], images: Mapping[str, bytes], *, created: str = ""
                ) -> str:
    """The whole page; ``images`` maps each figure's file name to its PNG bytes."""
    results = {r["id"]: r for r in summary["results"]}

    def name(rid: str) -> str:
        return f"{rid} ({results[rid]['name']})"

    labels = summary["store_labels"]

    def label(store: str) -> str:
        return labels.get(store, store)

    rows = [[_e(r["id"]), _e(r["path"]), f"<a href=#{r['study']}>{r['study']}</a>",
             _e(r["mode"]), _e(r["model"]), _e(label(r["store"])), _e(label(r["eval_store"])),
             _pct(r["fraction"]), _n(r["pool_size"], "{}"),
             _e(", ".join(_pct(s) if r["mode"] == "deactivate" else f"{s:g}"
                          for s in r["strengths"])), str(r["n_items"]),
             "yes" if r["checks"] else "–"] for r in summary["results"]]
    parts = [f"<h1>{_e(summary['title'])}</h1>",
             f"<p class=muted>Made {_e(created)} by esn "
             f"{_e(summary['versions'].get('esn', ''))}; {summary['n_boot']} bootstrap "
             f"resamples, seed {summary['seed']}. Accuracy changes are in points (percent of "
             "an emotion's test items), against the no-intervention baseline on the same "
             "items.</p>",
             "<h2>Results folders</h2>",
             _table(["id", "folder", "study", "mode", "model", "identification store",
                     "evaluation store", "set fraction", "pool / emotion",
                     "strengths (fraction or alpha)",
                     "items", "checks"], rows, text_cols=7),
             "<h2>Verdict rule</h2>", f"<p class=rule>{_e(summary['rule']['text'])}</p>"]
    for s in summary["studies"]:
        parts.append(_study(s, summary, images, name, label))
    if summary["transfer"]:
        parts.append("<h2 id=transfer>Transfer across stores</h2>")
        parts.append(_figures(summary["figures"], images, "", "transfer"))
    body = "".join(parts)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{_e(summary['title'])}</title><style>{CSS}</style></head>"
            f"<body>{body}<script>{SCRIPT}</script></body></html>\n")
