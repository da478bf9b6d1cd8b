"""Reading results folders: what is not an esn results folder is refused, naming the path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import xarray as xr

from esn.errors import RequestError
from esn.pipeline.report.results import read_checks, read_results


def test_other_zarr_stores_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "other"
    xr.Dataset(attrs={"format": "something-else"}).to_zarr(folder / "results.zarr",
                                                            zarr_format=3, consolidated=False)
    with pytest.raises(RequestError, match=re.escape(f"{folder} is not an esn results")):
        read_results(folder)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RequestError, match="no such results folder"):
        read_results(tmp_path / "file")
    with pytest.raises(RequestError, match="no results.zarr"):
        read_results(tmp_path)


@pytest.mark.parametrize("text", ['{"name": "x"}', '[{"value": 1}]', '[{"name": "x"}]',
                                  '[{"name": "x", "value": 1, "ci": [1]}]', "not json"])
def test_malformed_checks_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "checks.json"
    path.write_text(text)
    with pytest.raises(RequestError, match=re.escape(str(path))):
        read_checks(path)


def test_checks_get_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "checks.json"
    path.write_text('[{"name": "x", "value": 2}]')
    assert read_checks(path) == ({"name": "x", "value": 2.0, "ci": None, "unit": "",
                                  "text": ""},)
