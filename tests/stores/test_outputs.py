"""Where esn may write (``esn.stores.outputs``): new paths, empty folders and esn's own
artifacts, on local paths and ``memory://``; everything else refused, nothing of a user's
deleted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import xarray as xr

from esn.errors import OutputRefusedError, StoreExistsError
from esn.stores.outputs import (
    OutputKind,
    claim_output,
    has_json_marker,
    has_zarr_format,
    move_into_place,
    remove_own,
)

FOLDER = OutputKind(name="thing folder", folder=True,
                    recognise=has_json_marker("thing.json", "format", ("esn-thing",)),
                    entries=("thing.json", "data", "part-*.bin"))
FILE = OutputKind(name="thing file", folder=False,
                  recognise=has_json_marker("", "format", ("esn-thing",)))
MARKER = json.dumps({"format": "esn-thing"})


def make_thing(folder: Path) -> Path:
    """An esn folder artifact with a user's file and folder beside its own entries."""
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "x.bin").write_bytes(b"old")
    (folder / "part-1.bin").write_bytes(b"old")
    (folder / "thing.json").write_text(MARKER)
    (folder / "mine.txt").write_text("the user's")
    (folder / "notes").mkdir()
    (folder / "notes" / "n.txt").write_text("the user's too")
    return folder


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_new_and_empty_paths_are_free(tmp_path: Path) -> None:
    assert claim_output(tmp_path / "new", FOLDER) == "new"
    assert claim_output(tmp_path / "a" / "b" / "new.json", FILE) == "new"
    (tmp_path / "empty").mkdir()
    assert claim_output(tmp_path / "empty", FOLDER) == "empty"
    assert claim_output(tmp_path / "empty", FOLDER, overwrite=True) == "empty"
    assert not (tmp_path / "new").exists() and not (tmp_path / "a").exists()  # nothing made


def test_esn_artifact_needs_overwrite_or_resume(tmp_path: Path) -> None:
    thing = make_thing(tmp_path / "thing")
    with pytest.raises(StoreExistsError, match="overwrite") as info:
        claim_output(thing, FOLDER)
    assert str(thing) in str(info.value) and "\n" not in str(info.value)
    assert claim_output(thing, FOLDER, overwrite=True) == "esn"
    assert claim_output(thing, FOLDER, resume=True) == "esn"
    sets = tmp_path / "sets.json"
    sets.write_text(MARKER)
    assert claim_output(sets, FILE, overwrite=True) == "esn"
    with pytest.raises(StoreExistsError):
        claim_output(sets, FILE)


@pytest.mark.parametrize("flags", [{}, {"overwrite": True}, {"resume": True},
                                   {"overwrite": True, "resume": True}])
def test_a_foreign_folder_is_refused_whatever_the_flags(tmp_path: Path, flags: dict) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    (folder / "thing.json").write_text('{"format": "something else"}')
    with pytest.raises(OutputRefusedError) as info:
        claim_output(folder, FOLDER, **flags)
    message = str(info.value)
    assert str(folder) in message and "'holiday.jpg' and 1 more" in message
    assert "\n" not in message
    assert files(folder) == {"holiday.jpg": b"\xff\xd8",
                             "thing.json": b'{"format": "something else"}'}


def test_files_and_folders_are_not_mistaken(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("hello")
    with pytest.raises(OutputRefusedError, match="is a file, not an esn thing folder"):
        claim_output(plain, FOLDER, overwrite=True)
    with pytest.raises(OutputRefusedError, match="not an esn thing file"):
        claim_output(plain, FILE, overwrite=True)
    with pytest.raises(OutputRefusedError, match="is a file, not a folder"):
        claim_output(plain / "below.json", FILE)  # the parent is a file
    (tmp_path / "dir").mkdir()
    with pytest.raises(OutputRefusedError, match="is a folder, not an esn thing file:"):
        claim_output(tmp_path / "dir", FILE, overwrite=True)
    marked = make_thing(tmp_path / "thing")
    with pytest.raises(OutputRefusedError, match="is a folder"):
        claim_output(marked, FILE, overwrite=True)
    assert plain.read_text() == "hello"


def test_remove_own_keeps_what_esn_did_not_write(tmp_path: Path) -> None:
    thing = make_thing(tmp_path / "thing")
    remove_own(thing, FOLDER, keep=("part-1.bin",))
    assert files(thing) == {"mine.txt": b"the user's", "notes/n.txt": b"the user's too",
                            "part-1.bin": b"old"}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data").write_text("mine")
    with pytest.raises(OutputRefusedError, match="not deleting it"):
        remove_own(foreign, FOLDER)
    assert (foreign / "data").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    remove_own(tmp_path / "empty", FOLDER)  # nothing to remove, nothing refused
    remove_own(tmp_path / "missing", FOLDER)
    sets = tmp_path / "sets.json"
    sets.write_text(MARKER)
    remove_own(sets, FILE)
    assert not sets.exists()


def test_move_into_place(tmp_path: Path) -> None:
    def staging(name: str) -> Path:
        folder = tmp_path / name
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "y.bin").write_bytes(b"new")
        (folder / "thing.json").write_text(MARKER)
        return folder

    move_into_place(staging(".s1"), tmp_path / "fresh", FOLDER, last=("thing.json",))
    assert files(tmp_path / "fresh") == {"data/y.bin": b"new", "thing.json": MARKER.encode()}
    (tmp_path / "empty").mkdir()
    move_into_place(staging(".s2"), tmp_path / "empty", FOLDER)
    assert set(files(tmp_path / "empty")) == {"data/y.bin", "thing.json"}
    thing = make_thing(tmp_path / "thing")
    move_into_place(staging(".s3"), thing, FOLDER, last=("thing.json",))
    assert files(thing) == {"data/y.bin": b"new", "mine.txt": b"the user's",
                            "notes/n.txt": b"the user's too", "thing.json": MARKER.encode()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".s")]  # staging gone
    stray = staging(".s4")
    (stray / "undeclared.txt").write_text("?")
    with pytest.raises(ValueError, match="undeclared.txt"):
        move_into_place(stray, tmp_path / "other", FOLDER)
    assert not (tmp_path / "other").exists()


def test_markers(tmp_path: Path) -> None:
    fs = fsspec.filesystem("file")
    for name, text in [("list.json", "[1, 2]"), ("bad.json", "{not json"),
                       ("wav.json", "RIFF...."), ("other.json", '{"format": "x"}')]:
        (tmp_path / name).write_text(text)
        assert not FILE.recognise(fs, str(tmp_path / name)), name
    (tmp_path / "ok.json").write_text("  \n" + MARKER)
    assert FILE.recognise(fs, str(tmp_path / "ok.json"))
    big = {"format": "esn-thing", "pad": "x" * (5 << 20)}  # more than a first read
    (tmp_path / "big.json").write_text(json.dumps(big))
    assert FILE.recognise(fs, str(tmp_path / "big.json"))
    xr.Dataset(attrs={"format": "esn-zarr"}).to_zarr(tmp_path / "v3.zarr", zarr_format=3,
                                                     consolidated=False)
    xr.Dataset(attrs={"format": "esn-zarr"}).to_zarr(tmp_path / "v2.zarr", zarr_format=2,
                                                     consolidated=False)
    (tmp_path / "holder").mkdir()
    (tmp_path / "v3.zarr").rename(tmp_path / "holder" / "inner.zarr")
    assert has_zarr_format("", ("esn-zarr",))(fs, str(tmp_path / "v2.zarr"))
    assert has_zarr_format("inner.zarr", ("esn-zarr",))(fs, str(tmp_path / "holder"))
    assert not has_zarr_format("", ("esn-other",))(fs, str(tmp_path / "v2.zarr"))
    assert not has_zarr_format("", ("esn-zarr",))(fs, str(tmp_path))


@pytest.fixture
def memory_root() -> Iterator[str]:
    root = f"/outputs-{uuid.uuid4().hex}"
    yield f"memory://{root}"
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_memory_urls(memory_root: str) -> None:
    fs = fsspec.filesystem("memory")
    url = f"{memory_root}/thing"
    assert claim_output(url, FOLDER) == "new"
    fs.pipe(f"{url}/thing.json", MARKER.encode())
    fs.pipe(f"{url}/data/x.bin", b"old")
    fs.pipe(f"{url}/mine.txt", b"the user's")
    with pytest.raises(StoreExistsError, match=url):
        claim_output(url, FOLDER)
    assert claim_output(url, FOLDER, overwrite=True) == "esn"
    fs.pipe(f"{memory_root}/.staging/data/y.bin", b"new")
    fs.pipe(f"{memory_root}/.staging/thing.json", MARKER.encode())
    move_into_place(f"{memory_root}/.staging", url, FOLDER, last=("thing.json",))
    assert fs.cat(f"{url}/data/y.bin") == b"new" and not fs.exists(f"{url}/data/x.bin")
    assert fs.cat(f"{url}/mine.txt") == b"the user's"
    assert not fs.exists(f"{memory_root}/.staging")
    fs.pipe(f"{memory_root}/foreign/a.txt", b"mine")
    with pytest.raises(OutputRefusedError, match="a.txt"):
        claim_output(f"{memory_root}/foreign", FOLDER, overwrite=True)
    remove_own(url, FOLDER)
    assert fs.cat(f"{url}/mine.txt") == b"the user's" and not fs.exists(f"{url}/thing.json")
