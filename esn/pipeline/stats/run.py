"""``esn stats``: per-neuron group comparisons over an activation store, written as Zarr.

The result is an ``xarray.Dataset`` (format ``esn-stats``, schema version 1) with
dimensions (``<by>``, layer, neuron): for each group of the grouping variable against the
rest (or, with two named groups, the first against the second) ``diff``, ``effect``
(Cohen's d), ``t`` (Welch) or ``u`` (Mann-Whitney), ``p_value`` and ``q_value``, plus
``n`` and ``n_rest`` (utterances on each side) over the group dimension. With
``covariates``: ``covariate_r/_p/_q`` (covariate, layer, neuron), ``partial_r/_p/_q``
(group, layer, neuron) and ``n_covariate`` (see ``covariates``).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from esn.errors import OutputRefusedError, RequestError, SchemaError
from esn.pipeline.dask_compute import Compute, dask_computer
from esn.pipeline.select.run import store_fingerprint
from esn.pipeline.stats.correction import CORRECTIONS, adjust
from esn.pipeline.stats.covariates import (
    CovariateDesign,
    covariate_design,
    covariate_statistics,
    covariate_sums,
    spearman_block,
)
from esn.pipeline.stats.groups import GROUPING_VARIABLES, Grouping, make_grouping
from esn.pipeline.stats.measures import MEASURES, as_dask, utterance_values
from esn.pipeline.stats.rank import (
    DEFAULT_BLOCK_BYTES,
    mann_whitney_block,
    rank_passes,
    run_rank_test,
)
from esn.pipeline.stats.welch import build_moments, centre_cells, welch_from_moments
from esn.provenance import library_versions
from esn.stores.activations import ActivationStore
from esn.stores.outputs import (
    OutputKind,
    claim_output,
    has_zarr_format,
    move_into_place,
    remove_own,
)

__all__ = ["FORMAT_NAME", "SCHEMA_VERSION", "STATS_OUTPUT", "StatsOptions", "StatsPlan",
           "TOP_CSV_OUTPUT", "build_stats", "claim_stats_output", "compute_stats", "format_top",
           "read_stats", "top_neurons", "write_stats", "write_top_csv"]

FORMAT_NAME = "esn-stats"
SCHEMA_VERSION = 1
#: A stats dataset is esn's when its Zarr group has the ``esn-stats`` format; its entries
#: are ``zarr.json`` and the arrays ``compute_stats`` can write (``move_into_place`` checks
#: that every array written is one of them).
STATS_OUTPUT = OutputKind(
    name="stats dataset", folder=True, recognise=has_zarr_format("", (FORMAT_NAME,)),
    entries=("zarr.json", "layer", "neuron", *GROUPING_VARIABLES, "diff", "effect", "t", "u",
             "df", "p_value", "q_value", "n", "n_rest", "n_covariate", "covariate*",
             "partial_*"),
)
TESTS: tuple[str, ...] = ("welch", "rank")


def _is_top_csv(fs: Any, path: str) -> bool:
    """A ``--csv`` table of ``top_neurons``: recognised by its header row."""
    try:
        with fs.open(path, "rb") as handle:
            header = handle.readline(4096).decode("utf-8").strip().split(",")
    except (OSError, UnicodeDecodeError):
        return False
    return (header[1:5] == ["layer", "neuron", "effect", "diff"]
            and header[-2:] == ["p_value", "q_value"])


#: The top-neurons table of ``esn stats --csv`` (a file, recognised by its header).
TOP_CSV_OUTPUT = OutputKind(name="top-neurons table", folder=False, recognise=_is_top_csv)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatsOptions:
    """What ``esn stats`` computes."""

    by: str = "emotion"
    test: str = "welch"
    within: str | None = None
    groups: tuple[str, ...] | None = None
    measure: str = "rate"
    span: str = "all"
    correction: str = "bh"
    scheduler: str | None = None
    block_bytes: int = DEFAULT_BLOCK_BYTES
    covariates: bool = False
    spearman: bool = False

    def __post_init__(self) -> None:
        if self.spearman and not self.covariates:
            raise RequestError("spearman needs covariates")
        if self.covariates and self.within is not None:
            raise RequestError("covariates do not combine with within; drop one of them")
        if self.test not in TESTS:
            raise RequestError(f"test must be one of {list(TESTS)}, got {self.test!r}")
        if self.measure not in MEASURES:
            raise RequestError(f"measure must be one of {list(MEASURES)}, got {self.measure!r}")
        if self.correction not in CORRECTIONS:
            raise RequestError(
                f"correction must be one of {list(CORRECTIONS)}, got {self.correction!r}")
        if self.within not in (None, "speaker"):
            raise RequestError(f"within must be 'speaker' or unset, got {self.within!r}")
        if self.groups is not None and (len(self.groups) != 2
                                        or self.groups[0] == self.groups[1]):
            raise RequestError(f"groups must name two different groups, got {self.groups}")
        if self.block_bytes < 1:
            raise RequestError("block_bytes must be positive")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["groups"] = list(self.groups) if self.groups else None
        return out


def _check_sizes(grouping: Grouping) -> np.ndarray:
    onehot = grouping.one_hot()
    n = onehot.sum(0)
    for g, size in zip(grouping.groups, n, strict=True):
        if size < 2:
            raise RequestError(f"group {g!r} of {grouping.by!r} has {int(size)} finished "
                               "utterance(s); a test needs at least 2")
        if len(grouping.index) - size < 2:
            raise RequestError(f"the rest of group {g!r} of {grouping.by!r} has fewer than 2 "
                               "utterances; a test needs at least 2 on each side")
    return onehot


def _speaker_onehot(store: ActivationStore, grouping: Grouping, within: str | None
                    ) -> np.ndarray:
    """``(m, speaker)`` membership when centring within speakers, else one column of ones."""
    if within is None:
        return np.ones((len(grouping.index), 1))
    labels = store.metadata("speaker")[grouping.index].astype(object)
    speakers = np.array(sorted(set(labels.tolist())), dtype=object)
    return (labels[:, None] == speakers[None]).astype(np.float64)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatsPlan:
    """The lazy work of one ``esn stats`` run (building it computes nothing).

    Attributes:
        grouping: Utterances that take part and their groups.
        onehot: ``(utterance, group)`` membership.
        speakers: ``(utterance, speaker)`` membership with ``--within speaker``, else None.
        n_cells: ``(group, speaker)`` utterance counts (one speaker column without within).
        moments: Lazy ``s1``, ``s2`` sums per (group, speaker) cell, (cell, layer, neuron).
        rank_passes: Lazy per-block values for the rank test (empty for Welch).
        shape: ``(layer, neuron)``.
        covariates: The acoustic design with ``covariates``, else None (its lazy sums are
            ``moments["aty"]`` and ``moments["yty"]``).
    """

    grouping: Grouping
    onehot: np.ndarray
    speakers: np.ndarray | None
    n_cells: np.ndarray
    moments: dict[str, da.Array]
    rank_passes: list[tuple[int, slice, da.Array]]
    shape: tuple[int, int]
    covariates: CovariateDesign | None = None


def build_stats(store: ActivationStore, options: StatsOptions) -> StatsPlan:
    """The lazy graph of a run. Reads metadata and T only.

    The moments are gathered per (group, speaker) cell so that ``--within speaker`` needs
    no second pass (see ``welch.centre_cells``); without it there is one speaker column.
    """
    if options.measure == "activation":
        store.require_sums("esn stats --measure activation")
    grouping = make_grouping(store, options.by, options.span, options.groups)
    onehot = _check_sizes(grouping)
    speakers = _speaker_onehot(store, grouping, options.within)
    cells = (onehot[:, :, None] * speakers[:, None, :]).reshape(len(onehot), -1)
    values = utterance_values(store.to_xarray(), grouping, options.measure, options.span)
    x = as_dask(values)
    s1, s2 = build_moments(x, cells)
    moments = {"s1": s1, "s2": s2}
    design = covariate_design(store, grouping, onehot) if options.covariates else None
    if design is not None:
        moments["aty"], moments["yty"] = covariate_sums(x, design)
    return StatsPlan(
        grouping=grouping, onehot=onehot, speakers=speakers if options.within else None,
        n_cells=cells.sum(0).reshape(onehot.shape[1], speakers.shape[1]),
        moments=moments, covariates=design,
        rank_passes=(rank_passes(x, options.block_bytes)
                     if options.test == "rank" or options.spearman else []),
        shape=(int(x.shape[1]), int(x.shape[2])))


def _rank_passes(plan: StatsPlan, options: StatsOptions, compute: Compute,
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The per-block passes: Mann-Whitney ``(2, group, layer, neuron)`` with the rank test and
    Spearman ``(2, covariate, layer, neuron)`` with ``spearman``, each block read once."""
    if not plan.rank_passes:
        return None, None
    if not options.spearman:
        return run_rank_test(plan.rank_passes, plan.shape, plan.onehot, plan.speakers,
                             lambda a: compute([a])[0]), None
    design = plan.covariates
    assert design is not None
    ranked = (np.empty((2, plan.onehot.shape[1], *plan.shape)) if options.test == "rank"
              else None)
    rho = np.empty((2, design.k, *plan.shape))
    for layer, columns, values in plan.rank_passes:
        block = compute([values])[0]
        if ranked is not None:
            ranked[:, :, layer, columns] = mann_whitney_block(block, plan.onehot, plan.speakers)
        rho[:, :, layer, columns] = spearman_block(block, design)
    return ranked, rho


def compute_stats(store_url: str, options: StatsOptions) -> xr.Dataset:
    """Run the tests over the store and return the result in memory.

    One streaming pass gives the moments (Welch, diff, effect); the rank test adds one pass
    per neuron block.
    """
    store = ActivationStore.open(store_url)
    plan = build_stats(store, options)
    grouping = plan.grouping
    with dask_computer(options.scheduler) as compute:
        names = list(plan.moments)    # s1, s2 (and the covariate sums): one pass
        computed = dict(zip(names, compute([plan.moments[k] for k in names]), strict=True))
        s1, s2 = computed["s1"], computed["s2"]
        ranked, spearman = _rank_passes(plan, options, compute)
    n, s1, s2 = centre_cells(plan.n_cells, s1, s2, centre=options.within is not None)
    welch = welch_from_moments(n, s1, s2)
    if ranked is not None:
        statistic, p, stat_values = "u", ranked[1], ranked[0]
    else:
        statistic, p, stat_values = "t", welch["p_value"], welch["t"]
    keep = slice(0, 1) if options.groups else slice(None)   # two groups: the first vs second
    by = options.by
    dims = (by, "layer", "neuron")
    layout = store.layout
    ds = xr.Dataset(
        {
            "diff": (dims, welch["diff"][keep]),
            "effect": (dims, welch["effect"][keep]),
            statistic: (dims, stat_values[keep]),
            "p_value": (dims, p[keep]),
            "q_value": (dims, adjust(p[keep], options.correction)),
            "n": ((by,), n[keep].astype(np.int64)),
            "n_rest": ((by,), (n.sum() - n)[keep].astype(np.int64)),
        },
        coords={by: list(grouping.groups[keep]), "layer": np.arange(layout.n_layers),
                "neuron": np.arange(layout.n_neurons)},
    )
    if options.test == "welch":
        ds["df"] = (dims, welch["df"][keep])
    if plan.covariates is not None:
        _add_covariates(ds, plan.covariates, computed, keep, options)
    if spearman is not None:
        cdims = ("covariate", "layer", "neuron")
        ds["covariate_rho"] = (cdims, spearman[0])
        ds["covariate_rho_p"] = (cdims, spearman[1])
        ds["covariate_rho_q"] = (cdims, adjust(spearman[1], options.correction))
    ds.attrs = {
        "format": FORMAT_NAME, "schema_version": SCHEMA_VERSION,
        "store": {"url": store.url, "fingerprint": store_fingerprint(store),
                  "model": store.attributes.model.id},
        "options": options.to_dict(),
        "comparison": (f"{options.groups[0]} vs {options.groups[1]}" if options.groups
                       else "each group vs the rest"),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    return ds


def _add_covariates(ds: xr.Dataset, design: CovariateDesign, sums: dict[str, np.ndarray],
                    keep: slice, options: StatsOptions) -> None:
    cov = covariate_statistics(design, sums["aty"], sums["yty"])
    cdims = ("covariate", "layer", "neuron")
    pdims = (options.by, "layer", "neuron")
    ds["covariate_r"] = (cdims, cov["r"])
    ds["covariate_p"] = (cdims, cov["p"])
    ds["covariate_q"] = (cdims, adjust(cov["p"], options.correction))
    ds["partial_r"] = (pdims, cov["partial_r"][keep])
    ds["partial_p"] = (pdims, cov["partial_p"][keep])
    ds["partial_q"] = (pdims, adjust(cov["partial_p"][keep], options.correction))
    ds["n_covariate"] = ((), design.n)
    ds.coords["covariate"] = np.array(design.names, dtype=object)


def claim_stats_output(out: str, *, overwrite: bool = False, csv: str | None = None) -> None:
    """Check, before any pass, that ``write_stats`` may write ``out``: a new path, an empty
    folder or (with ``overwrite``) an earlier esn stats dataset, and that its
    ``out.partial`` sibling is free or an interrupted run's; and that ``csv`` is new or
    (with ``overwrite``) a table esn wrote. Anything else is refused
    (``OutputRefusedError``; ``StoreExistsError`` for esn's own without ``overwrite``).
    The dataset is small and moved into place by a rename, so ``out`` is a local path (the
    store it is computed from may be anywhere)."""
    for path in (out, csv):
        if path is not None and "://" in path and not path.startswith("file://"):
            raise RequestError(f"{path}: esn stats writes its outputs to a local path (the "
                               "store may be on any fsspec URL); copy them afterwards")
    claim_output(out, STATS_OUTPUT, overwrite=overwrite)
    claim_output(_partial(Path(out)), STATS_OUTPUT, overwrite=True)
    if csv is not None:
        claim_output(csv, TOP_CSV_OUTPUT, overwrite=overwrite)


def write_top_csv(table: pd.DataFrame, path: str, *, overwrite: bool = False) -> None:
    """Write ``top_neurons``' table as CSV, through a temporary file renamed into place."""
    claim_output(path, TOP_CSV_OUTPUT, overwrite=overwrite)
    target = Path(path)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    table.to_csv(tmp, index=False)
    tmp.replace(target)


def write_stats(ds: xr.Dataset, out: str, *, overwrite: bool = False) -> None:
    """Write ``ds`` as Zarr v3: to ``out.partial`` first, moved into place at the end (an
    earlier dataset loses only its own arrays; see ``claim_stats_output``)."""
    claim_stats_output(out, overwrite=overwrite)
    target = Path(out)
    partial = _partial(target)
    remove_own(partial, STATS_OUTPUT)  # an interrupted run's
    if partial.exists():
        if any(partial.iterdir()):
            raise OutputRefusedError(f"{partial} holds files esn did not write; remove them")
        partial.rmdir()
    by = ds.attrs["options"]["by"]
    strings = [c for c in (by, "covariate") if c in ds.coords]
    ds = ds.assign_coords({c: np.array(ds[c].values.tolist(), dtype=object)  # vlen str
                           for c in strings})
    ds.to_zarr(partial, mode="w", zarr_format=3, consolidated=False)
    move_into_place(partial, target, STATS_OUTPUT, last=("zarr.json",))


def _partial(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def read_stats(path: str) -> xr.Dataset:
    """Open a stats dataset written by ``write_stats`` (lazy), checking format and version."""
    ds = xr.open_zarr(path, consolidated=False, zarr_format=3)
    if ds.attrs.get("format") != FORMAT_NAME or ds.attrs.get("schema_version") != SCHEMA_VERSION:
        raise SchemaError(f"{path} is not an {FORMAT_NAME} v{SCHEMA_VERSION} dataset")
    return ds


def top_neurons(ds: xr.Dataset, n: int = 10) -> pd.DataFrame:
    """Tidy table of the ``n`` strongest neurons per group: smallest q, then largest |effect|."""
    by = ds.attrs.get("options", {}).get("by") or next(iter(ds.dims))
    statistic = "u" if "u" in ds else "t"
    rows = []
    for group in ds[by].values.tolist():
        g = ds.sel({by: group})
        frame = pd.DataFrame({
            "layer": np.repeat(ds.layer.values, ds.sizes["neuron"]),
            "neuron": np.tile(ds.neuron.values, ds.sizes["layer"]),
            **{v: g[v].values.ravel() for v in ("effect", "diff", statistic, "p_value",
                                                "q_value")},
        })
        frame["_abs"] = -np.abs(frame["effect"].fillna(0.0))
        frame = frame.sort_values(["q_value", "_abs"], na_position="last", kind="stable")
        frame = frame.drop(columns="_abs").head(n)
        frame.insert(0, by, group)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def format_top(table: pd.DataFrame) -> str:
    """The summary table printed by ``esn stats``."""
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}")

