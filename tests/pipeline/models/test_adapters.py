"""Every tiny architecture through its adapter: batch building and masks, padding invariance,
generation, gate modules and replay of decoder layers from hidden states."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from conftest import PROMPTS, Family, make_clip
from torch import nn

from esn.pipeline.models import ModelAdapter, ProbeBatch

ATOL = 1e-5


@pytest.fixture(scope="module")
def batch(adapter: ModelAdapter, clips: list[np.ndarray]) -> ProbeBatch:
    return adapter.build_batch(clips, PROMPTS)


@contextmanager
def capture_gates(adapter: ModelAdapter) -> Iterator[list[torch.Tensor]]:
    """Gate activations of every layer from the next forward (prefill), in layer order."""
    acts: list[torch.Tensor] = []
    handles = [g.register_forward_hook(lambda _m, _i, out: acts.append(out.detach()))
               for g in adapter.gate_modules()]
    try:
        yield acts
    finally:
        for handle in handles:
            handle.remove()


def tokens(adapter: ModelAdapter, row: torch.Tensor) -> list[str]:
    return list(adapter.tokenizer.convert_ids_to_tokens(row.tolist()))


def test_batch_shapes_and_left_padding(adapter: ModelAdapter, batch: ProbeBatch) -> None:
    ids, attention = batch.input_ids, batch.attention_mask
    assert ids.shape == attention.shape == batch.valid.shape == batch.audio.shape
    assert batch.size == 3 and batch.valid.dtype == batch.audio.dtype == torch.bool
    assert batch.n_tokens == tuple(int(n) for n in attention.sum(-1))
    assert len(set(batch.n_tokens)) == 3, "the prompts should give three lengths"
    for row, n in zip(attention, batch.n_tokens, strict=True):  # left padding: 0..0 1..1
        assert row[batch.length - n:].all() and not row[: batch.length - n].any()
    assert all(v.device == adapter.device for v in batch.inputs.values())


def test_audio_positions_follow_the_token_formula(
    adapter: ModelAdapter, batch: ProbeBatch, family: Family, clips: list[np.ndarray]
) -> None:
    counts = batch.audio.sum(-1).tolist()
    assert counts == [family.n_audio_tokens(clip.size) for clip in clips]
    if family.two_streams:
        pytest.skip("two token streams: test_kimi_audio.py checks them position by position")
    for row, audio in zip(batch.input_ids, batch.audio, strict=True):
        names = tokens(adapter, row)
        assert [n == family.audio_token for n in names] == audio.tolist()
        positions = audio.nonzero().flatten()  # one contiguous run
        assert positions.numel() == int(positions[-1] - positions[0]) + 1


def test_valid_excludes_padding_and_special_tokens(
    adapter: ModelAdapter, batch: ProbeBatch, family: Family
) -> None:
    if family.two_streams:
        pytest.skip("two token streams: test_kimi_audio.py checks them position by position")
    for row, attention, valid, audio in zip(
        batch.input_ids, batch.attention_mask.bool(), batch.valid, batch.audio, strict=True
    ):
        names = tokens(adapter, row)
        expected = [bool(a) and n not in family.masked for n, a in zip(names, attention.tolist(),
                                                                       strict=True)]
        assert valid.tolist() == expected
        assert not (audio & ~valid).any()
        present = {n for n, a in zip(names, attention.tolist(), strict=True) if a}
        assert family.masked - {"<|endoftext|>", "<pad>"} <= present  # chat markers occur
        assert (valid & ~audio).any()  # text positions remain


def test_padding_invariance(
    adapter: ModelAdapter, batch: ProbeBatch, clips: list[np.ndarray]
) -> None:
    """Each item's last-position logits and its gates at valid positions are the same in the
    padded batch of 3 as alone (fp32)."""
    with torch.no_grad(), capture_gates(adapter) as acts:
        logits = adapter.model(**batch.inputs).logits
    batched_acts = list(acts)
    for i in range(batch.size):
        alone = adapter.build_batch(clips[i:i + 1], PROMPTS[i:i + 1])
        assert alone.length == batch.n_tokens[i]
        with torch.no_grad(), capture_gates(adapter) as acts:
            single = adapter.model(**alone.inputs).logits
        torch.testing.assert_close(logits[i, -1], single[0, -1], atol=ATOL, rtol=0)
        mine = batch.valid[i]
        assert torch.equal(mine[batch.length - alone.length:], alone.valid[0])
        for layer, (b_act, s_act) in enumerate(zip(batched_acts, acts, strict=True)):
            torch.testing.assert_close(
                b_act[i][mine], s_act[0][alone.valid[0]], atol=ATOL, rtol=0,
                msg=lambda m, layer=layer: f"layer {layer}: {m}",
            )


def test_long_clips_are_invariant_to_batching(adapter: ModelAdapter, family: Family) -> None:
    """Clips over 30 s (several feature windows per item for AF3 and Voxtral, truncation for
    Qwen2-Audio and Omni) next to a short one: counts follow the formula and no window leaks
    into another item (the AF3 batching bug reported upstream, models.md section 7)."""
    clips = [make_clip(31.0, 7), make_clip(1.3, 8)]
    prompts = ["Which emotion?", PROMPTS[1]]
    batch = adapter.build_batch(clips, prompts)
    assert batch.audio.sum(-1).tolist() == [family.n_audio_tokens(c.size) for c in clips]
    with torch.no_grad():
        logits = adapter.model(**batch.inputs).logits
        for i in range(2):
            alone = adapter.build_batch(clips[i:i + 1], prompts[i:i + 1])
            single = adapter.model(**alone.inputs).logits[0]
            torch.testing.assert_close(logits[i, batch.length - alone.length:], single,
                                       atol=ATOL, rtol=0)


def test_generate_is_deterministic(adapter: ModelAdapter, batch: ProbeBatch) -> None:
    first = adapter.generate(batch, 5)
    assert len(first) == 3 and all(isinstance(a, str) for a in first)
    assert adapter.generate(batch, 5) == first


def test_gate_modules_compute_silu_of_gate_proj(adapter: ModelAdapter, batch: ProbeBatch) -> None:
    gates = adapter.gate_modules()
    assert len(gates) == adapter.n_layers == len(adapter.layers) >= 2
    assert len({id(g) for g in gates}) == adapter.n_layers
    layer = adapter.layers[adapter.n_layers // 2]
    seen: dict[str, torch.Tensor] = {}
    handles = [
        layer.mlp.register_forward_pre_hook(
            lambda _m, args: seen.__setitem__("x", args[0].detach())),
        gates[adapter.n_layers // 2].register_forward_hook(
            lambda _m, _i, out: seen.__setitem__("a", out.detach())),
    ]
    try:
        with torch.no_grad():
            adapter.model(**batch.inputs)
    finally:
        for handle in handles:
            handle.remove()
    assert seen["a"].shape == (batch.size, batch.length, adapter.n_neurons)
    expected = nn.functional.silu(nn.functional.linear(seen["x"], layer.mlp.gate_proj.weight))
    torch.testing.assert_close(seen["a"], expected, atol=ATOL, rtol=0)
    assert adapter.n_neurons == layer.mlp.up_proj.out_features != layer.mlp.down_proj.out_features


def test_rope_positions_shape(adapter: ModelAdapter, batch: ProbeBatch, family: Family) -> None:
    positions = adapter.rope_positions(batch)
    if family.rope_axes == 3:
        assert positions.shape == (3, batch.size, batch.length)
        assert torch.equal(positions[0], positions[1]) and torch.equal(positions[0], positions[2])
        flat = positions[0]
    else:
        assert positions.shape == (batch.size, batch.length)
        flat = positions
    for row, n in zip(flat, batch.n_tokens, strict=True):  # 0..n-1 over the real tokens
        assert row[batch.length - n:].tolist() == list(range(n))


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_replay_reproduces_the_logits(adapter: ModelAdapter, batch: ProbeBatch, where: str) -> None:
    start = {"first": 0, "middle": adapter.n_layers // 2, "last": adapter.n_layers - 1}[where]
    with torch.no_grad():
        out = adapter.model(**batch.inputs, output_hidden_states=True)
        assert len(out.hidden_states) == adapter.n_layers + 1
        replayed = adapter.replay_logits(out.hidden_states[start], batch, start)
        last = adapter.replay_logits(out.hidden_states[start], batch, start, last_only=True)
    real = batch.attention_mask.bool()
    torch.testing.assert_close(replayed[real], out.logits[real], atol=ATOL, rtol=0)
    assert last.shape == (batch.size, 1, out.logits.shape[-1])
    torch.testing.assert_close(last[:, 0], out.logits[:, -1], atol=ATOL, rtol=0)


def test_replay_runs_gate_hooks_like_a_forward(adapter: ModelAdapter, batch: ProbeBatch) -> None:
    """An intervention hook on a replayed layer changes the replayed logits exactly as it
    changes a full forward's."""
    start = adapter.n_layers // 2
    gate = adapter.gate_modules()[start]

    def zero_some(_m: nn.Module, _i: object, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[..., ::3] = 0
        return out

    with torch.no_grad():
        hidden = adapter.model(**batch.inputs, output_hidden_states=True).hidden_states[start]
        handle = gate.register_forward_hook(zero_some)
        try:
            full = adapter.model(**batch.inputs).logits
            replayed = adapter.replay_logits(hidden, batch, start)
        finally:
            handle.remove()
    real = batch.attention_mask.bool()
    torch.testing.assert_close(replayed[real], full[real], atol=ATOL, rtol=0)


def test_build_batch_rejects_bad_input(adapter: ModelAdapter, clips: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="as many prompts"):
        adapter.build_batch(clips[:2], PROMPTS[:1])
    with pytest.raises(ValueError, match="1-D"):
        adapter.build_batch([np.zeros((2, 100), np.float32)], PROMPTS[:1])
