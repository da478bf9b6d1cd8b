"""The model an intervention runs on: the one the store was made with, checked.

``load_options`` takes the model id, revision, dtype, attention implementation and
remote-code flag from the store's model record (the device, and with a check the dtype,
may be overridden); ``model_differences`` compares a loaded model with that record
(revision, dtype, config digest), and ``require_same_model`` refuses a difference unless it
is forced. ``baseline_agreement`` compares the unintervened answers with the answers
stored at extraction, item by item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from esn.errors import ModelMismatchError
from esn.pipeline.models import LoadOptions
from esn.schemas.store import ModelInfo

__all__ = ["baseline_agreement", "load_options", "model_differences", "require_same_model"]

Strings = Sequence[str] | np.ndarray


def load_options(stored: ModelInfo, *, device: str = "cpu", dtype: str = "auto") -> LoadOptions:
    """How to load the store's own model: ``dtype="auto"`` means the store's dtype."""
    chosen = stored.dtype if dtype == "auto" and stored.dtype else dtype
    return LoadOptions(model_id=stored.id, revision=stored.revision or None, dtype=chosen,
                       device=device, attn_implementation=stored.attn_implementation or None,
                       trust_remote_code=stored.trust_remote_code)


def model_differences(stored: ModelInfo, loaded: ModelInfo) -> list[str]:
    """What differs between the store's model record and a loaded model's (fields the store
    did not record are not compared)."""
    out = []
    for field in ("id", "revision", "dtype", "config_digest"):
        have, got = getattr(stored, field), getattr(loaded, field)
        if have and have != got:
            out.append(f"{field}: store {have!r}, loaded {got!r}")
    return out


def require_same_model(stored: ModelInfo, loaded: ModelInfo, *, force: bool,
                       store_url: str) -> list[str]:
    """The differences (empty when the models match); ``ModelMismatchError`` unless
    ``force``."""
    differences = model_differences(stored, loaded)
    if differences and not force:
        raise ModelMismatchError(
            f"the model loaded for the intervention is not the one {store_url} was made with "
            f"({'; '.join(differences)}): replayed hidden states and answers would not be "
            "comparable; load the store's model (its dtype and revision) or pass "
            "--force-model to run anyway (recorded in the results)")
    return differences


def baseline_agreement(item_ids: Strings, stored: Strings, now: Strings,
                       stored_raw: Strings, now_raw: Strings) -> dict[str, Any]:
    """How many unintervened answers equal those stored at extraction (parsed emotions),
    with every item that differs."""
    stored_a, now_a = np.asarray(stored, dtype=object), np.asarray(now, dtype=object)
    same = stored_a == now_a
    differing = [{"item": str(item_ids[i]), "stored": str(stored_a[i]), "now": str(now_a[i]),
                  "stored_raw": str(stored_raw[i]), "now_raw": str(now_raw[i])}
                 for i in np.flatnonzero(~same)]
    n = int(same.size)
    return {"n": n, "agree": int(same.sum()),
            "fraction": float(same.mean()) if n else 1.0, "differing": differing}
