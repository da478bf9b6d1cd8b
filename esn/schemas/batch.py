"""The results of a contiguous run of utterances, as written to an activation store at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from esn.errors import SchemaError
from esn.schemas.store import STATUS_DONE, STATUS_FAILED, StoreLayout

__all__ = ["StatsBatch"]


def _column(values: Sequence[str] | np.ndarray | None, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, "", dtype=object)
    out = np.asarray(values, dtype=object)
    if out.shape != (n,):
        raise SchemaError(f"batch.{name} has shape {out.shape}, expected ({n},)")
    if not all(isinstance(v, str) for v in out):
        raise SchemaError(f"batch.{name} must hold strings")
    return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatsBatch:
    """Statistics and answers of ``n`` consecutive utterances (shapes as in ``esn.schemas.store``).

    Failed utterances carry zero statistics, ``status = STATUS_FAILED`` and a reason.

    Attributes:
        K: ``(n, span, layer, neuron)`` integer firing counts.
        T: ``(n, span)`` valid-position counts.
        act_sum: ``(n, span, layer, neuron)`` float32 activation sums; for a store that
            keeps bfloat16 sums they may also come as their bfloat16 bits (uint16, as
            ``GateStatistics.host_result`` hands them); ``None`` for a store that keeps
            none (``layout.sums_dtype``).
        status: ``(n,)`` ``STATUS_DONE`` or ``STATUS_FAILED``.
        options: ``(n, option)`` emotion shown as each option number.
        heard: ``(n,)`` seconds the model heard of each clip; ``truncated`` where that is
            less than the clip (``duration``).
    """

    K: np.ndarray
    T: np.ndarray
    act_sum: np.ndarray | None
    status: np.ndarray
    options: np.ndarray
    duration: np.ndarray
    heard: np.ndarray
    truncated: np.ndarray
    n_tokens: np.ndarray
    correct: np.ndarray
    raw_answer: np.ndarray
    parsed_answer: np.ndarray
    failure_reason: np.ndarray

    def __len__(self) -> int:
        return int(self.status.shape[0])

    @classmethod
    def build(
        cls,
        *,
        K: np.ndarray,
        T: np.ndarray,
        act_sum: np.ndarray | None,
        options: np.ndarray | Sequence[Sequence[str]],
        status: np.ndarray | Sequence[int] | None = None,
        duration: np.ndarray | Sequence[float] | None = None,
        heard: np.ndarray | Sequence[float] | None = None,
        truncated: np.ndarray | Sequence[bool] | None = None,
        n_tokens: np.ndarray | Sequence[int] | None = None,
        correct: np.ndarray | Sequence[bool] | None = None,
        raw_answer: Sequence[str] | None = None,
        parsed_answer: Sequence[str] | None = None,
        failure_reason: Sequence[str] | None = None,
    ) -> StatsBatch:
        """Assemble a batch, filling unset per-utterance fields with neutral values."""
        n = int(np.shape(K)[0])
        return cls(
            K=np.asarray(K),
            T=np.asarray(T),
            act_sum=None if act_sum is None else np.asarray(act_sum),
            status=np.full(n, STATUS_DONE, np.int8) if status is None else np.asarray(status),
            options=np.asarray(options, dtype=object),
            duration=np.full(n, np.nan, np.float32) if duration is None else np.asarray(duration),
            heard=np.full(n, np.nan, np.float32) if heard is None else np.asarray(heard),
            truncated=np.zeros(n, bool) if truncated is None else np.asarray(truncated, bool),
            n_tokens=np.zeros(n, np.int32) if n_tokens is None else np.asarray(n_tokens),
            correct=np.zeros(n, bool) if correct is None else np.asarray(correct),
            raw_answer=_column(raw_answer, n, "raw_answer"),
            parsed_answer=_column(parsed_answer, n, "parsed_answer"),
            failure_reason=_column(failure_reason, n, "failure_reason"),
        )

    def check(self, layout: StoreLayout) -> None:
        """Raise ``SchemaError`` unless the batch fits ``layout`` and its invariants hold."""
        n = len(self)
        stat_shape = (n, len(layout.spans), layout.n_layers, layout.n_neurons)
        expected = {
            "K": stat_shape, "T": (n, len(layout.spans)),
            "options": (n, layout.n_options), "duration": (n,), "heard": (n,),
            "truncated": (n,), "n_tokens": (n,), "correct": (n,), "raw_answer": (n,),
            "parsed_answer": (n,), "failure_reason": (n,),
        }
        if layout.sums_dtype == "none":
            if self.act_sum is not None:
                raise SchemaError("batch.act_sum given, but the store keeps no activation "
                                  "sums (layout.sums_dtype none)")
        elif self.act_sum is None:
            raise SchemaError(f"batch.act_sum missing: the store keeps activation sums "
                              f"({layout.sums_dtype})")
        else:
            expected["act_sum"] = stat_shape
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise SchemaError(f"batch.{name} has shape {got}, expected {shape}")
        for name in ("K", "T", "n_tokens"):
            arr = getattr(self, name)
            if not np.issubdtype(arr.dtype, np.integer):
                raise SchemaError(f"batch.{name} must be integer, got {arr.dtype}")
        if n == 0:
            return
        if int(self.K.min()) < 0 or int(self.T.min()) < 0:
            raise SchemaError("batch counts K and T must be non-negative")
        if int(self.K.max()) > layout.max_count:
            raise SchemaError(
                f"a count of {int(self.K.max())} positions overflows {layout.count_dtype}; "
                "create the store with count_dtype='uint32'"
            )
        if np.any(self.K > self.T[:, :, None, None]):
            raise SchemaError("batch.K exceeds T: a neuron cannot fire at more positions "
                              "than there are")
        if self.act_sum is not None and not _all_finite(self.act_sum, layout):
            raise SchemaError("batch.act_sum holds NaN or inf")
        if np.any(self.heard > self.duration):  # NaN (not processed) compares False
            raise SchemaError("batch.heard exceeds duration: the model cannot hear more "
                              "than the clip")
        bad = ~np.isin(self.status, (STATUS_DONE, STATUS_FAILED))
        if bad.any():
            raise SchemaError(
                f"batch.status must be done (1) or failed (2), got {self.status[bad]}"
            )
        failed = self.status == STATUS_FAILED
        if any(not reason for reason in self.failure_reason[failed]):
            raise SchemaError("every failed utterance needs a failure_reason")


def _all_finite(sums: np.ndarray, layout: StoreLayout) -> bool:
    if sums.dtype == np.uint16:  # bfloat16 bits: NaN and inf have every exponent bit set
        if layout.sums_dtype != "bfloat16":
            raise SchemaError(f"batch.act_sum holds bfloat16 bits, but the store keeps "
                              f"{layout.sums_dtype} sums")
        return not bool(np.any((sums & np.uint16(0x7F80)) == np.uint16(0x7F80)))
    return bool(np.all(np.isfinite(sums)))
