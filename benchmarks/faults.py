"""Reliability under faults: ``esn extract`` stopped at random moments, and damaged stores.

1. Kill at random points. One small corpus of tones (``benchmarks._corpus``) and one
   uninterrupted reference store (``esn extract --model tiny-qwen2_5_omni``, chunks of 4
   utterances, hidden-state checkpoints at layer 1). Then ``--runs`` times: the same command
   into a fresh store, stopped by a signal at a seeded random moment (after a random number
   of committed chunks, seen on disk, plus up to one chunk's time; or, as likely as any one
   chunk, before the first commit: loading, creating the store), in double-kill runs a
   second signal during the first resume, then the same command again until it exits 0.
   The resumed store is compared with the reference array by array, bit for bit
   (statistics, metadata, checkpoints). Columns:

   kill point  fraction of utterances committed (status not pending) when the signal landed;
               two numbers for a double kill
   committed   those utterances
   lost        utterances done in the reference but not done and identical after the resume:
               must be 0
   redone      utterances the final resume probed: every utterance of a chunk not committed
               at the last kill (work lost to chunk granularity, expected); should equal the
               total minus the last ``committed`` (a note says when it does not)
   equal       every array equal to the reference's

2. Damaged stores. Copies of the reference with one fault each; ``esn validate``, ``esn
   validate --deep``, ``esn select --all-items`` (the tiny model answers too few items
   correctly for the default pool) and ``esn stats`` run on each as subprocesses, and each
   outcome is classified: ``refused`` (nonzero exit with an error message, no traceback),
   ``TRACEBACK`` (a Python traceback on stderr), ``SILENT`` (exit 0: validate said valid,
   select or stats wrote results), ``CRASH`` (killed by a signal), ``HUNG`` (timed out),
   and ``not read`` (exit 0 by a command that never reads the damaged bytes: plain
   ``validate`` checks presence and only ``--deep`` decodes; ``select`` (every built-in
   selector ranks by firing rates) and ``stats`` by firing rate read K and T, not act_sum).
   The message column is the error (for SILENT, validate's verdict or the command's last
   line), truncated.
   Outcomes are reported, not asserted.

The exit status is 1 when a kill run lost an item, left a store unequal or could not be
resumed, or a damaged case was neither refused nor ``not read`` by a command, so the script
is a check.
A default run (3 kill runs, 7 damaged cases: about 40 esn processes, each loading its
libraries) takes about 5 minutes on 2 busy cores.

    python -m benchmarks.faults [--runs 3] [--seed 0] [--out DIR] [--clips 32]
"""

from __future__ import annotations

import os
import sys

# benchmarks/select.py is named like the standard library's `select`, which subprocess and
# asyncio import: when a script here runs directly, the repository root takes this folder's
# place on the import path (so `benchmarks._corpus` imports too).
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_here) if os.path.abspath(p or ".") == _here else p
               for p in sys.path]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import esn  # noqa: E402
from benchmarks._corpus import write_corpus  # noqa: E402
from esn.schemas import STATUS_DONE, STATUS_PENDING  # noqa: E402
from esn.schemas.store import StoreLayout  # noqa: E402
from esn.stores import ActivationStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = "tiny-qwen2_5_omni"
UTTERANCE_CHUNK = 4
# Run i gets KINDS[i % 4]: "A+B" is signal A, then signal B during the first resume. Three
# runs (the default) try every signal and one double kill.
KINDS = ("KILL", "INT+KILL", "TERM", "KILL+KILL")
SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "INT": signal.SIGINT}
COMMAND_TIMEOUT_S = 600
MESSAGE_WIDTH = 64


# -- subprocesses ---------------------------------------------------------------------------


def esn_command(*args: str) -> list[str]:
    """``esn ARGS`` as this interpreter runs it."""
    return [sys.executable, "-m", "esn.cli", *args]


def extract_command(manifest: Path, store: Path) -> list[str]:
    return esn_command("extract", "--model", MODEL, "--corpus", f"manifest:{manifest}",
                       "--out", str(store), "--batch-size", "2",
                       "--utterance-chunk", str(UTTERANCE_CHUNK), "--checkpoint-layers", "1",
                       "--sums", "float32")


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` with stdout and stderr in ``LOG.out`` and ``LOG.err`` (no pipes to
    fill while we wait)."""
    with open(f"{log}.out", "wb") as out, open(f"{log}.err", "wb") as err:
        return subprocess.Popen(command, stdout=out, stderr=err, env=_env(),
                                start_new_session=True)  # a Ctrl-C here does not reach it


def _logs(log: Path) -> tuple[str, str]:
    return (Path(f"{log}.out").read_text(errors="replace"),
            Path(f"{log}.err").read_text(errors="replace"))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# -- the reference run ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reference:
    """The uninterrupted run: its store and timeline (seconds from the start)."""

    manifest: Path
    store: Path
    first_commit_s: float  # the first chunk was committed
    wall_s: float  # the process exited
    n_utterances: int
    n_chunks: int

    @property
    def chunk_s(self) -> float:
        """Seconds per chunk while writing."""
        return (self.wall_s - self.first_commit_s) / max(1, self.n_chunks - 1)


def committed_chunks(store: Path) -> int:
    """Utterance chunks committed so far, read cheaply from the layout on disk: a chunk's
    ``status`` file is written last, when the chunk is committed (``status/c/<chunk>``)."""
    folder = store / "status" / "c"
    return sum(p.name.isdigit() for p in folder.iterdir()) if folder.is_dir() else 0


def build_reference(work: Path, *, clips: int = 32, seed: int = 0) -> Reference:
    """Write the corpus and extract the reference store into ``work``."""
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    manifest = write_corpus(corpus, clips, np.random.default_rng(seed))
    store = work / "reference.zarr"
    shutil.rmtree(store, ignore_errors=True)
    start = time.monotonic()
    proc = _spawn(extract_command(manifest, store), work / "reference")
    first_commit = None
    while proc.poll() is None:
        if first_commit is None and committed_chunks(store):
            first_commit = time.monotonic() - start
        time.sleep(0.02)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the reference extraction failed:\n{_logs(work / 'reference')[1]}")
    layout = ActivationStore.open(store).layout
    return Reference(manifest=manifest, store=store, wall_s=wall, n_utterances=layout.n_utterances,
                     first_commit_s=wall if first_commit is None else first_commit,
                     n_chunks=layout.n_chunks)


# -- comparing stores -----------------------------------------------------------------------


def _bits(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """Values whose ``==`` is bit equality (NaN equals the same NaN, -0.0 is not 0.0)."""
    if isinstance(values, torch.Tensor):
        ints = {2: torch.int16, 4: torch.int32, 8: torch.int64}
        if values.dtype.is_floating_point:
            values = values.contiguous().view(ints[values.element_size()])
        return values.numpy()
    if values.dtype.kind == "f":
        return values.view(f"u{values.dtype.itemsize}")
    return values


def _rows_differ(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor,
                 axis: int, n: int) -> np.ndarray:
    """``(n,)`` bool: row i along ``axis`` differs (all rows, if the shapes differ)."""
    if tuple(a.shape) != tuple(b.shape):
        return np.ones(n, dtype=bool)
    same = np.moveaxis(_bits(a), axis, 0).reshape(n, -1) == \
        np.moveaxis(_bits(b), axis, 0).reshape(n, -1)
    return ~same.all(axis=1)


def _checkpoint_rows_differ(a: ActivationStore, b: ActivationStore, chunk: int) -> np.ndarray:
    sl = a.layout.chunk_slice(chunk)
    n = sl.stop - sl.start
    ca = a.read_checkpoints(chunk)
    try:
        cb = b.read_checkpoints(chunk)
    except Exception:  # missing or undecodable: every row of the chunk is lost
        return np.ones(n, dtype=bool)
    differ = np.zeros(n, dtype=bool)
    for field, axis in (("hidden", 1), ("attention_mask", 0), ("positions", 1),
                        ("valid", 0), ("audio", 0)):
        differ |= _rows_differ(getattr(ca, field), getattr(cb, field), axis, n)
    return differ


def compare_stores(reference: Path, other: Path) -> tuple[int, bool]:
    """(utterances done in ``reference`` but not done and identical in ``other``, whether
    every array and the identity attributes are equal)."""
    ref_store = ActivationStore.open(reference)
    n = ref_store.layout.n_utterances
    done = ref_store.status() == STATUS_DONE
    try:
        other_store = ActivationStore.open(other)
        a, b = esn.open_store(reference), esn.open_store(other)
    except Exception:
        return int(done.sum()), False
    differ = np.zeros(n, dtype=bool)
    equal = other_store.attributes.identity() == ref_store.attributes.identity()
    for name in sorted(map(str, set(a.variables) | set(b.variables))):
        if name not in a.variables or name not in b.variables:
            equal = False
            continue
        va, vb = a[name].values, b[name].values
        if "utterance" in a[name].dims:
            differ |= _rows_differ(va, vb, a[name].dims.index("utterance"), n)
        elif _rows_differ(va[None], vb[None], 0, 1).any():  # a dimension coordinate
            differ[:] = True
    for chunk in range(ref_store.layout.n_chunks if ref_store.layout.checkpoint_layers else 0):
        sl = ref_store.layout.chunk_slice(chunk)
        differ[sl] |= _checkpoint_rows_differ(ref_store, other_store, chunk)
    return int((done & differ).sum()), equal and not differ.any()


# -- kill runs ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class KillRun:
    """One interrupted extraction and its resume, compared with the reference."""

    run: int
    kind: str  # "KILL", "KILL+KILL", "TERM", "INT"
    n_utterances: int
    committed: tuple[int, ...]  # utterances committed when each signal landed
    lost: int
    redone: int | None  # utterances the final resume probed (None: not reported)
    equal: bool
    resumed: bool
    note: str

    @property
    def survived(self) -> bool:
        return self.resumed and self.lost == 0 and self.equal


def _signal_plan(ref: Reference, rng: np.random.Generator, chunks_left: int) -> tuple[int, float]:
    """When to send a signal: after ``k`` more chunks are committed, plus ``delay`` s.

    ``k`` is uniform over the chunks left; ``k`` = 0 means before the run's first commit
    (``delay`` from the start, up to the reference's first commit: loading, creating the
    store, probing the first chunk), otherwise ``delay`` is up to one chunk's time, so the
    signal lands anywhere in the probing or writing of the next chunk.
    """
    k = int(rng.integers(0, chunks_left)) if chunks_left > 0 else 0
    return k, float(rng.uniform(0, ref.first_commit_s if k == 0 else ref.chunk_s))


def _interrupt(command: list[str], store: Path, name: str, plan: tuple[int, float],
               log: Path) -> str:
    """Run ``command`` and send it signal ``name`` as ``plan`` says; a note on how it ended."""
    chunks, delay = plan
    target = committed_chunks(store) + chunks
    proc = _spawn(command, log)
    anchor = time.monotonic() if chunks == 0 else None
    while anchor is None or time.monotonic() < anchor + delay:
        if proc.poll() is not None:
            return f"exited {proc.returncode} before the SIG{name}"
        if anchor is None and committed_chunks(store) >= target:
            anchor = time.monotonic()
        time.sleep(0.02)
    proc.send_signal(SIGNALS[name])
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return f"ignored SIG{name} for 60 s; SIGKILLed"
    return "" if code == -SIGNALS[name] else f"SIG{name}: exit {code}"


def _committed(store: Path) -> tuple[int, str]:
    """Utterances whose status is not pending, and a note when the store is not readable."""
    if not (store / "zarr.json").exists():
        return 0, "before the store existed"
    try:
        status = ActivationStore.open(store).status()
    except Exception as exc:  # an interrupted creation, or a store the kill damaged
        return 0, f"store unreadable: {_first_line(str(exc))[:40]}"
    return int((status != STATUS_PENDING).sum()), ""


def _resume(command: list[str], log: Path, attempts: int = 3) -> tuple[bool, int | None, str]:
    """Rerun ``command`` until it exits 0: (resumed, utterances it probed, note)."""
    error = ""
    for attempt in range(attempts):
        proc = _spawn(command, Path(f"{log}{attempt}"))
        code = proc.wait(timeout=COMMAND_TIMEOUT_S)
        out, err = _logs(Path(f"{log}{attempt}"))
        if code == 0:
            probed = re.search(r"this run\s+(\d+) items", out)
            note = f"{attempt + 1} resumes needed" if attempt else ""
            return True, int(probed[1]) if probed else None, note
        error = _first_line(err.splitlines()[-1] if "Traceback" in err else err)
    return False, None, f"resume failed {attempts}x: {error}"


def kill_run(ref: Reference, run: int, kind: str, rng: np.random.Generator,
             work: Path) -> KillRun:
    """Interrupt a fresh extraction as ``kind`` says, resume it, compare with the reference."""
    store = work / f"run{run}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    command = extract_command(ref.manifest, store)
    committed: list[int] = []
    notes: list[str] = []
    for i, name in enumerate(kind.split("+")):
        plan = _signal_plan(ref, rng, ref.n_chunks - committed_chunks(store))
        notes.append(_interrupt(command, store, name, plan, work / f"run{run}-{i}"))
        count, note = _committed(store)
        committed.append(count)
        notes.append(note)
    resumed, redone, note = _resume(command, work / f"run{run}-resume")
    notes.append(note)
    if redone is not None and redone != ref.n_utterances - committed[-1]:
        notes.append(f"expected {ref.n_utterances - committed[-1]} redone")
    lost, equal = compare_stores(ref.store, store)
    return KillRun(run=run, kind=kind, n_utterances=ref.n_utterances,
                   committed=tuple(committed), lost=lost, redone=redone, equal=equal,
                   resumed=resumed, note="; ".join(filter(None, notes)))


def kill_table(runs: Sequence[KillRun]) -> str:
    rows = [[str(r.run), r.kind.replace("+", ", then "),
             ", ".join(f"{c / r.n_utterances:.2f}" for c in r.committed),
             ", ".join(map(str, r.committed)), str(r.lost),
             "?" if r.redone is None else str(r.redone), "yes" if r.equal else "NO", r.note]
            for r in runs]
    table = _table(["run", "signal", "kill point", "committed", "lost", "redone", "equal",
                    "note"], rows)
    survived = sum(r.survived for r in runs)
    return f"{table}\nkills survived: {survived} / {len(runs)}"


# -- damaged stores -------------------------------------------------------------------------


def _delete(path: Path, rng: np.random.Generator) -> str:
    path.unlink()
    return "deleted"


def _scramble(path: Path, rng: np.random.Generator) -> str:
    size = path.stat().st_size
    path.write_bytes(rng.bytes(size))
    return f"random bytes ({size} B)"


def _truncate(path: Path, rng: np.random.Generator) -> str:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return f"truncated to {len(data) // 2} of {len(data)} B"


def _halve_last_axis(path: Path, rng: np.random.Generator) -> str:
    meta = json.loads(path.read_text())
    old = list(meta["shape"])
    meta["shape"][-1] //= 2
    path.write_text(json.dumps(meta, indent=2))
    return f"shape {old} -> {meta['shape']}".replace(" ", "")


Fault = Callable[[Path, np.random.Generator], str]

# case -> (fault, what it hits: a file of the store, or an array whose middle chunk it hits,
#          the commands that do not read the damaged bytes, so that exit 0 is right for them:
#          plain validate checks presence only; select and stats' default measure read
#          K and T only)
CASES: dict[str, tuple[Fault, str, frozenset[str]]] = {
    "K chunk deleted": (_delete, "K", frozenset()),
    "emotion chunk deleted": (_delete, "emotion", frozenset()),
    "status chunk deleted": (_delete, "status", frozenset()),
    "K chunk random bytes": (_scramble, "K", frozenset({"validate"})),
    "root zarr.json random bytes": (_scramble, "zarr.json", frozenset()),
    "K shape edited": (_halve_last_axis, "K/zarr.json", frozenset()),
    "act_sum chunk truncated": (_truncate, "act_sum",
                                frozenset({"validate", "select", "stats"})),
}
NOT_READ = "not read"  # exit 0 by a command that never reads the damaged bytes


def _target(store: Path, layout: StoreLayout, what: str) -> Path:
    """The file a fault hits: a named file, or the middle utterance chunk of an array (for
    statistics, layer 1 of it: chunks are ``(utterances, span, 1 layer, neurons)``)."""
    if what.endswith("zarr.json"):
        return store / what
    chunk = str(layout.n_chunks // 2)
    if what in ("K", "act_sum"):
        return store / what / "c" / chunk / "0" / str(min(1, layout.n_layers - 1)) / "0"
    return store / what / "c" / chunk


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    verdict: str  # refused, TRACEBACK, SILENT, CRASH, HUNG
    message: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class DamagedCase:
    name: str
    fault: str  # what was done, e.g. "K/c/4/0/1/0: deleted"
    outcomes: dict[str, Outcome]  # command label -> outcome


def damage_commands(store: Path, folder: Path) -> dict[str, list[str]]:
    s = str(store)
    return {
        "validate": esn_command("validate", s),
        "validate --deep": esn_command("validate", "--deep", s),
        "select": esn_command("select", "--store", s, "--out", str(folder / "sets.json"),
                              "--all-items"),
        "stats": esn_command("stats", "--store", s, "--out", str(folder / "stats.zarr")),
    }


def classify(code: int | None, out: str, err: str) -> Outcome:
    """What a command did with a damaged store (``code`` None: it timed out)."""
    if code is None:
        return Outcome(verdict="HUNG", message=f"no exit in {COMMAND_TIMEOUT_S} s")
    if "Traceback (most recent call last)" in err:
        return Outcome(verdict="TRACEBACK", message=_first_line(err.splitlines()[-1]))
    if code < 0:
        return Outcome(verdict="CRASH", message=f"killed by {signal.Signals(-code).name}")
    if code == 0:
        return Outcome(verdict="SILENT", message=_summary(out) or _first_line(err))
    problems = [line for line in out.splitlines() if "problem:" in line]  # esn validate
    return Outcome(verdict="refused",
                   message=_first_line(err) or _first_line("\n".join(problems) or out))


def _summary(out: str) -> str:
    """What a command that exited 0 said: validate's verdict and counts, else its last line
    (select and stats: ``wrote FILE``)."""
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if lines and lines[0].endswith(": valid"):
        return "; ".join(lines[:2])
    return lines[-1] if lines else ""


def _run_to_end(command: list[str], log: Path) -> tuple[int | None, str, str]:
    proc = _spawn(command, log)
    try:
        code: int | None = proc.wait(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    return (code, *_logs(log))


def damage_case(reference: Path, name: str, work: Path,
                rng: np.random.Generator) -> DamagedCase:
    """Copy the reference, apply fault ``name``, run every command on the copy."""
    folder = work / "damaged" / re.sub(r"\W+", "-", name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store = folder / "store.zarr"
    shutil.copytree(reference, store)
    fault, what, unread = CASES[name]
    path = _target(store, ActivationStore.open(reference).layout, what)
    done = f"{path.relative_to(store)}: {fault(path, rng)}"
    outcomes = {}
    for label, command in damage_commands(store, folder).items():
        code, out, err = _run_to_end(command, folder / re.sub(r"\W+", "-", label))
        outcome = classify(code, out, err)
        if outcome.verdict == "SILENT" and label in unread:
            outcome = dataclasses.replace(outcome, verdict=NOT_READ)
        message = outcome.message.replace(str(store), "STORE").replace(f"{folder}/", "")
        outcomes[label] = dataclasses.replace(outcome, message=message)
    return DamagedCase(name=name, fault=done, outcomes=outcomes)


def damage_table(cases: Sequence[DamagedCase]) -> str:
    rows = []
    for case in cases:
        for i, (label, outcome) in enumerate(case.outcomes.items()):
            first = {0: case.name, 1: f"({case.fault})"}.get(i, "")
            rows.append([first, label, outcome.verdict, _truncated(outcome.message)])
    refused = sum(o.verdict == "refused" for c in cases for o in c.outcomes.values())
    unread = sum(o.verdict == NOT_READ for c in cases for o in c.outcomes.values())
    total = sum(len(c.outcomes) for c in cases)
    table = _table(["case", "command", "outcome", "message"], rows)
    return (f"{table}\nrefused: {refused} / {total} (case, command) pairs; {unread} more "
            f"exited 0 without reading the damaged bytes ({NOT_READ})")


# -- output ---------------------------------------------------------------------------------


def _truncated(text: str, width: int = MESSAGE_WIDTH) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def passed(runs: Sequence[KillRun], cases: Sequence[DamagedCase]) -> bool:
    """Every kill survived and every damaged case refused by every command that reads it."""
    return all(r.survived for r in runs) and all(
        o.verdict in ("refused", NOT_READ) for c in cases for o in c.outcomes.values())


@contextlib.contextmanager
def _workdir(out: Path | None) -> Iterator[Path]:
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="esn-faults-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="kill runs (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the corpus, stores and logs here (default: a temp folder)")
    parser.add_argument("--clips", type=int, default=32, help="corpus size (default 32)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    rng = np.random.default_rng(args.seed)
    with _workdir(args.out) as work:
        print(f"reference: {args.clips} clips, {MODEL}, chunks of {UTTERANCE_CHUNK}",
              file=sys.stderr)
        ref = build_reference(work, clips=args.clips, seed=args.seed)
        print(f"  first chunk committed after {ref.first_commit_s:.1f} s, finished after "
              f"{ref.wall_s:.1f} s", file=sys.stderr)
        runs = []
        for i in range(args.runs):
            print(f"kill run {i + 1}/{args.runs}", file=sys.stderr)
            runs.append(kill_run(ref, i + 1, KINDS[i % len(KINDS)], rng, work))
        cases = []
        for name in CASES:
            print(f"damaged: {name}", file=sys.stderr)
            cases.append(damage_case(ref.store, name, work, rng))
    print(f"Kill at random points ({ref.n_utterances} utterances, chunks of "
          f"{UTTERANCE_CHUNK}; reference run {ref.wall_s:.1f} s, first commit at "
          f"{ref.first_commit_s:.1f} s)\n")
    print(kill_table(runs))
    print("\nDamaged stores (copies of the reference, one fault each)\n")
    print(damage_table(cases))
    ok = passed(runs, cases)
    print(f"\n{'passed' if ok else 'FAILED'} in {time.monotonic() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
