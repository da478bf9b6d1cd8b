"""Interventions on gate neurons: exact no-ops, the right values, per-row conditions, and
agreement with an independent weight edit."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from esn.errors import RequestError
from esn.pipeline.intervene import Intervention, intervention_hooks
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import Probe

PAIRS = ((0, 3), (1, 10), (1, 11), (3, 0))


@pytest.fixture(scope="module", params=["tiny-qwen2_5_omni", "tiny-kimi_audio"])
def adapter(request):
    return load_adapter(LoadOptions(model_id=request.param))


@pytest.fixture(scope="module")
def batch(adapter):
    rng = np.random.default_rng(0)
    audios = [0.3 * np.sin(np.arange(n) / 9.0).astype(np.float32)
              + 0.05 * rng.standard_normal(n).astype(np.float32) for n in (8000, 14000, 11000)]
    probe = Probe(labels=("anger", "happy", "sad"))
    return adapter.build_batch(audios, [probe.prompt(probe.options_for(f"u{i}"))
                                        for i in range(3)])


def logits(adapter, batch) -> torch.Tensor:
    with torch.no_grad():
        return adapter.model(**batch.inputs).logits[:, -1]


def test_noops_are_bit_exact(adapter, batch) -> None:
    base_logits, base_answers = logits(adapter, batch), adapter.generate(batch, 6)
    for noop in (Intervention.steer(PAIRS, 0.0), Intervention.deactivate(()),
                 Intervention.steer((), 3.0)):
        with intervention_hooks(adapter, noop) as tables:
            assert not tables  # nothing to hook
            assert torch.equal(logits(adapter, batch), base_logits)
    # A hooked layer where the row's scale is 1 leaves that row's bits alone too.
    with intervention_hooks(adapter, [Intervention.deactivate(PAIRS), None, None]):
        hooked = logits(adapter, batch)
        answers = adapter.generate(batch, 6)
    assert torch.equal(hooked[1:], base_logits[1:]) and answers[1:] == base_answers[1:]
    assert not torch.equal(hooked[0], base_logits[0])


def test_values_are_zeroed_or_scaled(adapter, batch) -> None:
    seen: dict[int, torch.Tensor] = {}
    gates = adapter.gate_modules()
    with torch.no_grad():
        handles = [g.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(i, o.clone()))
                   for i, g in enumerate(gates)]
        adapter.model(**batch.inputs)
        clean = dict(seen)
        with intervention_hooks(adapter, Intervention.steer(((1, 10),), 0.5)):
            for h in handles:  # re-register after the intervention so they see its output
                h.remove()
            handles = [g.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(i, o))
                       for i, g in enumerate(gates)]
            adapter.model(**batch.inputs)
        for h in handles:
            h.remove()
    torch.testing.assert_close(seen[0], clean[0])  # below the intervention: unchanged
    assert torch.allclose(seen[1][..., 10], 1.5 * _layer_input_gate(adapter, batch, 1)[..., 10],
                          atol=1e-5)


def _layer_input_gate(adapter, batch, layer: int) -> torch.Tensor:
    captured = {}
    mlp = adapter.layers[layer].mlp
    handle = mlp.register_forward_pre_hook(lambda m, a: captured.__setitem__("x", a[0]))
    with torch.no_grad(), intervention_hooks(adapter, Intervention.steer(((1, 10),), 0.5)):
        adapter.model(**batch.inputs)
    handle.remove()
    return torch.nn.functional.silu(captured["x"] @ mlp.gate_proj.weight.T)


def test_deactivation_equals_zeroing_down_proj_columns(adapter, batch) -> None:
    """Zeroing SiLU(gate)_j is the same as zeroing column j of down_proj (peers.md 1.5)."""
    edited = copy.deepcopy(adapter.model)
    for layer, neuron in PAIRS:
        decoder_layer = edited.get_decoder().layers[layer]
        decoder_layer.mlp.down_proj.weight.data[:, neuron] = 0.0
    with torch.no_grad():
        expected = edited(**batch.inputs).logits[:, -1]
    with intervention_hooks(adapter, Intervention.deactivate(PAIRS)):
        got = logits(adapter, batch)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_rows_in_one_batch_equal_rows_run_alone(adapter, batch) -> None:
    rows = [Intervention.deactivate(PAIRS), Intervention.steer(PAIRS, 2.0), None]
    with intervention_hooks(adapter, rows):
        together = logits(adapter, batch)
    for b, row in enumerate(rows):
        with intervention_hooks(adapter, row if row is not None else []):
            alone = logits(adapter, batch)[b]
        torch.testing.assert_close(together[b], alone, rtol=1e-6, atol=1e-6)


def test_bad_interventions_are_refused(adapter, batch) -> None:
    with pytest.raises(RequestError, match="outside"), \
            intervention_hooks(adapter, Intervention.deactivate(((9, 0),))):
        pass
    with pytest.raises(RequestError, match="mode"):
        Intervention("amplify", ())
    with pytest.raises(RequestError, match="alpha"):
        Intervention("deactivate", (), 1.0)
    with intervention_hooks(adapter, [Intervention.deactivate(PAIRS)] * 2), \
            pytest.raises(RuntimeError, match="do not match"):
        logits(adapter, batch)


def test_scale_tables_equal_a_loop_over_every_pair() -> None:
    """The vectorised tables against the plain rule, pair by pair: scale 1 leaves a neuron
    alone, a neuron listed twice takes its last other scale, untouched layers get no table."""
    from esn.pipeline.intervene.hooks import scale_tables

    rng = np.random.default_rng(5)
    n_layers, n_neurons = 6, 40
    rows: list[Intervention | None] = [None]
    for _ in range(7):
        pairs = [(int(rng.integers(0, 4)), int(rng.integers(0, n_neurons))) for _ in range(30)]
        pairs += pairs[:5]  # repeats
        alphas = tuple(float(a) for a in rng.choice([-1.0, 0.0, 0.5, 2.0], size=len(pairs)))
        rows.append(Intervention("steer", tuple(pairs), alphas=alphas))
    rows.append(Intervention.deactivate([(5, 1), (5, 39)]))
    expected: dict[int, np.ndarray] = {}
    for b, row in enumerate(rows):
        if row is None:
            continue
        for (layer, neuron), scale in zip(row.neurons, row.scales(), strict=True):
            if scale != 1.0:
                expected.setdefault(layer, np.ones((len(rows), n_neurons)))[b, neuron] = scale
    got = scale_tables(rows, n_layers, n_neurons)
    assert sorted(got) == sorted(expected) and 4 not in got
    for layer, table in expected.items():
        np.testing.assert_array_equal(got[layer], table)
