"""How the out-of-core steps (``esn select``, ``esn stats``) compute their Dask graphs: on a
distributed scheduler when given its address (one client for the whole run), else on local
threads with one BLAS thread per task."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import dask
import dask.array as da
import numpy as np
import threadpoolctl

__all__ = ["Compute", "dask_computer"]

Compute = Callable[[list[da.Array]], list[np.ndarray]]


@contextlib.contextmanager
def dask_computer(scheduler: str | None) -> Iterator[Compute]:
    """A ``compute(arrays) -> list of numpy arrays`` valid while the context lasts."""
    if scheduler:
        from distributed import Client

        with Client(scheduler) as client:
            yield lambda arrays: [np.asarray(a) for a in client.compute(arrays, sync=True)]
    else:
        # Dask's threads already use every core: one BLAS thread per task, or the two
        # levels of threads fight over the cores (measured: ~20% slower on 2 cores).
        def local(arrays: list[da.Array]) -> list[np.ndarray]:
            with threadpoolctl.threadpool_limits(1):
                return [np.asarray(a) for a in dask.compute(*arrays)]

        yield local
