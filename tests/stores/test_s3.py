"""Stores on object storage (issue 17), through a real S3 API: moto's server on loopback,
started here, reached by s3fs with the standard AWS environment variables. Every step on
an ``s3://`` store gives what the same step gives on a local store: extraction (one process
and two Dask workers), lazy reopening, ``esn select`` and ``esn stats`` (on a Dask cluster
too), ``esn intervene``, ``esn info`` and ``esn validate``; the writer lease holds there."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import esn
from esn.cli import main
from esn.stores.lease import WriterLease
from tests.conftest import arrays_of, assert_same_arrays
from tests.pipeline.conftest import write_repeated_corpus

MODEL = "tiny-qwen2_5_omni"
BUCKET = "esn-test"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A loopback S3 server with one bucket; the AWS variables point s3fs (and every
    process started from here, Dask workers included) at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "esn", "AWS_SECRET_ACCESS_KEY": "esn",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import fsspec

        fsspec.filesystem("s3", skip_instance_cache=True).mkdir(BUCKET)
        yield f"s3://{BUCKET}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repeated_corpus(tmp_path_factory.mktemp("corpus"), repeat=4, f0=120, step=11,
                                 splits=True)


def esn_ok(*argv: str) -> str:
    result = CliRunner().invoke(main, list(argv))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"esn {' '.join(argv)} raised") from result.exception
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def extract_args(corpus: Path, out: str, *more: str) -> list[str]:
    return ["extract", "--model", MODEL, "--corpus", f"manifest:{corpus}", "--out", out,
            "--batch-size", "4", "--utterance-chunk", "4", "--checkpoint-layers", "0",
            "--sums", "float32", *more]


@pytest.fixture(scope="module")
def stores(s3: str, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    local = str(tmp_path_factory.mktemp("local") / "store.zarr")
    remote = f"{s3}/store.zarr"
    for out in (local, remote):
        esn_ok(*extract_args(corpus, out))
    return {"local": local, "s3": remote}


def test_extraction_writes_the_same_store_on_s3(stores: dict[str, str]) -> None:
    assert_same_arrays(stores["local"], stores["s3"])
    lazy = esn.open_store(stores["s3"])  # reopened lazily: dask arrays over S3 chunks
    assert lazy["K"].chunks is not None
    np.testing.assert_array_equal(lazy["K"].values, esn.open_store(stores["local"])["K"].values)
    assert f"{stores['s3']}: valid" in esn_ok("validate", stores["s3"])
    assert "progress    28 done, 0 failed, 0 left" in esn_ok("info", stores["s3"])


def test_two_workers_write_the_same_store_on_s3(s3: str, corpus: Path,
                                                stores: dict[str, str]) -> None:
    out = f"{s3}/two.zarr"
    esn_ok(*extract_args(corpus, out, "--workers", "2"))
    assert_same_arrays(stores["local"], out)


def _sets(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return {"methods": data["methods"], "pool": data["pool"], "budget": data["budget"]}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", memory_limit="1GiB") as local:
        yield local.scheduler_address


def test_select_intervene_and_stats_on_s3_equal_the_local_results(
        stores: dict[str, str], s3: str, cluster: str, tmp_path: Path) -> None:
    """Each step on the local store, on the S3 store, and (select, stats) on a cluster of
    two worker processes with 1 GiB each reading the S3 chunks."""
    sets, results, stats = {}, {}, {}
    for where, store in stores.items():
        for scheduler in ((), ("--scheduler", cluster)):
            name = f"{where}{'-cluster' if scheduler else ''}"
            sets[name] = tmp_path / f"{name}.json"
            esn_ok("select", "--store", store, "--out", str(sets[name]), "--all-items",
                   *scheduler)
            stats[name] = str(tmp_path / f"{name}.stats.zarr")
            esn_ok("stats", "--store", store, "--out", stats[name], *scheduler)
        results[where] = tmp_path / f"{where}-results"
        esn_ok("intervene", "--store", store, "--sets", str(sets[where]), "--out",
               str(results[where]), "--split", "test", "--bootstrap", "50")
    first = _sets(sets["local"])
    assert all(_sets(path) == first for path in sets.values())
    for name in stats:
        assert_same_arrays(stats["local"], stats[name])
    answers = [pd.read_csv(results[w] / "answers.csv") for w in stores]
    pd.testing.assert_frame_equal(*answers)
    tables = [json.loads((results[w] / "summary.json").read_text())["tables"] for w in stores]
    assert tables[0] == tables[1]
    refused = CliRunner().invoke(main, ["stats", "--store", stores["s3"], "--out",
                                        f"{s3}/stats.zarr"])
    assert refused.exit_code != 0 and refused.stderr.count("\n") == 1
    assert "esn stats writes its outputs to a local path" in refused.stderr


def test_the_writer_lease_holds_on_s3(s3: str, corpus: Path, stores: dict[str, str]) -> None:
    with WriterLease(stores["s3"], command="a live run"):
        for more in ((), ("--workers", "2")):
            result = CliRunner().invoke(main, extract_args(corpus, stores["s3"], *more))
            assert result.exit_code != 0
            assert "is being written by another esn run" in result.stderr
            assert "(a live run)" in result.stderr


def test_acoustics_on_s3_equal_the_local_ones(stores: dict[str, str]) -> None:
    """Last in this file: it adds the acoustics group to both stores."""
    for store in stores.values():
        esn_ok("acoustics", "--store", store)
    local = {k: v for k, v in arrays_of(stores["local"]).items() if k.startswith("acoustics/")}
    remote = {k: v for k, v in arrays_of(stores["s3"]).items() if k.startswith("acoustics/")}
    assert sorted(local) == sorted(remote) and local
    for name in local:
        np.testing.assert_array_equal(local[name], remote[name], err_msg=name)
