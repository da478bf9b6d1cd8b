"""The README documents every command and every store variable (sqlite-utils' test_docs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esn.cli import main
from esn.schemas import METADATA_VARIABLES, STATISTICS_VARIABLES
from esn.schemas.store import StoreAttributes

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_and_a_readme_section(name: str) -> None:
    command = main.commands[name]
    assert command.help and "Example" in command.help, f"esn {name} needs help with an example"
    assert f"### esn {name}" in README


@pytest.mark.parametrize("spec", STATISTICS_VARIABLES + METADATA_VARIABLES, ids=lambda s: s.name)
def test_every_store_variable_is_in_the_readme(spec) -> None:
    assert f"| `{spec.name}` |" in README


def test_every_group_attribute_is_in_the_readme() -> None:
    import dataclasses

    for field in dataclasses.fields(StoreAttributes):
        assert f"`{field.name}`" in README


def test_readme_opens_with_the_two_commands() -> None:
    assert README.index("<!-- main-command -->") < README.index("<!-- test-command -->")
    assert README.index("<!-- test-command -->") < README.index("## Commands")
