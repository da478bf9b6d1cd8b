"""Damaged stores fail loudly, bad paths get one line, and one writer at a time (issue 11).

Every scenario runs the real command line on a real store written by ``esn extract`` with a
built-in tiny model; a refusal must be a one-line error (no traceback) that names the file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import esn
from esn.cli import main
from esn.stores import ActivationStore
from esn.stores.lease import LEASE_FILE, LeaseHolder, read_lease
from tests.pipeline.conftest import write_repeated_corpus

ROOT = Path(__file__).parents[1]
MODEL = "tiny-qwen2_5_omni"


def invoke(*args: str) -> tuple[int, str, str]:
    """Run ``esn ARGS``; fail the test on a traceback (an exception click did not handle)."""
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"esn {' '.join(args)} raised instead of a one-line error") \
            from result.exception
    return result.exit_code, result.stdout, result.stderr


def refused(*args: str) -> str:
    """``esn ARGS`` must fail with exactly one line on stderr; returns that line."""
    code, _, err = invoke(*args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, f"esn {' '.join(args)} exited 0"
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repeated_corpus(tmp_path_factory.mktemp("corpus"), repeat=2, f0=120, step=30)


def extract_args(corpus: Path, out: Path, *more: str) -> list[str]:
    return ["extract", "--model", MODEL, "--corpus", f"manifest:{corpus}", "--out", str(out),
            "--batch-size", "4", "--utterance-chunk", "4", "--checkpoint-layers", "1",
            "--sums", "float32", *more]


@pytest.fixture(scope="module")
def finished(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stores") / "whole.zarr"
    code, stdout, _ = invoke(*extract_args(corpus, out))
    assert code == 0, stdout
    return out


@pytest.fixture
def store(finished: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.zarr"
    shutil.copytree(finished, copy)
    return copy


def readers(store: Path, tmp_path: Path) -> dict[str, list[str]]:
    return {
        "select": ["select", "--store", str(store), "--out", str(tmp_path / "sets.json"),
                   "--all-items", "--method", "conact"],
        "stats": ["stats", "--store", str(store), "--out", str(tmp_path / "stats.zarr")],
    }


# -- 2. a damaged store gives no result -------------------------------------------------------


def test_the_intact_copy_is_read_without_complaint(store: Path, tmp_path: Path) -> None:
    for args in readers(store, tmp_path).values():
        code, out, err = invoke(*args)
        assert code == 0, out + err
    assert invoke("validate", "--deep", str(store))[0] == 0


def test_a_deleted_count_chunk_stops_every_reader(store: Path, tmp_path: Path) -> None:
    (store / "K" / "c" / "1" / "0" / "0" / "0").unlink()
    for args in readers(store, tmp_path).values():
        line = refused(*args)
        assert "committed chunk K/c/1/0/0/0 is missing" in line and str(store) in line
    code, out, _ = invoke("validate", str(store))
    assert code == 1 and "K: 1 committed chunk file(s) missing, in utterance chunk 1" in out


def test_a_deleted_emotion_chunk_stops_readers_and_fails_validate(store: Path,
                                                                  tmp_path: Path) -> None:
    (store / "emotion" / "c" / "2").unlink()
    code, out, _ = invoke("validate", str(store))
    assert code == 1 and "emotion: 1 committed chunk file(s) missing" in out
    for args in readers(store, tmp_path).values():
        assert "committed chunk emotion/c/2 is missing" in refused(*args)


def test_a_deleted_status_chunk_is_noticed_through_the_commit_log(store: Path,
                                                                   tmp_path: Path) -> None:
    (store / "status" / "c" / "1").unlink()
    code, out, _ = invoke("validate", str(store))
    assert code == 1
    assert "chunk status/c/1 is missing, but the commit log says it was committed" in out
    for args in readers(store, tmp_path).values():
        assert "committed chunk status/c/1 is missing" in refused(*args)


def test_random_bytes_in_a_chunk_name_the_chunk(store: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (store / "K" / "c" / "0" / "0" / "1" / "0").write_bytes(rng.bytes(300))
    (store / "raw_answer" / "c" / "1").write_bytes(rng.bytes(120))
    assert invoke("validate", str(store))[0] == 0  # present: only --deep decodes
    code, out, _ = invoke("validate", "--deep", str(store))
    assert code == 1 and "chunk K/c/0/0/1/0 is truncated or not a Blosc frame" in out
    assert "chunk raw_answer/c/1 cannot be decoded" in out
    for args in readers(store, tmp_path).values():
        line = refused(*args)
        assert ("chunk K/c/0/0/1/0 is truncated or not a Blosc frame" in line
                or "chunk raw_answer/c/1 cannot be decoded" in line)


def test_a_truncated_chunk_is_named_not_decoded_into_garbage(store: Path,
                                                             tmp_path: Path) -> None:
    chunk = store / "act_sum" / "c" / "1" / "0" / "2" / "0"
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    code, out, _ = invoke("validate", "--deep", str(store))
    assert code == 1 and "chunk act_sum/c/1/0/2/0 is truncated or not a Blosc frame" in out
    line = refused("stats", "--store", str(store), "--measure", "activation",
                   "--out", str(tmp_path / "stats.zarr"))
    assert "chunk act_sum/c/1/0/2/0 is truncated" in line
    # select reads K and T only (every built-in selector ranks by firing rates): the damaged
    # sums are never read; a truncated count chunk is named.
    code, out, err = invoke(*readers(store, tmp_path)["select"])
    assert code == 0, out + err
    counts = store / "K" / "c" / "1" / "0" / "2" / "0"
    counts.write_bytes(counts.read_bytes()[: counts.stat().st_size // 2])
    line = refused(*readers(store, tmp_path / "again")["select"])
    assert "chunk K/c/1/0/2/0 is truncated" in line


def test_a_corrupt_or_edited_zarr_json_is_one_line_naming_it(store: Path,
                                                             tmp_path: Path) -> None:
    meta = store / "K" / "zarr.json"
    edited = json.loads(meta.read_text())
    edited["shape"][0] += 4
    meta.write_text(json.dumps(edited))
    for args in [*readers(store, tmp_path).values(), ["info", str(store)]]:
        line = refused(*args)
        assert "K/zarr.json: shape" in line
    code, out, _ = invoke("validate", str(store))
    assert code == 1 and "K/zarr.json: shape" in out
    (store / "zarr.json").write_bytes(b"\x93\xff not json")
    for args in [*readers(store, tmp_path).values(), ["validate", str(store)]]:
        assert f"{store}/zarr.json cannot be read" in refused(*args)


def test_resume_rewrites_chunks_whose_files_were_lost(store: Path, finished: Path,
                                                      corpus: Path) -> None:
    shutil.rmtree(store / "act_sum" / "c" / "2")
    code, out, err = invoke(*extract_args(corpus, store))
    assert code == 0, out + err
    assert "1 committed chunk(s) have lost files (chunk 2); probing them again" in err
    assert "4 items" in out
    a, b = esn.open_store(store), esn.open_store(finished)
    for name in list(a.data_vars) + list(a.coords):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# -- 3. paths and file systems -----------------------------------------------------------------


def test_out_that_is_a_file_is_refused_before_the_model_loads(corpus: Path, tmp_path: Path,
                                                              monkeypatch) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")

    def no_loading(options):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr("esn.pipeline.extract.run.load_adapter", no_loading)
    for more in ((), ("--overwrite",)):
        line = refused(*extract_args(corpus, target, *more))
        assert str(target) in line and "is a file" in line
    assert target.read_text() == "mine"


def test_out_with_user_files_is_never_touched(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_bytes(b"\\section{Results}")
    (folder / "data").mkdir()
    (folder / "data" / "x.npy").write_bytes(bytes(range(256)))
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    for more in ((), ("--overwrite",), ("--overwrite", "--break-lock")):
        line = refused(*extract_args(corpus, folder, *more))
        assert f"{folder} exists and is not an esn activation store" in line
    corpus_before = {p: p.read_bytes() for p in corpus.parent.iterdir()}
    line = refused(*extract_args(corpus, corpus.parent, "--overwrite"))
    assert "is not an esn activation store" in line
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert {p: p.read_bytes() for p in corpus.parent.iterdir()} == corpus_before


def test_overwrite_replaces_only_esn_entries_of_a_store(store: Path, corpus: Path) -> None:
    (store / "README.txt").write_text("my notes about this store")
    code, out, err = invoke(*extract_args(corpus, store, "--overwrite", "--seed", "5"))
    assert code == 0, out + err
    assert (store / "README.txt").read_text() == "my notes about this store"
    assert ActivationStore.open(store).attributes.probe.seed == 5
    assert ActivationStore.open(store).validate(deep=True).ok


def _mount_tmpfs(path: Path, *options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


def test_a_read_only_file_system_is_one_line(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "ro"
    mounted = _mount_tmpfs(root, "ro", "size=1m")
    if not mounted:  # not root: a folder without write permission fails the same way
        root.chmod(0o555)
    try:
        line = refused(*extract_args(corpus, root / "s.zarr"))
        assert f"{root / 's.zarr'}: cannot write here" in line
        assert "Read-only file system" in line or "Permission denied" in line
    finally:
        _umount(root) if mounted else root.chmod(0o755)


def test_a_full_disk_is_one_line_and_the_store_resumes(corpus: Path, finished: Path,
                                                       tmp_path: Path) -> None:
    root = tmp_path / "small"
    if not _mount_tmpfs(root, "size=64m"):
        pytest.skip("needs root to mount a small tmpfs (the CI machine runs as root)")
    try:
        shutil.copytree(finished, root / "probe.zarr")  # how much this store takes on tmpfs
        size = shutil.disk_usage(root).used
        shutil.rmtree(root / "probe.zarr")
        subprocess.run(["mount", "-o", f"remount,size={size * 2 // 3}", str(root)], check=True)
        out = root / "s.zarr"
        line = refused(*extract_args(corpus, out))
        assert "No space left on device" in line and str(out) in line
        progress = ActivationStore.open(out).progress()
        assert progress.done > 0 and progress.pending > 0  # some chunks were committed
        subprocess.run(["mount", "-o", f"remount,size={size * 4}", str(root)], check=True)
        code, stdout, err = invoke(*extract_args(corpus, out))
        assert code == 0, stdout + err
        a, b = esn.open_store(out), esn.open_store(finished)
        for name in list(a.data_vars) + list(a.coords):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    finally:
        _umount(root)


# -- 4. one writer at a time -------------------------------------------------------------------


HOLD = textwrap.dedent(
    """
    import os, sys, time
    import zarr
    from click.testing import CliRunner
    from esn.cli import main
    original = zarr.Array.__setitem__
    def slow(self, selection, value):
        # Hold the store open mid-run: pause before the second chunk's counts.
        if self.path.endswith("act_sum") and getattr(selection, "start", None) == 4:
            os.write(1, b"HOLDING\\n")  # not print: CliRunner captures sys.stdout
            time.sleep(120)
        return original(self, selection, value)
    zarr.Array.__setitem__ = slow
    result = CliRunner().invoke(main, sys.argv[1:], catch_exceptions=False)
    """
)


def test_a_second_writer_is_refused_and_a_killed_ones_lease_is_cleared(
        corpus: Path, finished: Path, tmp_path: Path) -> None:
    out = tmp_path / "live.zarr"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-c", HOLD, *extract_args(corpus, out)],
                             stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "HOLDING"
        holder = read_lease(out)
        assert holder is not None and holder.pid == first.pid
        for more in ((), ("--overwrite",), ("--break-lock",), ("--overwrite", "--break-lock")):
            line = refused(*extract_args(corpus, out, *more))
            assert "is being written by another esn run" in line
            assert f"host {socket.gethostname()}, pid {first.pid}" in line
            assert f"since {holder.started}" in line
        assert "is being written" in refused("acoustics", "--store", str(out))
        code, info, _ = invoke("info", str(out))
        assert code == 0 and f"writer      host {holder.host}, pid {first.pid}" in info
        assert ActivationStore.open(out).progress().done == 4  # the live run's work is intact
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert read_lease(out) is not None  # a SIGKILL leaves the lease behind
    code, stdout, err = invoke(*extract_args(corpus, out))
    assert code == 0, stdout + err
    assert "cleared the writer lease of a run that is no longer running" in err
    assert read_lease(out) is None
    a, b = esn.open_store(out), esn.open_store(finished)
    for name in list(a.data_vars) + list(a.coords):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def _plant_lease(store: Path, *, host: str, pid: int, age_s: float) -> LeaseHolder:
    renewed = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - age_s))
    holder = LeaseHolder(host=host, pid=pid, started=renewed, renewed=renewed,
                         token="feedfacecafebeef", command="esn extract")
    (store / LEASE_FILE).write_bytes(holder.to_json())
    past = time.time() - age_s
    os.utime(store / LEASE_FILE, (past, past))  # "last renewed" is the file's mtime
    return holder


def test_a_lease_from_another_host_needs_break_lock_when_stale(store: Path,
                                                                corpus: Path) -> None:
    _plant_lease(store, host="gpu-node-17", pid=4242, age_s=3600)
    line = refused(*extract_args(corpus, store))
    assert "host gpu-node-17, pid 4242" in line and "looks stale" in line
    assert "--break-lock" in line
    _plant_lease(store, host="gpu-node-17", pid=4242, age_s=5)
    line = refused(*extract_args(corpus, store))
    assert "is being written by another esn run (host gpu-node-17, pid 4242" in line
    code, out, err = invoke(*extract_args(corpus, store, "--break-lock"))
    assert code == 0, out + err
    assert "breaking the writer lease of host gpu-node-17" in err
    assert read_lease(store) is None


def test_a_lease_of_a_reused_pid_is_recognised_as_stale(store: Path, corpus: Path) -> None:
    holder = _plant_lease(store, host=socket.gethostname(), pid=os.getpid(), age_s=10)
    holder_json = json.loads((store / LEASE_FILE).read_text())
    holder_json["process_start"] = "1"  # this pid now belongs to another process
    (store / LEASE_FILE).write_text(json.dumps(holder_json))  # renewed now: not by its age
    code, out, err = invoke(*extract_args(corpus, store))
    assert code == 0, out + err
    assert f"no longer running (host {holder.host}, pid {holder.pid}" in err


# -- 5. a resume with another batch size would mix rounding: refused, naming both -----------


def test_a_resume_with_another_batch_size_or_probe_names_the_fields(store: Path,
                                                                    corpus: Path) -> None:
    args = extract_args(corpus, store)
    args[args.index("--batch-size") + 1] = "2"
    line = refused(*args)
    assert "batch_size: store has 4, asked 2" in line and str(store) in line
    line = refused(*extract_args(corpus, store, "--option-order", "fixed",
                                 "--max-new-tokens", "3"))
    assert "probe.option_order: store has 'random', asked 'fixed'" in line
    assert "probe.max_new_tokens: store has 20, asked 3" in line
    assert ActivationStore.open(store).attributes.batch_size == 4
