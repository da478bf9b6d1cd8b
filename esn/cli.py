"""The ``esn`` command line: each command parses, calls one library function, and prints."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from esn import __version__
from esn.errors import EsnError

F = TypeVar("F", bound=Callable[..., Any])


def _split_list(values: Iterable[str]) -> tuple[str, ...] | None:
    """``--emotions a,b --emotions c`` -> ``("a", "b", "c")``; nothing given -> ``None``."""
    items = tuple(v.strip() for value in values for v in value.split(",") if v.strip())
    return items or None


def stderr_progress(what: str) -> Callable[[int, int], None] | None:
    """A ``progress(done, total)`` callback drawing one updating line on an interactive stderr."""
    if not sys.stderr.isatty():
        return None
    start = time.monotonic()
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 0.25 and done < total:
            return
        last = now
        rate = done / max(now - start, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("inf")
        end = "\n" if done >= total else ""
        click.echo(f"\r{what} {done}/{total} ({rate:.1f}/s, ETA {eta:.0f} s)   ", nl=False,
                   err=True)
        if end:
            click.echo(err=True)

    return report


def library_errors(func: F) -> F:
    """Turn esn's own errors into clean one-line CLI errors (and nowhere else)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EsnError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object instead of a table.")(func)


def corpus_options(func: F) -> F:
    """The emotion, split and merge options shared by every command that reads a corpus."""
    func = click.option("--merge", "merges", multiple=True, metavar="FROM=TO",
                        help="Merge a label into another, e.g. excited=happy (repeatable).")(func)
    func = click.option("--split", "splits", multiple=True, metavar="NAME[,NAME]",
                        help="Keep only these published splits.")(func)
    func = click.option("--emotions", multiple=True, metavar="E[,E..]",
                        help="Keep only these emotions, e.g. anger,happy,neutral,sad.")(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="esn")
def main() -> None:
    """Find and causally test emotion-sensitive neurons in audio-language models.

    \b
    Example:
        esn corpus ravdess:/data/RAVDESS --emotions anger,happy,neutral,sad
    """


@main.command()
@click.argument("spec")
@corpus_options
@click.option("--no-check", is_flag=True,
              help="List labels and files only; do not decode the audio.")
@json_option
@library_errors
def corpus(spec: str, emotions: tuple[str, ...], splits: tuple[str, ...],
           merges: tuple[str, ...], no_check: bool, as_json: bool) -> None:
    """Count a corpus's items per emotion, split and speaker, and list unreadable files.

    SPEC is NAME:PATH with NAME one of iemocap, meld, msp-podcast, ravdess, cremad, tess,
    esd, manifest (PATH a .csv or .jsonl file for manifest).

    \b
    Example:
        esn corpus iemocap:/data/IEMOCAP_full_release --merge excited=happy --json
    """
    from esn.pipeline.corpora import format_summary, parse_merges, summarize_corpus

    summary = summarize_corpus(
        spec, emotions=_split_list(emotions), splits=_split_list(splits),
        merges=parse_merges(_split_list(merges) or ()), check_audio=not no_check,
        progress=stderr_progress("decoded"),
    )
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        click.echo(format_summary(summary))


@main.command()
@click.argument("store")
@json_option
@library_errors
def info(store: str, as_json: bool) -> None:
    """Describe an activation store: model, sizes, progress, chunking and bytes on disk.

    \b
    Example:
        esn info runs/qwen-omni-iemocap.zarr --json
    """
    from esn.stores import ActivationStore
    from esn.stores.describe import format_info

    details = ActivationStore.open(store).info()
    click.echo(json.dumps(details, indent=2) if as_json else format_info(details))


@main.command()
@click.argument("store")
@click.option("--deep", is_flag=True, help="Also decode every finished statistics chunk.")
@json_option
@library_errors
def validate(store: str, deep: bool, as_json: bool) -> None:
    """Check a store against its schema; exit status 1 when it has problems.

    \b
    Example:
        esn validate runs/qwen-omni-iemocap.zarr --deep
    """
    from esn.stores import ActivationStore
    from esn.stores.describe import format_validation

    report = ActivationStore.open(store).validate(deep=deep)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(format_validation(report))
    if not report.ok:
        raise SystemExit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
