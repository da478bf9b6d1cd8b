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


def model_options(func: F) -> F:
    """How to load a model: the same flags on every command that runs one."""
    options = [
        click.option("--trust-remote-code", is_flag=True,
                     help="Allow a checkpoint's own code (needed for Kimi-Audio)."),
        click.option("--attn-implementation", default=None,
                     help="eager, sdpa or flash_attention_2 (default: the model's own)."),
        click.option("--dtype", default="auto", show_default=True,
                     type=click.Choice(["auto", "float32", "bfloat16", "float16"])),
        click.option("--device", default="cpu", show_default=True,
                     help="cpu, cuda, cuda:1, ..."),
        click.option("--revision", default=None, help="Checkpoint revision (branch, tag, hash)."),
        click.option("--model", "model_id", required=True, metavar="ID",
                     help="Hugging Face id, local path, or a built-in tiny-* model."),
    ]
    for option in options:
        func = option(func)
    return func


def _int_list(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


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
@model_options
@click.option("--corpus", "corpus_spec", required=True, metavar="SPEC",
              help="Corpus spec NAME:PATH, as for `esn corpus`.")
@click.option("--out", required=True, metavar="STORE", help="Activation store path or URL.")
@corpus_options
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most N items per emotion (a seeded sample).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--checkpoint-layers", default=None, metavar="L,L..",
              help="Store the hidden states entering these layers, for fast replay later.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the option order per item and of --limit's sample.")
@click.option("--option-order", type=click.Choice(["random", "fixed"]), default="random",
              show_default=True)
@click.option("--template", default=None,
              help="Probe text with an {options} field (default: esn's standard question).")
@click.option("--max-new-tokens", type=click.IntRange(1, 512), default=20, show_default=True)
@click.option("--utterance-chunk", type=click.IntRange(min=1), default=64, show_default=True,
              help="Utterances per store chunk.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store instead of resuming.")
@library_errors
def extract(model_id: str, revision: str | None, device: str, dtype: str,
            attn_implementation: str | None, trust_remote_code: bool, corpus_spec: str,
            out: str, emotions: tuple[str, ...], splits: tuple[str, ...],
            merges: tuple[str, ...], limit: int | None, batch_size: int,
            checkpoint_layers: str | None, seed: int, option_order: str,
            template: str | None, max_new_tokens: int, utterance_chunk: int,
            overwrite: bool) -> None:
    """Probe a model on a corpus and write the neuron statistics into an activation store.

    Rerunning the same command resumes where it stopped; a store made for another model,
    probe or corpus is refused (use a new --out, or --overwrite).

    \b
    Example:
        esn extract --model tiny-qwen2_5_omni --corpus manifest:examples/tiny/manifest.csv \\
            --out runs/tiny.zarr --checkpoint-layers 0,1
    """
    from esn.pipeline.extract import ExtractRequest
    from esn.pipeline.extract import extract as run_extract
    from esn.pipeline.models import LoadOptions
    from esn.pipeline.probe import DEFAULT_TEMPLATE

    request = ExtractRequest(
        model=LoadOptions(model_id=model_id, revision=revision, dtype=dtype, device=device,
                          attn_implementation=attn_implementation,
                          trust_remote_code=trust_remote_code),
        corpus=corpus_spec, out=out, emotions=_split_list(emotions),
        splits=_split_list(splits), merges=_split_list(merges) or (), limit=limit,
        batch_size=batch_size, checkpoint_layers=_int_list(checkpoint_layers),
        template=template or DEFAULT_TEMPLATE, seed=seed, option_order=option_order,
        max_new_tokens=max_new_tokens, utterance_chunk=utterance_chunk, overwrite=overwrite,
    )
    report = run_extract(request, progress=stderr_progress("probed"))
    click.echo(format_extract_report(report))


def format_extract_report(report) -> str:  # noqa: ANN001 - ExtractReport, imported lazily
    p = report.progress
    lines = [
        f"store     {report.url}",
        f"this run  {report.processed} items in {report.seconds:.1f} s "
        f"({report.items_per_second:.2f} items/s; writer busy {report.seconds_writing:.1f} s, "
        f"waited on {report.seconds_waiting_for_writer:.1f} s)",
        f"store     {p.done} done, {p.failed} failed, {p.pending} left",
        "",
        f"{'emotion':<12} {'correct':>7} {'done':>6} {'accuracy':>9}",
    ]
    total_correct = total_done = 0
    for emotion, (correct, done) in report.accuracy.items():
        total_correct, total_done = total_correct + correct, total_done + done
        accuracy = f"{100 * correct / done:8.1f}%" if done else "        -"
        lines.append(f"{emotion:<12} {correct:>7} {done:>6} {accuracy}")
    overall = f"{100 * total_correct / total_done:8.1f}%" if total_done else "        -"
    lines.append(f"{'all':<12} {total_correct:>7} {total_done:>6} {overall}")
    return "\n".join(lines)


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
