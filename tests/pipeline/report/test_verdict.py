"""The verdict rule at its boundaries, and its sentences."""

from __future__ import annotations

import pytest

from esn.pipeline.report.verdict import RULE, judge, verdict_text


@pytest.mark.parametrize(("self_", "ci", "cross", "rnd", "present", "fails"), [
    (-9.0, [-12.0, -6.0], 3.0, 3.0, True, []),           # |self| exactly 3 x each: present
    (-9.0, [-12.0, 0.0], 1.0, 1.0, False, ["interval"]),  # an interval touching 0 fails
    (-9.0, None, 1.0, 1.0, False, ["interval"]),
    (-9.0, [-12.0, -6.0], 3.01, 1.0, False, ["cross"]),
    (-9.0, [-12.0, -6.0], 1.0, 3.01, False, ["random"]),
    (-9.0, [-12.0, -6.0], 1.0, None, False, ["no random control"]),
    (0.0, [-1.0, 1.0], 0.0, 0.0, False, ["not negative"]),
    (4.0, [2.0, 6.0], 0.5, 0.5, False, ["not negative"]),
])
def test_rule(self_, ci, cross, rnd, present, fails) -> None:
    ok, failed = judge(self_, ci, cross, rnd)
    assert ok == present
    assert len(failed) == len(fails)
    for part, text in zip(fails, failed, strict=True):
        assert part in text


def test_sentences_say_what_failed() -> None:
    entry = {"method": "mad", "fraction": 0.005, "pool_size": 200, "self": -2.0,
             "self_ci": [-5.0, 1.0], "cross": 1.5, "cross_ci": [0.5, 2.5], "rnd": None,
             "rnd_ci": None}
    ok, failed = judge(entry["self"], entry["self_ci"], entry["cross"], entry["rnd"])
    text = verdict_text({**entry, "present": ok, "failed": failed})
    assert text.startswith("mad at fraction 0.5% (pool 200 per emotion): no specific signature")
    assert "does not exclude 0" in text and "3 x cross" in text and "no random control" in text
    assert "self < 0" in RULE and "3 x cross" in RULE
