"""The writer lease: one run at a time writes an activation store.

A run that writes a store (``esn extract``, ``esn acoustics``) first creates the lease file
``esn.lease`` inside it, exclusively: on a local disk a complete file is hard-linked into
place (``os.link`` fails if the name exists), on fsspec filesystems it is opened with mode
``"xb"`` (object stores: a conditional put). The lease says who holds it (host, pid, the
process's start time, a random token) and when it was last renewed; the holder renews it
every ``RENEW_SECONDS`` and checks before each commit that it still holds it.

A second writer is refused with the holder's host, pid and start time. Renewal refreshes
the file's modification time, which is what "last renewed" reports. A lease whose
process is gone (same host: the pid is not running, or runs another program since) was
left by a killed run and is cleared with a notice; a lease from another host that has not
been renewed for ``STALE_SECONDS`` may be stale, and ``break_lock`` clears it. The lease is
one small document, so the sharded writer of a cluster run can hold it for its workers.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import fsspec

from esn.errors import StoreLockedError, StoreWriteError
from esn.stores.outputs import output_filesystem

__all__ = ["LEASE_FILE", "LeaseHolder", "LeaseTicket", "WriterLease", "read_lease"]

LEASE_FILE = "esn.lease"
RENEW_SECONDS = 30.0
STALE_SECONDS = 300.0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _process_start(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ("" where unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22: starttime


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


@dataclasses.dataclass(frozen=True, kw_only=True)
class LeaseHolder:
    """Who holds a store's writer lease."""

    host: str
    pid: int
    started: str
    renewed: str
    token: str
    process_start: str = ""
    command: str = ""

    @classmethod
    def here(cls, command: str) -> LeaseHolder:
        now = _now().isoformat(timespec="seconds")
        return cls(host=socket.gethostname(), pid=os.getpid(), started=now, renewed=now,
                   token=secrets.token_hex(8), process_start=_process_start(os.getpid()),
                   command=command)

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseHolder:
        values = json.loads(data)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def describe(self) -> str:
        what = f" ({self.command})" if self.command else ""
        return f"host {self.host}, pid {self.pid}{what}, since {self.started}"

    def seconds_since_renewal(self) -> float:
        try:
            renewed = datetime.datetime.fromisoformat(self.renewed)
        except ValueError:
            return float("inf")
        return (_now() - renewed).total_seconds()

    def gone(self) -> bool | None:
        """True if the holder's process has ended, False if it runs, None if unknowable
        (another host)."""
        if self.host != socket.gethostname():
            return None
        if not _pid_running(self.pid):
            return True
        start = _process_start(self.pid)
        return bool(self.process_start and start and start != self.process_start)


def read_lease(url: str | os.PathLike[str],
               storage_options: Mapping[str, Any] | None = None) -> LeaseHolder | None:
    """The current holder of the lease at ``url`` (None when no lease is held)."""
    fs, path = output_filesystem(url, storage_options)
    return _read(fs, f"{path}/{LEASE_FILE}")


def _read(fs: fsspec.AbstractFileSystem, path: str) -> LeaseHolder | None:
    """The lease at ``path``; ``renewed`` is the file's modification time (renewal touches
    the file, see ``WriterLease._renew``)."""
    try:
        data = fs.cat_file(path)
        modified = fs.modified(path)
    except FileNotFoundError:
        return None
    try:
        holder = LeaseHolder.from_json(data)
    except (ValueError, TypeError):
        # A lease being written by its creator is never seen half-made (it is linked or
        # put whole), so unreadable content is damage: report it as an unknown holder.
        holder = LeaseHolder(host="?", pid=0, started="?", renewed="", token="")
    renewed = modified.astimezone(datetime.UTC).isoformat(timespec="seconds")
    return dataclasses.replace(holder, renewed=renewed)


@dataclasses.dataclass(frozen=True)
class LeaseTicket:
    """A held lease as the workers of a sharded run see it: the store and the holder's
    token, small enough to send to them. ``check()`` raises ``StoreLockedError`` when the
    lease at ``url`` no longer carries the token (broken by another run), so a worker
    never commits into a store its run no longer holds."""

    url: str
    token: str
    storage_options: Mapping[str, Any] | None = None

    def check(self) -> None:
        current = read_lease(self.url, self.storage_options)
        if current is None or current.token != self.token:
            raise _broken(self.url, current or _REMOVED)


class WriterLease:
    """Hold the writer lease of the store at ``url`` while a run writes it.

    Use as a context manager around the whole write; ``check()`` raises if the lease was
    taken away (by ``break_lock`` elsewhere).
    """

    def __init__(self, url: str | os.PathLike[str], *, command: str = "",
                 storage_options: Mapping[str, Any] | None = None,
                 say: Callable[[str], None] = lambda _: None,
                 break_lock: bool = False, renew_seconds: float = RENEW_SECONDS) -> None:
        self.url = os.fspath(url)
        self._fs, root = output_filesystem(url, storage_options)
        self._storage_options = dict(storage_options) if storage_options else None
        self._root = root
        self._path = f"{root}/{LEASE_FILE}"
        self._command = command
        self._say = say
        self._break_lock = break_lock
        self._renew_seconds = renew_seconds
        self.holder: LeaseHolder | None = None
        self._stop = threading.Event()
        self._lost: LeaseHolder | None = None
        self._thread: threading.Thread | None = None

    # -- acquiring and releasing --------------------------------------------------------

    def acquire(self) -> None:
        """Take the lease, or raise ``StoreLockedError`` naming the holder."""
        mine = LeaseHolder.here(self._command)
        for _ in range(3):  # a stale lease cleared by us may be re-taken by a racing run
            try:
                self._fs.makedirs(self._root, exist_ok=True)
                created = self._create(mine.to_json())
            except OSError as exc:  # a read-only file system, no permission, a full disk
                raise StoreWriteError(
                    f"{self.url}: cannot write here ({exc.strerror or exc})") from exc
            if created:
                self.holder = mine
                self._start_renewing()
                return
            other = _read(self._fs, self._path)
            if other is None:
                continue  # released in the meantime
            self._clear_or_refuse(other)
        raise StoreLockedError(f"{self.url}: could not take the writer lease (contended)")

    def _clear_or_refuse(self, other: LeaseHolder) -> None:
        gone = other.gone()
        if gone:
            self._say(f"{self.url}: cleared the writer lease of a run that is no longer "
                      f"running ({other.describe()})")
            self._remove_if(other)
            return
        if gone is False:
            raise StoreLockedError(
                f"{self.url} is being written by another esn run ({other.describe()}); "
                "wait for it to finish or stop it first")
        age = other.seconds_since_renewal()
        if self._break_lock:
            self._say(f"{self.url}: breaking the writer lease of {other.describe()} "
                      f"(last renewed {_ago(age)})")
            self._remove_if(other)
            return
        if age > STALE_SECONDS:
            raise StoreLockedError(
                f"{self.url} has a writer lease from {other.describe()}, last renewed "
                f"{_ago(age)}: it looks stale; if no run is writing this store, pass "
                "--break-lock to clear it")
        raise StoreLockedError(
            f"{self.url} is being written by another esn run ({other.describe()}, renewed "
            f"{_ago(age)}); if that run is gone, wait {STALE_SECONDS:.0f} s or pass "
            "--break-lock")

    def _create(self, data: bytes) -> bool:
        if _is_local(self._fs):
            tmp = Path(f"{self._path}.{os.getpid()}.{secrets.token_hex(4)}.partial")
            tmp.write_bytes(data)
            try:
                os.link(tmp, self._path)
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
            return True
        try:
            with self._fs.open(self._path, "xb") as handle:
                handle.write(data)
        except FileExistsError:
            return False
        return True

    def _remove_if(self, holder: LeaseHolder) -> None:
        current = _read(self._fs, self._path)
        if current is not None and current.token == holder.token:
            try:
                self._fs.rm(self._path)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        """Give the lease back (only if this run still holds it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.holder is not None:
            self._remove_if(self.holder)
            self.holder = None

    # -- holding ------------------------------------------------------------------------

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="esn-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._renew_seconds):
            self._renew()

    def _renew(self) -> None:
        """Refresh the lease's modification time. Locally the file is only touched, never
        rewritten, so a renewal racing a ``break_lock`` elsewhere cannot overwrite the new
        holder's lease (at worst it refreshes it); an fsspec filesystem without ``utime``
        gets the same content put again, a narrow race that a conditional put would close."""
        assert self.holder is not None
        current = _read(self._fs, self._path)
        if current is None or current.token != self.holder.token:
            self._lost = current or _REMOVED
            self._stop.set()
            return
        try:
            if _is_local(self._fs):
                os.utime(self._path)
            else:
                self._fs.pipe_file(self._path, self.holder.to_json())
        except OSError:
            return  # a full disk or a network hiccup: try again at the next renewal

    def check(self) -> None:
        """Raise ``StoreLockedError`` if another run took the lease away from this one."""
        if self._lost is None and self.holder is not None:
            current = _read(self._fs, self._path)
            if current is None or current.token != self.holder.token:
                self._lost = current or _REMOVED
        if self._lost is not None:
            raise _broken(self.url, self._lost)

    def ticket(self) -> LeaseTicket:
        """What the workers of this run check before each commit."""
        if self.holder is None:
            raise RuntimeError("the lease is not held")
        return LeaseTicket(self.url, self.holder.token, self._storage_options)

    def __enter__(self) -> WriterLease:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


#: Who "holds" a lease whose file is gone.
_REMOVED = LeaseHolder(host="?", pid=0, started="?", renewed="", token="",
                       command="lease removed")


def _broken(url: str, holder: LeaseHolder) -> StoreLockedError:
    return StoreLockedError(
        f"{url}: this run's writer lease was broken by another run ({holder.describe()}); "
        "stopping before writing more (finished chunks are kept)")


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _ago(seconds: float) -> str:
    if seconds == float("inf"):
        return "at an unknown time"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
