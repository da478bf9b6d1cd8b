"""Effect matrices, self/cross/gap, UAR and bootstrap intervals against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from esn.pipeline.intervene.evaluate import bootstrap_effects, effect_matrix, recall, uar

EMOTIONS = ("anger", "happy", "sad")
GOLD = np.array(["anger"] * 4 + ["happy"] * 4 + ["sad"] * 4, dtype=object)
BASE = np.array(["anger", "anger", "anger", "sad",       # anger 3/4
                 "happy", "happy", "anger", "happy",     # happy 3/4
                 "sad", "sad", "sad", "sad"], dtype=object)  # sad 4/4


def test_recall_and_uar_by_hand() -> None:
    np.testing.assert_allclose(recall(GOLD, BASE, EMOTIONS), [0.75, 0.75, 1.0])
    assert uar(GOLD, BASE, EMOTIONS) == pytest.approx((0.75 + 0.75 + 1.0) / 3)
    assert np.isnan(recall(GOLD[:4], BASE[:4], EMOTIONS)[1])


def test_effect_matrix_by_hand() -> None:
    anger_mask = BASE.copy()
    anger_mask[[0, 1]] = "happy"          # anger recall 3/4 -> 1/4: -50 points
    anger_mask[8] = "anger"               # sad 4/4 -> 3/4: -25
    sad_mask = BASE.copy()
    sad_mask[[9, 10, 11]] = "neutral"     # sad 4/4 -> 1/4: -75
    rnd = np.stack([BASE, BASE.copy()])
    rnd[1, 4] = "sad"                     # one draw: happy 3/4 -> 2/4; mean over draws -12.5
    m = effect_matrix(GOLD, BASE, {"anger": anger_mask, "sad": sad_mask, "rnd": rnd}, EMOTIONS)
    np.testing.assert_allclose(m.delta, [[-50, 0, -25], [0, 0, -75], [0, -12.5, 0]])
    np.testing.assert_allclose(m.self_effect, [-50, -75, -12.5 / 3])
    np.testing.assert_allclose(m.cross_effect, [-12.5, 0, -12.5 / 3])
    np.testing.assert_allclose(m.gap, [-37.5, -75, 0])
    np.testing.assert_allclose(m.uar_change, [-25, -25, -12.5 / 3])


def test_bootstrap_brackets_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    gold = np.array([EMOTIONS[i % 3] for i in range(90)], dtype=object)
    base = np.where(rng.uniform(size=90) < 0.8, gold, "sad").astype(object)
    cond = np.where(rng.uniform(size=90) < 0.5, base, "happy").astype(object)
    m = effect_matrix(gold, base, {"anger": cond}, EMOTIONS)
    ci = bootstrap_effects(gold, base, {"anger": cond}, EMOTIONS, n_boot=300, seed=2)
    assert ci["delta"].shape == (2, 1, 3) and ci["gap"].shape == (2, 1)
    assert np.all(ci["delta"][0] <= m.delta + 1e-9) and np.all(m.delta <= ci["delta"][1] + 1e-9)
    again = bootstrap_effects(gold, base, {"anger": cond}, EMOTIONS, n_boot=300, seed=2)
    np.testing.assert_array_equal(ci["self"], again["self"])
    identical = bootstrap_effects(gold, base, {"anger": base}, EMOTIONS, n_boot=50)
    assert np.all(identical["delta"] == 0)  # paired: no change, no interval
