"""A report page as a browser shows it: headless Chromium's DOM after load (the facts the
page's own script writes on ``<body>``) and a screenshot of the first screen.

The rendering test uses both; the README's picture of the first screen is made the same way::

    python -m esn.pipeline.report.screenshot esn-demo/report/report.html docs/report.png
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
from pathlib import Path

from esn.errors import MissingDependencyError

__all__ = ["SCREEN", "rendered_body", "screenshot"]

SCREEN = (1280, 900)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise MissingDependencyError("no Chromium found (apt-get install chromium)")


def _flags(size: tuple[int, int]) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--virtual-time-budget=5000", f"--window-size={size[0]},{size[1]}"]


def rendered_body(page: Path, size: tuple[int, int] = SCREEN) -> dict[str, str]:
    """The ``data-*`` attributes of ``<body>`` once the page has loaded (without the
    prefix): images decoded, document and viewport width, where the findings are."""
    dom = subprocess.run([_chromium(), *_flags(size), "--dump-dom", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    body = re.search(r"<body[^>]*>", dom)
    if body is None:
        raise RuntimeError(f"no <body> in Chromium's DOM of {page}: {dom[:300]}")
    return {k: html.unescape(v) for k, v in re.findall(r'data-([\w-]+)="([^"]*)"',
                                                        body.group(0))}


def screenshot(page: Path, out: Path, size: tuple[int, int] = SCREEN) -> Path:
    """A PNG of the page's first screen at ``size`` (width, height) pixels."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([_chromium(), *_flags(size), f"--screenshot={out.resolve()}",
                    page.resolve().as_uri()], capture_output=True, timeout=120, check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=SCREEN[0])
    parser.add_argument("--height", type=int, default=SCREEN[1])
    args = parser.parse_args()
    print(screenshot(args.page, args.out, (args.width, args.height)))


if __name__ == "__main__":
    main()
