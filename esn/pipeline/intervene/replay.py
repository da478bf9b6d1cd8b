"""Replay: rerun only decoder layers c..N-1 from stored hidden states, for the first token.

If the earliest intervened layer is c, the residual stream entering c is unchanged by the
intervention, so a checkpoint at a layer <= c (stored by ``esn extract
--checkpoint-layers``) is the exact starting point: the audio encoder and the layers below
never run again. The replay yields the logits of the first generated token.

A first token that is a digit does not decide the answer by itself (``"1"`` may go on to
``"12"``, no option; ``esn.pipeline.probe`` has the rule), so ``replay_greedy`` decodes on,
greedily and with the intervention applied, until the parse is fixed. Decoding a new token
needs every layer's keys and values of the prompt, and those of the layers below c are not
stored: it starts from the checkpoint at layer 0 (the merged embeddings, audio included),
prefills all layers once into a KV cache and then decodes one token per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from esn.pipeline.decoding import Decoded, greedy_from_embeddings
from esn.pipeline.intervene.hooks import Intervention, intervention_hooks
from esn.pipeline.models.base import ModelAdapter, ProbeBatch
from esn.stores.checkpoints import CheckpointChunk

__all__ = ["ReplayInputs", "choose_checkpoint", "first_token_digit", "replay_first_logits",
           "replay_greedy"]


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
        device = chunk.attention_mask.device
        index = (torch.arange(chunk.attention_mask.shape[0], device=device) if rows is None
                 else torch.as_tensor(list(rows), device=device))
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
                                       positions=device_inputs.positions, last_only=True)
    return logits[:, -1, :].float()


def first_token_digit(adapter: ModelAdapter, token_ids: torch.Tensor, n_options: int
                      ) -> list[int | None]:
    """For each first token: the option number it spells (1..n_options) if it is ASCII
    digits only, else ``None``. It decides nothing alone (a run of digits may go on);
    ``replay_greedy`` decodes until the answer is fixed."""
    out: list[int | None] = []
    for token in token_ids.tolist():
        text = adapter.decode(torch.tensor([token]))
        number = int(text) if is_ascii_digits(text) else 0
        out.append(number if 1 <= number <= n_options else None)
    return out


def is_ascii_digits(text: str) -> bool:
    """Whether ``text`` is a non-empty run of ``[0-9]`` (``"²".isdigit()`` is also True)."""
    return text.isascii() and text.isdigit()


@torch.no_grad()
def replay_greedy(adapter: ModelAdapter, inputs: ReplayInputs,
                  rows: Intervention | Sequence[Intervention | None] | None,
                  max_new_tokens: int, enough: Callable[[int, str], bool]) -> list[Decoded]:
    """Greedy decoding from the checkpoint at layer 0 (``inputs.layer`` must be 0), as
    ``generate`` decodes: ``rows`` applied at every position, a KV cache, positions going
    on from the prompt's last one. Row b stops at end-of-sequence, after
    ``max_new_tokens``, or once ``enough(b, text)`` holds for its decoded text so far."""
    if inputs.layer != 0:
        raise ValueError(f"decoding needs the checkpoint at layer 0, got {inputs.layer}")
    device_inputs = inputs.to(adapter.device)
    with intervention_hooks(adapter, rows if rows is not None else []):
        return greedy_from_embeddings(adapter, device_inputs.hidden,
                                      device_inputs.batch.attention_mask,
                                      device_inputs.positions, max_new_tokens, enough)
