"""The writer lease on a local disk and on an fsspec filesystem (memory://, as object stores)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esn.errors import StoreLockedError
from esn.stores.lease import LEASE_FILE, LeaseHolder, WriterLease, read_lease


@pytest.fixture(params=["local", "memory"])
def url(request, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "s.zarr")
    return f"memory://esn-lease-{os.getpid()}-{request.node.name.replace('[', '-')[:-1]}"


def test_one_holder_at_a_time_then_released(url: str) -> None:
    with WriterLease(url, command="esn extract") as first:
        holder = read_lease(url)
        assert holder is not None and holder.token == first.holder.token
        assert holder.pid == os.getpid() and holder.host == socket.gethostname()
        with pytest.raises(StoreLockedError, match=rf"pid {os.getpid()} \(esn extract\)"):
            WriterLease(url).acquire()
        with pytest.raises(StoreLockedError, match="wait for it to finish"):
            WriterLease(url, break_lock=True).acquire()  # never while it runs here
        first.check()
    assert read_lease(url) is None


def test_renewal_refreshes_the_lease_in_place(url: str) -> None:
    with WriterLease(url, renew_seconds=0.05) as lease:
        first = read_lease(url)
        time.sleep(1.3)
        later = read_lease(url)
        assert later.token == lease.holder.token == first.token
        assert later.renewed > first.renewed  # seconds resolution


def test_a_broken_lease_stops_its_holder(url: str) -> None:
    lease = WriterLease(url)
    lease.acquire()
    try:
        other = LeaseHolder(host="elsewhere", pid=1, started="x", renewed="", token="t0")
        stale = WriterLease(url, break_lock=True, say=lambda _: None)
        stale._fs.pipe_file(stale._path, other.to_json())  # another run broke it and took it
        with pytest.raises(StoreLockedError, match="broken by another run"):
            lease.check()
    finally:
        lease.release()
    assert read_lease(url).token == "t0"  # the release leaves the new holder's lease alone


def test_a_dead_process_lease_is_cleared_with_a_notice(tmp_path: Path) -> None:
    url = tmp_path / "s.zarr"
    url.mkdir()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = LeaseHolder(host=socket.gethostname(), pid=int(child.stdout), started="then",
                       renewed="then", token="dead")
    (url / LEASE_FILE).write_bytes(dead.to_json())
    notices: list[str] = []
    with WriterLease(url, say=notices.append):
        pass
    assert notices and "no longer running" in notices[0] and f"pid {dead.pid}" in notices[0]


def test_an_unreadable_lease_is_an_unknown_holder(tmp_path: Path) -> None:
    url = tmp_path / "s.zarr"
    url.mkdir()
    (url / LEASE_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(StoreLockedError, match="host \\?, pid 0"):
        WriterLease(url).acquire()
    with WriterLease(url, break_lock=True, say=lambda _: None):
        assert read_lease(url).pid == os.getpid()
