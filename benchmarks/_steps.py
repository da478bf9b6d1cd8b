"""Benchmark steps in fresh Python processes, so each step's peak memory is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_step(code: str, *args: str) -> dict[str, Any]:
    """Run ``python -c code args...``; its last stdout line is a JSON object, returned."""
    out = subprocess.run([sys.executable, "-c", code, *args], check=True,
                         capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
