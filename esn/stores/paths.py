"""What is at a store's path: esn's own activation store or not, and its Zarr group opened
with one-line errors (a missing store, an unreadable ``zarr.json``) over checked reads."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import fsspec
import zarr

from esn.errors import OutputRefusedError, StoreNotFoundError, StoreValidationError
from esn.schemas.store import FORMAT_NAME, METADATA_VARIABLES, STATISTICS_VARIABLES
from esn.stores.arrays import COORDINATES
from esn.stores.checkpoints import GROUP as CHECKPOINT_GROUP
from esn.stores.integrity import COMMIT_LOG, CheckedStore, short_error
from esn.stores.lease import LEASE_FILE
from esn.stores.outputs import OutputKind, fsspec_options

__all__ = ["ACOUSTICS_GROUP", "CREATING", "STORE_OUTPUT", "checked_group", "group_exists",
           "list_keys", "open_group", "url_of"]


CREATING = "esn_creating"  # group attribute of a creation in progress (esn's own)


ACOUSTICS_GROUP = "acoustics"


def _is_esn_store(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """An activation store esn made (finished, or its creation interrupted), or a folder
    holding only an esn writer lease (a run killed before it created the store)."""
    try:
        with fs.open(f"{path}/zarr.json", "rb") as handle:
            meta = json.loads(handle.read(1 << 20))
    except FileNotFoundError:
        names = {e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path, detail=False)}
        return bool(names) and all(n == LEASE_FILE or n.endswith(".partial") for n in names)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if not fs.exists(f"{path}/K"):
            return False  # a foreign Zarr hierarchy or file
        raise OutputRefusedError(
            f"{path}/zarr.json cannot be read ({short_error(exc)}): a damaged activation store; "
            "esn does not write into it (repair it, or choose another path)") from exc
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    return isinstance(attrs, dict) and (attrs.get("format") == FORMAT_NAME or CREATING in attrs)


STORE_OUTPUT = OutputKind(
    name="activation store", folder=True, recognise=_is_esn_store,
    entries=("zarr.json", "*.partial", CHECKPOINT_GROUP, ACOUSTICS_GROUP, COMMIT_LOG,
             *(spec.name for spec in STATISTICS_VARIABLES + METADATA_VARIABLES),
             *COORDINATES),
)


def url_of(url: str | os.PathLike[str]) -> str:
    return os.fspath(url)


def open_group(url: str, mode: str, storage_options: Mapping[str, Any] | None,
                **extra: Any) -> zarr.Group:
    kwargs: dict[str, Any] = {"mode": mode, "zarr_format": 3, **extra}
    options = fsspec_options(url, storage_options)
    if options and "://" in url:
        kwargs["storage_options"] = options
    try:
        return zarr.open_group(url, **kwargs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise StoreNotFoundError(f"no activation store at {url}") from exc
    except zarr.errors.ContainsArrayError as exc:
        raise StoreValidationError(f"{url} is a Zarr array, not an activation store") from exc
    except (ValueError, KeyError, TypeError) as exc:  # JSON and metadata errors
        raise StoreValidationError(
            f"{url}/zarr.json cannot be read as Zarr group metadata ({short_error(exc)})") from exc


def checked_group(group: zarr.Group, url: str) -> zarr.Group:
    """``group`` reopened over a ``CheckedStore`` (its commit state is set by the store)."""
    checked = CheckedStore(group.store, url=url, prefix=group.path)
    return zarr.open_group(checked, path=group.path, mode="r" if group.read_only else "r+",
                           zarr_format=3)


def group_exists(url: str, storage_options: Mapping[str, Any] | None) -> bool:
    try:
        open_group(url, "r", storage_options)
    except StoreNotFoundError:
        return False
    return True


def list_keys(group: zarr.Group) -> list[str]:
    """Every key under ``group`` (relative to it)."""
    store = group.store
    prefix = f"{group.path}/" if group.path else ""

    async def collect() -> list[str]:
        return [k[len(prefix):] async for k in store.list_prefix(prefix)]

    return zarr.core.sync.sync(collect())
