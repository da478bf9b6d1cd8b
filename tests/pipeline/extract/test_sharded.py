"""Extraction on a Dask cluster (issue 17), on real worker processes: the store equals the
single-process store array by array (a local cluster and an existing scheduler); a worker
killed mid-chunk is replaced and the store is still identical; a client killed with its
workers resumes to an identical store; a live sharded run refuses other writers, and a
worker whose run lost the lease commits nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from esn.cli import main
from esn.errors import StoreLockedError
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.extract.run import extract_into, select_utterances
from esn.pipeline.extract.sharded import ClusterOptions, extract_sharded
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import Probe
from esn.stores import ActivationStore
from esn.stores.lease import LeaseTicket, WriterLease, read_lease
from tests.conftest import assert_same_arrays
from tests.pipeline.conftest import CLIPS, write_repeated_corpus

ROOT = Path(__file__).parents[3]
MODEL = "tiny-qwen2_5_omni"
CHUNK = 2
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repeated_corpus(tmp_path_factory.mktemp("corpus"), repeat=6, f0=110, step=13)


def args(corpus: Path, out: Path, *more: str, model: str = MODEL) -> list[str]:
    return ["extract", "--model", model, "--corpus", f"manifest:{corpus}", "--out", str(out),
            "--batch-size", "3", "--utterance-chunk", str(CHUNK), "--checkpoint-layers", "0",
            "--sums", "float32", *more]


def request(corpus: Path, out: Path) -> ExtractRequest:
    return ExtractRequest(model=LoadOptions(model_id=MODEL), corpus=f"manifest:{corpus}",
                          out=str(out), batch_size=3, utterance_chunk=CHUNK,
                          checkpoint_layers=(0,), sums="float32")


def invoke(*argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(argv))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("the command raised") from result.exception
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture(scope="module")
def single(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "one.zarr"
    extract(request(corpus, out))
    return out


def assert_same_store(a: Path, b: Path) -> None:
    assert len(assert_same_arrays(a, b)) > 20
    assert (ActivationStore.open(b).status() == 1).all()


@pytest.fixture(scope="module")
def cluster() -> Any:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", env={"OMP_NUM_THREADS": "1"}) as local:
        yield local


def test_two_local_workers_write_the_single_process_store(corpus: Path, single: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "two.zarr"
    code, text = invoke(*args(corpus, out, "--workers", "2"))
    assert code == 0, text
    assert_same_store(single, out)
    assert text.count("chunk(s),") == 2  # one line per worker: both took chunks
    assert read_lease(out) is None


def test_the_organism_on_two_workers(corpus: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one.zarr", tmp_path / "two.zarr"
    for out, more in ((one, ()), (two, ("--workers", "2"))):
        code, text = invoke(*args(corpus, out, *more, model="esn-organism"))
        assert code == 0, text
    assert_same_store(one, two)


def test_a_worker_killed_mid_chunk_is_replaced(corpus: Path, single: Path, cluster: Any,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client

    from esn.pipeline.extract import sharded

    monkeypatch.setattr(sharded, "WORKERS_LINE_SECONDS", 0.0)  # a line after every task
    out = tmp_path / "killed.zarr"
    killed: list[str] = []
    lines: list[str] = []
    with Client(cluster) as watcher:
        def kill_a_busy_worker(done: int, total: int) -> None:
            if killed:
                return
            busy = {w: keys for w, keys in watcher.processing().items() if keys}
            for nanny in cluster.workers.values():
                if nanny.worker_address in busy:
                    killed.append(nanny.worker_address)
                    os.kill(nanny.process.pid, signal.SIGKILL)
                    return

        report = extract_sharded(request(corpus, out),
                                 ClusterOptions(scheduler=cluster.scheduler_address),
                                 progress=kill_a_busy_worker, say=lines.append)
    assert killed, "no worker was busy when the first chunk finished"
    assert report.progress.pending == 0
    assert_same_store(single, out)
    # The client's running lines: items so far, and per worker the items it probed.
    running = [line for line in lines if "by worker:" in line]
    assert running and running[0].startswith(f"{CHUNK * 3}/{len(CLIPS) * 6} items after ")
    # Items probed by tasks that finished: all but what the killed worker committed before
    # it died (its task ran again and skipped those chunks), at most one task's worth.
    probed = sum(w["items"] for w in report.workers.values())
    assert len(CLIPS) * 6 - CHUNK * 3 <= probed <= len(CLIPS) * 6


def test_a_killed_client_resumes_and_its_live_run_refuses_writers(
        corpus: Path, single: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed.zarr"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [sys.executable, "-c", "from esn.cli import main; main()",
         *args(corpus, out, "--workers", "2")],
        env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if ActivationStore.open(out).progress().done > 0:
                    break
            except Exception:  # noqa: BLE001 - not created yet
                pass
            time.sleep(0.05)
        else:
            pytest.fail("the sharded run committed nothing in 240 s")
        holder = read_lease(out)
        assert holder is not None and holder.pid == run.pid
        for more in ((), ("--workers", "2")):
            code, text = invoke(*args(corpus, out, *more))
            assert code != 0 and "is being written by another esn run" in text, text
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the client and its workers
        run.wait()
    left = ActivationStore.open(out).progress()
    assert left.pending > 0, "the run finished before it was killed"
    code, text = invoke(*args(corpus, out, "--workers", "2"))
    assert code == 0, text
    assert "cleared the writer lease of a run that is no longer running" in text
    assert_same_store(single, out)


def test_a_worker_whose_run_lost_the_lease_commits_nothing(corpus: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "lost.zarr"
    req = request(corpus, out)
    adapter = load_adapter(req.model)
    utterances, labels = select_utterances(req)
    probe = Probe(labels=labels, template=req.template, seed=req.seed,
                  option_order=req.option_order, max_new_tokens=req.max_new_tokens)
    with WriterLease(out, command="test") as lease:
        ticket = lease.ticket()
        store = ActivationStore.create(
            out, utterances=utterances, model=adapter.info, probe=probe.info, labels=labels,
            n_layers=adapter.n_layers, n_neurons=adapter.n_neurons, utterance_chunk=CHUNK,
            sums_dtype="float32", batch_size=3)
        extract_into(store, adapter, utterances, probe, batch_size=3, lease=ticket,
                     chunks=[0])
        assert store.progress().done == CHUNK
    with WriterLease(out, command="another run"):  # the first run's lease is gone
        with pytest.raises(StoreLockedError, match="lease was broken by another run"):
            extract_into(store, adapter, utterances, probe, batch_size=3, lease=ticket,
                         chunks=[1])
    assert store.progress().done == CHUNK
    stale = LeaseTicket(str(out), "0" * 16)
    with pytest.raises(StoreLockedError, match="lease removed"):
        stale.check()


def test_a_local_cluster_gives_each_worker_its_own_gpus_and_a_share_of_the_cores() -> None:
    from esn.pipeline.extract.sharded import THREADS_VARIABLE, _runs, _worker_specs

    specs = _worker_specs(3, 2)
    assert [s["options"]["env"]["CUDA_VISIBLE_DEVICES"] for s in specs.values()] == \
        ["0,1", "2,3", "4,5"]
    assert all(s["options"]["resources"] == {"GPU": 2} for s in specs.values())
    assert all(s["options"]["nthreads"] == 1 for s in specs.values())
    share = str(max(1, (os.cpu_count() or 1) // 3))
    assert {s["options"]["env"][THREADS_VARIABLE] for s in specs.values()} == {share}
    assert "CUDA_VISIBLE_DEVICES" not in _worker_specs(2, 0)["esn-0"]["options"]["env"]
    assert ClusterOptions(workers=2, gpus_per_worker=2).resources == {"GPU": 2.0}
    # Runs of chunks: every chunk once, in order, in runs of one size (the last shorter):
    # the smallest size that makes at most 4 tasks per worker, and never above 8 chunks.
    for n, workers, size in ((1, 1, 1), (21, 2, 3), (1000, 2, 8), (7, 8, 1), (64, 1, 8),
                             (40, 2, 5)):
        runs = _runs(list(range(n)), workers)
        assert [c for run in runs for c in run] == list(range(n))
        assert all(len(r) == size for r in runs[:-1]) and 0 < len(runs[-1]) <= size


def test_cluster_options_are_checked() -> None:
    from esn.errors import RequestError

    for bad in ({}, {"scheduler": "tcp://x:1", "workers": 2}, {"workers": 0},
                {"workers": 1, "gpus_per_worker": -1}):
        with pytest.raises(RequestError):
            ClusterOptions(**bad)
