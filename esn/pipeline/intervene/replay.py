"""Replay: rerun only decoder layers c..N-1 from stored hidden states, for the first token.

If the earliest intervened layer is c, the residual stream entering c is unchanged by the
intervention, so a checkpoint at a layer <= c (stored by ``esn extract
--checkpoint-layers``) is the exact starting point: the audio encoder and the layers below
never run again. The replay yields the logits of the first generated token; when that
token is an option number, it is the answer (the parse cascade takes the first number).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from esn.pipeline.intervene.hooks import Intervention, intervention_hooks
from esn.pipeline.models.base import ModelAdapter, ProbeBatch
from esn.stores.checkpoints import CheckpointChunk

__all__ = ["ReplayInputs", "choose_checkpoint", "first_token_digit", "replay_first_logits"]


@dataclasses.dataclass(frozen=True)
class ReplayInputs:
    """Stored states entering ``layer`` for a batch of items, ready for the decoder."""

    layer: int
    hidden: torch.Tensor  # (B, L, H)
    batch: ProbeBatch
    positions: torch.Tensor  # (B, L) or (3, B, L)

    @classmethod
    def from_checkpoints(cls, chunk: CheckpointChunk, checkpoint_layers: Sequence[int],
                         layer: int, rows: Sequence[int] | None = None) -> ReplayInputs:
        """Items ``rows`` (default all) of one stored chunk, from checkpoint ``layer``."""
        if layer not in checkpoint_layers:
            raise ValueError(f"no checkpoint at layer {layer} (have {list(checkpoint_layers)})")
        j = list(checkpoint_layers).index(layer)
        index = torch.arange(chunk.attention_mask.shape[0]) if rows is None else torch.as_tensor(
            list(rows))
        mask = chunk.attention_mask[index]
        batch = ProbeBatch(
            inputs={"attention_mask": mask.long()}, valid=chunk.valid[index],
            audio=chunk.audio[index], n_tokens=tuple(int(n) for n in mask.sum(-1)),
        )
        positions = chunk.positions[:, index].long()
        return cls(layer=layer, hidden=chunk.hidden[j, index], batch=batch,
                   positions=positions[0] if positions.shape[0] == 1 else positions)

    def to(self, device: torch.device) -> ReplayInputs:
        batch = dataclasses.replace(
            self.batch, inputs={k: v.to(device) for k, v in self.batch.inputs.items()},
            valid=self.batch.valid.to(device), audio=self.batch.audio.to(device))
        return dataclasses.replace(self, hidden=self.hidden.to(device), batch=batch,
                                   positions=self.positions.to(device))


def choose_checkpoint(checkpoint_layers: Sequence[int], first_intervened: int) -> int | None:
    """The latest checkpoint layer at or below the earliest intervened layer, if any."""
    usable = [c for c in checkpoint_layers if c <= first_intervened]
    return max(usable) if usable else None


@torch.no_grad()
def replay_first_logits(adapter: ModelAdapter, inputs: ReplayInputs,
                        rows: Intervention | Sequence[Intervention | None] | None = None,
                        ) -> torch.Tensor:
    """``(B, V)`` logits of the first generated token, replaying from ``inputs.layer`` with
    ``rows`` applied (their layers must all be >= ``inputs.layer``)."""
    listed = [rows] if isinstance(rows, Intervention) else list(rows or [])
    below = [layer for r in listed if r is not None for layer in r.layers
             if layer < inputs.layer]
    if below:
        raise ValueError(f"cannot replay from layer {inputs.layer}: the intervention touches "
                         f"layer {min(below)}, which comes earlier")
    device_inputs = inputs.to(adapter.device)
    with intervention_hooks(adapter, rows if rows is not None else []):
        logits = adapter.replay_logits(device_inputs.hidden, device_inputs.batch, inputs.layer,
                                       positions=device_inputs.positions)
    return logits[:, -1, :].float()


def first_token_digit(adapter: ModelAdapter, token_ids: torch.Tensor, n_options: int
                      ) -> list[int | None]:
    """For each first token: the option number it spells (1..n_options), or ``None`` when
    it does not decide the answer by itself (then the full generation must run)."""
    out: list[int | None] = []
    for token in token_ids.tolist():
        text = adapter.decode(torch.tensor([token])).strip()
        out.append(int(text) if text.isdigit() and 1 <= int(text) <= n_options else None)
    return out
