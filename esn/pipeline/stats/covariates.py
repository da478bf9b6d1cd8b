"""Acoustic covariates of neuron values (``esn stats --covariates``), streamed in one pass.

For the utterances of a grouping that have every acoustic descriptor, the design is
``A = [1, Z, G]``: an intercept, the ``k`` standardised descriptors ``Z`` and the ``g``
group indicators ``G`` (small, ``(utterance, 1 + k + g)``). Per neuron the only sums that
touch the store are ``A^T y`` and ``y^T y``, so they stream with the Welch moments. Then

- Pearson ``r(y, z_j) = S_zy / sqrt(S_zz S_yy)`` (centred sums), ``p`` from Student's t
  with ``n - 2`` degrees of freedom (as ``scipy.stats.pearsonr``);
- optionally Spearman ``rho`` (Pearson of average ranks; ``p`` from t with ``n - 2`` df,
  as ``scipy.stats.spearmanr``), computed on blocks of whole neuron columns as the rank
  test (``rank.rank_passes``);
- the partial correlation of ``y`` with the indicator of group ``g`` given ``[1, Z]``:
  with ``M = [1 Z]^T [1 Z]``, ``e_y^T e_g = y^T g - (Z1^T y)^T M^-1 (Z1^T g)``,
  ``e_y^T e_y = y^T y - (Z1^T y)^T M^-1 (Z1^T y)`` and likewise ``e_g^T e_g`` (least-squares
  residuals); ``p`` from t with ``n - 2 - k`` degrees of freedom.
"""

from __future__ import annotations

import dataclasses

import dask.array as da
import numpy as np
from scipy import stats as sps

from esn.errors import RequestError
from esn.pipeline.stats.acoustics import DESCRIPTORS, read_acoustics
from esn.pipeline.stats.groups import Grouping
from esn.stores.activations import ActivationStore

__all__ = ["CovariateDesign", "covariate_design", "covariate_statistics", "covariate_sums",
           "spearman_block"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CovariateDesign:
    """The per-utterance design of the covariate analysis.

    Attributes:
        names: Descriptor names (the ``covariate`` dimension).
        rows: ``(m,)`` bool, utterances of the grouping that have every descriptor.
        design: ``(n, 1 + k + g)`` float64 ``[1, Z, G]`` of those rows (Z standardised).
    """

    names: tuple[str, ...]
    rows: np.ndarray
    design: np.ndarray

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def n(self) -> int:
        return int(self.design.shape[0])


def covariate_design(store: ActivationStore, grouping: Grouping,
                     onehot: np.ndarray) -> CovariateDesign:
    """Read the descriptors of the grouping's utterances; ``RequestError`` if not measured."""
    acoustics = read_acoustics(store)
    done = acoustics["acoustic_done"].values[grouping.index]
    if not done.all():
        raise RequestError(
            f"{int((~done).sum())} finished utterance(s) of {store.url} have no acoustic "
            f"descriptors yet; run `esn acoustics --store {store.url}` first")
    names = tuple(DESCRIPTORS)
    z = np.stack([acoustics[f"acoustic_{n}"].values[grouping.index] for n in names], axis=1)
    rows = np.isfinite(z).all(1)
    z = z[rows]
    n = len(z)
    if n < len(names) + 4:
        raise RequestError(f"only {n} utterance(s) have every acoustic descriptor; the "
                           f"covariate analysis needs at least {len(names) + 4}")
    sd = z.std(0)
    if (sd == 0).any():
        const = [nm for nm, s in zip(names, sd, strict=True) if s == 0]
        raise RequestError(f"acoustic descriptor(s) {const} are constant over the utterances")
    z = (z - z.mean(0)) / sd
    design = np.concatenate([np.ones((n, 1)), z, onehot[rows]], axis=1)
    return CovariateDesign(names=names, rows=rows, design=design)


def covariate_sums(x: da.Array, design: CovariateDesign) -> tuple[da.Array, da.Array]:
    """Lazy ``A^T y`` (1 + k + g, layer, neuron) and ``y^T y`` (layer, neuron) of ``x``
    (utterance, layer, neuron), over the design's rows."""
    rows = np.flatnonzero(design.rows)
    y = x if len(rows) == x.shape[0] else x[rows]
    a = da.from_array(design.design, chunks=(y.chunks[0], -1))
    aty = da.einsum("up,uln->pln", a, y, dtype=np.float64)
    return aty, (y * y).sum(0)


def _t_p(r: np.ndarray, df: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df / np.maximum(1.0 - r * r, 0.0))
    return np.where(np.isnan(r), np.nan, 2 * sps.t.sf(np.abs(t), df))


def covariate_statistics(design: CovariateDesign, aty: np.ndarray,
                         yty: np.ndarray) -> dict[str, np.ndarray]:
    """``r``, ``p`` (covariate, layer, neuron) and ``partial_r``, ``partial_p``
    (group, layer, neuron) from the streamed sums."""
    a, n, k = design.design, design.n, design.k
    gram = a.T @ a
    shape = yty.shape
    aty = aty.reshape(aty.shape[0], -1)
    yty = yty.reshape(-1)
    sy = aty[0]
    syy = yty - sy * sy / n
    tiny = 1e-12 * np.maximum(np.abs(yty), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        szz = np.diag(gram)[1:1 + k]                      # Z has mean 0
        r = aty[1:1 + k] / np.sqrt(szz[:, None] * syy[None])
        r = np.where(syy[None] > tiny[None], np.clip(r, -1, 1), np.nan)
        m = gram[: 1 + k, : 1 + k]
        z1y = aty[: 1 + k]
        eyy = yty - np.einsum("pi,pi->i", z1y, np.linalg.solve(m, z1y))
        gamma = np.linalg.solve(m, gram[: 1 + k, 1 + k:])          # (1 + k, g)
        egg = np.diag(gram)[1 + k:] - np.einsum("pg,pg->g", gram[: 1 + k, 1 + k:], gamma)
        eyg = aty[1 + k:] - gamma.T @ z1y                          # (g, neurons)
        partial = eyg / np.sqrt(egg[:, None] * eyy[None])
        partial = np.where((eyy > tiny)[None] & (egg > 1e-12)[:, None],
                           np.clip(partial, -1, 1), np.nan)
    return {
        "r": r.reshape(k, *shape), "p": _t_p(r, n - 2).reshape(k, *shape),
        "partial_r": partial.reshape(-1, *shape),
        "partial_p": _t_p(partial, n - 2 - k).reshape(-1, *shape),
    }


def spearman_block(x: np.ndarray, design: CovariateDesign) -> np.ndarray:
    """``(m, column)`` values of all the grouping's utterances -> ``(2, covariate, column)``
    Spearman rho and p over the design's rows."""
    y = sps.rankdata(x[design.rows], axis=0)
    z = sps.rankdata(design.design[:, 1:1 + design.k], axis=0)
    y = y - y.mean(0)
    z = z - z.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (z.T @ y) / np.sqrt((z * z).sum(0)[:, None] * (y * y).sum(0)[None])
    rho = np.where((y * y).sum(0)[None] > 0, np.clip(rho, -1, 1), np.nan)
    return np.stack([rho, _t_p(rho, design.n - 2)])
