"""The ``esn`` command line: each command parses, calls one library function, and prints."""

from __future__ import annotations

import functools
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from esn import __version__
from esn.errors import EsnError, EsnWarning

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
        except OSError as exc:  # a full disk, a read-only file system, a vanished path...
            raise click.ClickException(describe_os_error(exc)) from exc

    return wrapper  # type: ignore[return-value]


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error: the file, then the problem."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else None
    return f"{where}: {what}" if where else what


def _show_esn_warnings_as_lines() -> None:
    """esn's own warnings as ``warning: ...`` lines on stderr (no file:line, no source)."""
    shown = warnings.showwarning
    if getattr(shown, "_esn", False):
        return

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if issubclass(category, EsnWarning):
            click.echo(f"warning: {message}", err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    show._esn = True  # type: ignore[attr-defined]
    warnings.showwarning = show


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
                     help="Allow a checkpoint's own code (Kimi-Audio's released text "
                          "tokenizer is such code; its model runs on esn's rebuild)."),
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
    _show_esn_warnings_as_lines()


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
@click.option("--option-order", type=click.Choice(["random", "fixed"]), default=None,
              help="Order of the options in each prompt (default: the model's own setting "
              "for a built-in organism, else random).")
@click.option("--template", default=None,
              help="Probe text with an {options} field (default: the model's own prompt for "
              "a built-in organism, else esn's standard question).")
@click.option("--max-new-tokens", type=click.IntRange(1, 512), default=None,
              help="Longest answer (default: the model's own setting for a built-in "
              "organism, else 20).")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="S", help="Let the model hear only the first S seconds of each clip "
              "(default: the model's own audio window, e.g. 30 s for Whisper-style encoders).")
@click.option("--sums", type=click.Choice(["none", "bfloat16", "float32"]), default=None,
              help="How to keep the activation sums act_sum: none (the default for a new "
              "store: no built-in selector reads them), bfloat16 or float32. Needed only for "
              "`esn stats --measure activation`. A resumed store keeps its own.")
@click.option("--batch-workers", type=click.IntRange(min=0), default=None, metavar="N",
              help="Processes that run the model's processor, features on their CPUs "
              "(default 0: a thread of this process, features on the model's GPU).")
@click.option("--utterance-chunk", type=click.IntRange(min=1), default=64, show_default=True,
              help="Utterances per store chunk.")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Probe the chunks on a local Dask cluster of N worker processes, each "
                   "holding one model.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Probe the chunks on the workers of an existing Dask cluster (e.g. "
                   "tcp://host:8786); they must see the corpus and the store at the same "
                   "paths.")
@click.option("--gpus-per-worker", type=click.IntRange(min=0), default=0, show_default=True,
              help="GPUs each worker holds (a local cluster gives each its own through "
                   "CUDA_VISIBLE_DEVICES; tasks ask for this many of the workers' GPU "
                   "resource).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing esn store instead of resuming (any other existing "
                   "path is refused).")
@click.option("--break-lock", is_flag=True,
              help="Clear a writer lease that looks stale (left by a run on another host).")
@library_errors
def extract(model_id: str, revision: str | None, device: str, dtype: str,
            attn_implementation: str | None, trust_remote_code: bool, corpus_spec: str,
            out: str, emotions: tuple[str, ...], splits: tuple[str, ...],
            merges: tuple[str, ...], limit: int | None, batch_size: int,
            checkpoint_layers: str | None, seed: int, option_order: str | None,
            template: str | None, max_new_tokens: int | None, max_seconds: float | None,
            sums: str | None, batch_workers: int | None, utterance_chunk: int,
            workers: int | None, scheduler: str | None, gpus_per_worker: int,
            overwrite: bool, break_lock: bool) -> None:
    """Probe a model on a corpus and write the neuron statistics into an activation store.

    Rerunning the same command resumes where it stopped; a store made for another model,
    probe, corpus or batch size is refused (use a new --out, or --overwrite). One run
    writes a store at a time (a writer lease inside it); an existing --out that is not an
    esn store is never written into.

    \b
    Example:
        esn extract --model tiny-qwen2_5_omni --corpus manifest:examples/tiny/manifest.csv \\
            --out runs/tiny.zarr --checkpoint-layers 0,1
    """
    from esn.pipeline.extract import ExtractRequest
    from esn.pipeline.extract import extract as run_extract
    from esn.pipeline.models import LoadOptions
    from esn.pipeline.probe_settings import choose_probe

    probe, lines = choose_probe(model_id, option_order=option_order, template=template,
                                max_new_tokens=max_new_tokens)
    for line in lines:
        click.echo(line, err=True)
    request = ExtractRequest(
        model=LoadOptions(model_id=model_id, revision=revision, dtype=dtype, device=device,
                          attn_implementation=attn_implementation,
                          trust_remote_code=trust_remote_code),
        corpus=corpus_spec, out=out, emotions=_split_list(emotions),
        splits=_split_list(splits), merges=_split_list(merges) or (), limit=limit,
        batch_size=batch_size, checkpoint_layers=_int_list(checkpoint_layers),
        template=probe.template, seed=seed, option_order=probe.option_order,
        max_new_tokens=probe.max_new_tokens, max_seconds=max_seconds, sums=sums,
        batch_workers=batch_workers,
        utterance_chunk=utterance_chunk, overwrite=overwrite, break_lock=break_lock,
    )
    say = functools.partial(click.echo, err=True)
    if workers is None and scheduler is None:
        if gpus_per_worker:
            raise click.UsageError("--gpus-per-worker needs --workers or --scheduler")
        report = run_extract(request, progress=stderr_progress("probed"), say=say)
    else:
        from esn.pipeline.extract.sharded import ClusterOptions, extract_sharded

        cluster = ClusterOptions(scheduler=scheduler, workers=workers,
                                 gpus_per_worker=gpus_per_worker)
        report = extract_sharded(request, cluster, progress=stderr_progress("probed"),
                                 say=say)
    click.echo(format_extract_report(report))


def format_extract_report(report) -> str:  # noqa: ANN001 - ExtractReport, imported lazily
    p = report.progress
    lines = [
        f"store     {report.url}",
        f"this run  {report.processed} items in {report.seconds:.1f} s "
        f"({report.items_per_second:.2f} items/s; writer busy {report.seconds_writing:.1f} s, "
        f"waited on {report.seconds_waiting_for_writer:.1f} s)",
        f"store     {p.done} done, {p.failed} failed, {p.pending} left",
        f"audio     {_heard_line(report.window, report.cut, p.done)}",
        f"sums      {_SUMS_LINES[report.sums]}",
        *([f"time      {_stages_line(report.stages)}"] if report.stages else []),
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


_SUMS_LINES = {
    "none": "not kept (--sums none): selection needs none; `esn stats --measure activation` "
            "would need --sums bfloat16",
    "bfloat16": "act_sum kept in bfloat16 (rounded on the device)",
    "float32": "act_sum kept in float32",
}


def _stages_line(stages: Mapping[str, float]) -> str:
    """Where the main thread's time went, then the batch thread's (which overlaps it)."""
    main_thread = [f"{name} {seconds:.1f} s" for name, seconds in stages.items()
                   if not name.startswith("batch thread")]
    beside = [f"{name.removeprefix('batch thread: ')} {seconds:.1f} s"
              for name, seconds in stages.items() if name.startswith("batch thread")]
    return ", ".join(main_thread) + (f" (beside it, batch thread: {', '.join(beside)})"
                                     if beside else "")


def _heard_line(window: float | None, cut: int | None, done: int) -> str:
    heard = "whole clips" if window is None else f"the first {window:g} s of each clip"
    if cut is None:
        return f"the model hears {heard}; this store (made before esn recorded it) does " \
               "not say which clips were cut"
    return f"the model hears {heard}; {cut} of {done} done clips were longer and were cut"


@main.command()
@click.option("--store", "store_url", metavar="STORE", help="Activation store to select from.")
@click.option("--out", metavar="SETS", help="Neuron-set file (JSON) to write.")
@click.option("--sets", "sets_path", metavar="SETS",
              help="Summarise an existing neuron-set file instead (with --summary).")
@click.option("--method", "methods", multiple=True, default=("all",), show_default=True,
              metavar="NAME", help="lap, lape, mad, conact, rnd or all (repeatable).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=0.005,
              show_default=True, help="Mask size per emotion, as a fraction of all neurons.")
@click.option("--emotions", multiple=True, metavar="E[,E..]",
              help="Emotions to select for (default: the store's label set).")
@click.option("--split", default="auto", show_default=True,
              help="Identification split: a name, 'all', or auto (train if the store has "
                   "splits, else all but a seeded held-out fraction).")
@click.option("--holdout", type=click.FloatRange(0, 1, max_open=True), default=0.5,
              show_default=True, help="Held-out fraction per emotion in a store without splits.")
@click.option("--id-size", type=click.IntRange(min=1), default=None,
              help="Identification items per emotion (a seeded subset).")
@click.option("--all-items", is_flag=True, help="Use wrongly answered items too.")
@click.option("--no-balance", is_flag=True,
              help="Do not truncate every emotion to the smallest one's count.")
@click.option("--span", type=click.Choice(["all", "audio", "text"]), default="all",
              show_default=True, help="Which prompt positions the rates count.")
@click.option("--random-draws", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--lape-percentile", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="LAPE's original filter, e.g. 0.95 (0: off).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--scheduler", default=None, metavar="ADDR",
              help="Dask scheduler address (default: local threads).")
@click.option("--summary", is_flag=True, help="Also print per-layer counts and overlaps.")
@click.option("--overwrite", is_flag=True,
              help="Replace a neuron-set file esn wrote (any other file is refused).")
@library_errors
def select(store_url: str | None, out: str | None, sets_path: str | None,
           methods: tuple[str, ...], fraction: float, emotions: tuple[str, ...], split: str,
           holdout: float, id_size: int | None, all_items: bool, no_balance: bool, span: str,
           random_draws: int, lape_percentile: float, seed: int, scheduler: str | None,
           summary: bool, overwrite: bool) -> None:
    """Select emotion-sensitive neurons from an activation store, in one Dask pass.

    \b
    Example:
        esn select --store runs/omni-iemocap.zarr --method all --fraction 0.005 \\
            --out runs/omni-iemocap.sets.json --summary
    """
    from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
    from esn.pipeline.select.describe import format_selection, format_summary
    from esn.stores.neuron_sets import claim_sets_output, read_neuron_sets, write_neuron_sets

    if sets_path:
        sets = read_neuron_sets(sets_path)
        click.echo(format_selection(sets))
        click.echo("\n" + format_summary(sets))
        return
    if not store_url or not out:
        raise click.UsageError("give --store and --out (or --sets FILE --summary)")
    chosen = _split_list(methods) or ("all",)
    options = SelectOptions(
        methods=tuple(SelectOptions().methods) if "all" in chosen else chosen,
        fraction=fraction, emotions=_split_list(emotions), span=span,
        pool=PoolOptions(split=split, correct_only=not all_items, balance=not no_balance,
                         id_size=id_size, holdout=holdout, seed=seed),
        random_draws=random_draws, lape_percentile=lape_percentile, seed=seed,
        scheduler=scheduler,
    )
    claim_sets_output(out, overwrite=overwrite)  # refuse before the pass, not after it
    with _dask_progress():
        sets, _ = select_neurons(store_url, options)
    write_neuron_sets(out, sets, overwrite=overwrite)
    click.echo(format_selection(sets))
    if summary:
        click.echo("\n" + format_summary(sets))
    click.echo(f"\nwrote {out}")


def _dask_progress():  # noqa: ANN202 - a context manager
    """Dask's progress bar on an interactive stderr (local schedulers only)."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(out=sys.stderr)


@main.command()
@click.option("--store", "store_url", metavar="STORE",
              help="The store the neuron sets were selected from.")
@click.option("--sets", "sets_path", metavar="SETS", help="Neuron-set file.")
@click.option("--out", required=True, metavar="DIR",
              help="Results folder to write (with --summary: to read).")
@click.option("--summary", is_flag=True,
              help="Only print the self/cross table of an existing results folder.")
@click.option("--mode", type=click.Choice(["deactivate", "steer"]), default="deactivate",
              show_default=True)
@click.option("--alpha", "alphas", multiple=True, type=float, metavar="A",
              help="Steering strength(s), a := (1 + A) a (repeatable; default 0.5).")
@click.option("--fraction", "fractions", multiple=True, type=float, metavar="F",
              help="Deactivation mask fraction(s), at most the sets' (repeatable).")
@click.option("--method", "methods", multiple=True, metavar="NAME",
              help="Methods from the sets file (default: all but rnd, the control).")
@click.option("--random-draws", type=click.IntRange(min=0), default=None,
              help="Random-control draws to run (default: all in the sets file).")
@click.option("--split", default="auto", show_default=True,
              help="Test split: a name, 'all', or auto (test, or the held-out part).")
@click.option("--per-emotion", type=click.IntRange(min=1), default=None,
              help="At most N test items per emotion (seeded).")
@click.option("--engine", type=click.Choice(["auto", "replay", "full"]), default="auto",
              show_default=True)
@click.option("--label-agnostic", "label_agnostic", multiple=True,
              metavar="union|2pass|mix",
              help="Also steer without the label: all masks at once (union), the mask of "
                   "the emotion the model first predicted (2pass), or every mask weighted "
                   "by the model's option probabilities (mix). Repeatable.")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=1.0,
              show_default=True, help="Softmax temperature of the mix weights.")
@click.option("--eval-store", default=None, metavar="STORE2",
              help="Evaluate on another store of the same model (transfer).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "float32", "bfloat16", "float16"]))
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=10), default=1000,
              show_default=True, help="Bootstrap resamples for the confidence intervals.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force-overlap", is_flag=True,
              help="Allow test items that are in the identification pool.")
@click.option("--force-model", is_flag=True,
              help="Run on a model whose revision, dtype or config differs from the store's "
                   "(the difference is recorded in the results).")
@click.option("--overwrite", is_flag=True,
              help="Replace a results folder esn wrote (any other path is refused).")
@library_errors
def intervene(store_url: str | None, sets_path: str | None, out: str, summary: bool,
              mode: str, alphas: tuple[float, ...],
              fractions: tuple[float, ...], methods: tuple[str, ...],
              random_draws: int | None, label_agnostic: tuple[str, ...],
              temperature: float, split: str,
              per_emotion: int | None, engine: str,
              eval_store: str | None, batch_size: int, device: str, dtype: str, n_boot: int,
              seed: int, force_overlap: bool, force_model: bool, overwrite: bool) -> None:
    """Deactivate or steer the selected neurons and measure emotion recognition.

    The model is the store's own (id, revision, dtype, attention implementation and
    remote-code flag from its record; --dtype auto keeps the store's dtype); a model that
    differs is refused unless --force-model. The unintervened answers are compared with
    those stored at extraction, and the agreement is printed and kept in summary.json.

    \b
    Example:
        esn intervene --store runs/tiny.zarr --sets runs/tiny.sets.json --mode steer \\
            --alpha 0.5 --alpha 2 --out runs/tiny-steer
    """
    from pathlib import Path

    from esn.pipeline.intervene.describe import format_results
    from esn.pipeline.intervene.run import InterveneRequest, claim_results_output
    from esn.pipeline.intervene.run import intervene as run_intervene

    if summary:
        click.echo(format_results(Path(out)))
        return
    if not store_url or not sets_path:
        raise click.UsageError("give --store and --sets (or --summary with an existing --out)")
    strengths = alphas if mode == "steer" else fractions
    if (alphas and mode == "deactivate") or (fractions and mode == "steer"):
        raise click.UsageError("--alpha is for --mode steer, --fraction for --mode deactivate")
    claim_results_output(out, overwrite=overwrite)  # before the store or a model is opened
    folder = run_intervene(InterveneRequest(
        store=store_url, sets=sets_path, out=out, mode=mode, strengths=strengths or None,
        methods=_split_list(methods), random_draws=random_draws, split=split,
        per_emotion=per_emotion, engine=engine, eval_store=eval_store,
        label_agnostic=_split_list(label_agnostic) or (), temperature=temperature,
        batch_size=batch_size, n_boot=n_boot, seed=seed, force_overlap=force_overlap,
        overwrite=overwrite, device=device, dtype=dtype, force_model=force_model,
    ), progress=stderr_progress("answered"))
    click.echo(format_results(folder))


@main.command()
@click.option("--store", "store_url", required=True, metavar="STORE",
              help="Activation store to test.")
@click.option("--by", default="emotion", show_default=True, metavar="VAR",
              help="Grouping variable: emotion, corpus, speaker, split, correct, "
                   "parsed_answer or gold_option.")
@click.option("--test", type=click.Choice(["welch", "rank"]), default="welch",
              show_default=True, help="Welch's t-test or Mann-Whitney U.")
@click.option("--within", type=click.Choice(["speaker"]), default=None,
              help="Remove each speaker's mean from every neuron's values first.")
@click.option("--groups", default=None, metavar="A,B",
              help="Compare two named groups (A vs B) instead of each group vs the rest.")
@click.option("--measure", type=click.Choice(["rate", "activation"]), default="rate",
              show_default=True, help="Per-utterance firing rate K/T or mean activation.")
@click.option("--span", type=click.Choice(["all", "audio", "text"]), default="all",
              show_default=True)
@click.option("--correction", type=click.Choice(["bh", "bonferroni"]), default="bh",
              show_default=True, help="Multiple-comparison control over all neurons.")
@click.option("--scheduler", default=None, metavar="ADDR",
              help="Dask distributed scheduler address (default: local threads).")
@click.option("--out", required=True, metavar="STATS", help="Zarr dataset to write.")
@click.option("--csv", "csv_path", default=None, metavar="FILE",
              help="Also write the top neurons per group as a tidy CSV (an existing file is "
                   "replaced only with --overwrite, and only if esn wrote it).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Neurons per group in the summary and the CSV.")
@click.option("--covariates", is_flag=True,
              help="Also correlate each neuron with the acoustic descriptors (run "
                   "`esn acoustics` first) and the label controlling for them.")
@click.option("--spearman", is_flag=True,
              help="With --covariates, also Spearman correlations (one pass per neuron "
                   "block, as --test rank).")
@click.option("--overwrite", is_flag=True,
              help="Replace a STATS dataset esn wrote (any other path is refused).")
@library_errors
def stats(store_url: str, by: str, test: str, within: str | None, groups: str | None,
          measure: str, span: str, correction: str, scheduler: str | None, out: str,
          csv_path: str | None, top: int, covariates: bool, spearman: bool,
          overwrite: bool) -> None:
    """Test every neuron for differences between groups of utterances (one pass).

    \b
    Example:
        esn stats --store runs/omni-iemocap.zarr --by emotion --within speaker \\
            --out runs/omni-iemocap.stats.zarr --csv runs/top.csv --top 20
    """
    from esn.pipeline.stats import StatsOptions, compute_stats, format_top, top_neurons, write_stats
    from esn.pipeline.stats.run import claim_stats_output, write_top_csv

    options = StatsOptions(by=by, test=test, within=within, groups=_split_list([groups or ""]),
                           measure=measure, span=span, correction=correction,
                           scheduler=scheduler, covariates=covariates,
                           spearman=spearman)
    claim_stats_output(out, overwrite=overwrite, csv=csv_path)  # before the pass
    with _dask_progress():
        result = compute_stats(store_url, options)
    write_stats(result, out, overwrite=overwrite)
    table = top_neurons(result, top)
    click.echo(format_top(table))
    if csv_path:
        write_top_csv(table, csv_path, overwrite=overwrite)
        click.echo(f"wrote {csv_path}")
    click.echo(f"wrote {out}")


@main.command()
@click.option("--store", "store_url", required=True, metavar="STORE",
              help="Activation store whose finished utterances are measured.")
@click.option("--overwrite", is_flag=True, help="Discard stored descriptors and measure again.")
@click.option("--break-lock", is_flag=True,
              help="Clear a writer lease that looks stale (left by a run on another host).")
@library_errors
def acoustics(store_url: str, overwrite: bool, break_lock: bool) -> None:
    """Measure acoustic descriptors (F0, level, centroid, rate...) into the store; resumable.

    \b
    Example:
        esn acoustics --store runs/omni-iemocap.zarr
    """
    from esn.pipeline.stats import measure_acoustics

    report = measure_acoustics(store_url, overwrite=overwrite,
                               progress=stderr_progress("measured"), break_lock=break_lock,
                               say=lambda line: click.echo(line, err=True))
    click.echo(f"measured {report.measured}, unreadable {report.failed}, "
               f"already done {report.skipped}: {store_url}")


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
@click.option("--deep", is_flag=True,
              help="Also decode every committed chunk (statistics, answers, corpus metadata, "
                   "coordinates and checkpoints).")
@json_option
@library_errors
def validate(store: str, deep: bool, as_json: bool) -> None:
    """Check a store against its schema and its commit marks; exit status 1 on problems.

    Every chunk the store committed must be present (statistics, answers and checkpoints
    of each finished chunk; corpus metadata and coordinates always); --deep decodes them.

    \b
    Example:
        esn validate runs/qwen-omni-iemocap.zarr --deep
    """
    from esn.stores import ActivationStore
    from esn.stores.describe import format_validation

    report = ActivationStore.open(store, check=False).validate(deep=deep)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(format_validation(report))
    if not report.ok:
        raise SystemExit(1)


@main.command()
@click.option("--out", required=True, metavar="DIR", help="Folder for the wav files and manifest.")
@click.option("--per-emotion-per-speaker", type=click.IntRange(min=1), default=10,
              show_default=True, help="Clips of every emotion from every speaker.")
@click.option("--speakers", type=click.IntRange(min=2), default=4, show_default=True)
@click.option("--test-every", type=click.IntRange(min=2), default=4, show_default=True,
              help="Every N-th clip of a speaker and emotion goes to the test split.")
@click.option("--jitter", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Scale of the per-clip parameter spread (smaller: classes overlap less).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing synthetic corpus.")
@library_errors
def synth(out: str, per_emotion_per_speaker: int, speakers: int, test_every: int,
          jitter: float, seed: int, overwrite: bool) -> None:
    """Write a synthetic emotional speech corpus (anger, happy, neutral, sad, surprise).

    Source-filter speech whose classes differ as acted emotions do (F0 level, range and
    contour, speaking rate, intensity, spectral tilt), from several synthetic speakers in
    two groups; same seed, same bytes. Load it as ``manifest:DIR/manifest.csv``.

    \b
    Example:
        esn synth --out runs/synth --per-emotion-per-speaker 20
    """
    from esn.pipeline.synth import synthesize

    manifest = synthesize(out, per_emotion_per_speaker=per_emotion_per_speaker,
                          speakers=speakers, test_every=test_every, jitter=jitter,
                          seed=seed, overwrite=overwrite)
    click.echo(f"wrote {manifest} (corpus spec manifest:{manifest})")


@main.group()
def organism() -> None:
    """The model organism esn-organism: a small Qwen2.5-Omni thinker trained on synthetic
    emotional speech, shipped with esn.

    \b
    Example:
        esn organism train --out runs/organism
    """


@organism.command("train")
@click.option("--out", required=True, metavar="DIR",
              help="Folder for organism.safetensors and organism.json (and corpus/).")
@click.option("--corpus", "manifest", default=None, metavar="MANIFEST",
              help="A synth manifest.csv; default: synthesize the shipped organism's corpus "
              "into DIR/corpus.")
@click.option("--seed", type=int, default=None, help="Training seed [shipped: 0].")
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--encoder-epochs", type=click.IntRange(min=0), default=None)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None)
@click.option("--trainable", type=click.Choice(["mlp", "decoder"]), default=None,
              help="Train only the decoder MLPs (shipped) or the whole decoder.")
@click.option("--overwrite", is_flag=True,
              help="Replace the weights and record of an earlier organism in DIR (any other "
                   "path is refused).")
@click.option("--base", type=click.Choice(["whisper-smollm2"]), default=None,
              help="Train the pretrained organism instead: Whisper base's encoder + "
              "SmolLM2-135M-Instruct (the real weights), projector and LoRA trained to the "
              "probe with a random option order.")
@click.option("--variant", type=click.Choice(["all", "attention"]), default=None,
              help="With --base: LoRA on every linear layer, or on attention only (every "
              "MLP keeps its pretrained weights) [shipped: attention].")
@click.option("--answer", type=click.Choice(["label-digit", "digit"]), default=None,
              help="With --base: train the answer 'sad, 4' (the emotion, then its option "
              "number) or the number alone [shipped: label-digit].")
@click.option("--device", default="cpu", show_default=True, help="With --base: cpu, cuda...")
@click.option("--eval-limit", type=click.IntRange(min=1), default=None,
              help="With --base: evaluate on at most N clips per group.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="With --base: train on at most N clips (a quick check).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="With --base: clips per step [16].")
@click.option("--gate-l1", type=click.FloatRange(min=0), default=None,
              help="With --base: weight of an L1 penalty on the decoder's gate activations "
                   "(an organism asked to localise) [0].")
@library_errors
def organism_train(out: str, manifest: str | None, seed: int | None, epochs: int | None,
                   encoder_epochs: int | None, lr: float | None, weight_decay: float | None,
                   trainable: str | None, overwrite: bool, base: str | None, variant: str,
                   device: str, eval_limit: int | None, limit: int | None,
                   batch_size: int | None, gate_l1: float | None,
                   answer: str | None) -> None:
    """Train the organism; with no options, reproduce the shipped esn-organism (with
    --base whisper-smollm2 --device cuda: the shipped esn-whisper-smollm2).

    Stage 1 trains the audio encoder on frame acoustics and prosody regression, then freezes
    it; stage 2 trains only the decoder MLPs (embeddings, attention and LM head stay
    random) to answer the esn probe with a fixed option order. Settings default to the
    shipped organism's (organism.json); on 2 CPU cores it takes about 4 to 15 minutes.
    Prints held-out accuracy, accuracy with every decoder MLP neuron zeroed, and whether
    the weights equal the shipped ones.

    \b
    Example:
        esn organism train --out runs/organism
    """
    if base is not None:
        return _train_pretrained(out, manifest, seed, epochs, lr, variant, answer, device,
                                 eval_limit, limit, batch_size, gate_l1, overwrite,
                                 unused={"--encoder-epochs": encoder_epochs,
                                         "--weight-decay": weight_decay,
                                         "--trainable": trainable})
    from esn.pipeline.organism import retrain_shipped

    only_base = {"--gate-l1": gate_l1, "--answer": answer, "--variant": variant}
    if any(v is not None for v in only_base.values()):
        raise click.UsageError(", ".join(k for k, v in only_base.items() if v is not None)
                               + ": only with --base")

    given = {"epochs": epochs, "encoder_epochs": encoder_epochs, "lr": lr,
             "weight_decay": weight_decay, "trainable": trainable}
    metrics, same = retrain_shipped(
        out, manifest=manifest, seed=seed, overwrite=overwrite,
        overrides={k: v for k, v in given.items() if v is not None},
        say=lambda line: click.echo(line, err=True))
    click.echo(f"held-out accuracy {100 * metrics['heldout_accuracy']:.1f}%, with every "
               f"decoder MLP neuron zeroed {100 * metrics['mlp_zeroed_accuracy']:.1f}%; "
               f"weights {'equal' if same else 'differ from'} the shipped esn-organism "
               f"({Path(out) / 'organism'})")


def _train_pretrained(out: str, manifest: str | None, seed: int | None, epochs: int | None,
                      lr: float | None, variant: str | None, answer: str | None,
                      device: str, eval_limit: int | None, limit: int | None,
                      batch_size: int | None, gate_l1: float | None, overwrite: bool,
                      unused: Mapping[str, Any]) -> None:
    from esn.pipeline.weights.organism import HELD_OUT, train_pretrained_organism
    from esn.pipeline.weights.probe_training import ProbeTrainSettings

    given = [name for name, value in unused.items() if value is not None]
    if given:
        raise click.UsageError(f"{', '.join(given)} do not apply with --base")
    settings: dict[str, Any] = {"held_out_speakers": HELD_OUT, "limit": limit}
    for key, value in (("seed", seed), ("epochs", epochs), ("lora_lr", lr),
                       ("batch_size", batch_size), ("gate_l1", gate_l1),
                       ("variant", variant), ("answer", answer)):
        if value is not None:
            settings[key] = value
    record = train_pretrained_organism(
        out, manifest=manifest, settings=ProbeTrainSettings(**settings), device=device,
        eval_limit=eval_limit, overwrite=overwrite,
        say=lambda line: click.echo(line, err=True))
    m = record["metrics"]

    def pct(key: str) -> str:
        acc = m[key]["accuracy"]
        return "-" if acc is None else f"{100 * acc:.1f}% (n={m[key]['n']})"

    click.echo(f"unseen speakers {pct('unseen_speakers')}, seen speakers' test clips "
               f"{pct('seen_speakers_test')}, unseen with every decoder MLP neuron zeroed "
               f"{pct('unseen_speakers_mlp_zeroed')}; trained model in "
               f"{Path(out) / 'checkpoint'}")


@main.command()
@click.option("--out", default="esn-demo", show_default=True, metavar="DIR",
              help="Folder for every step's output; an interrupted demo resumes here (a "
                   "folder of other files is refused).")
@click.option("--per-emotion-per-speaker", type=click.IntRange(min=4), default=12,
              show_default=True, help="Size of the synthetic corpus (4 speakers).")
@click.option("--n-boot", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap resamples for confidence intervals.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--model", "models", multiple=True, metavar="ID",
              help="Run the study on this model instead (repeatable): esn-whisper-smollm2 "
                   "(the pretrained organism), a checkpoint directory or any id the other "
                   "commands take; esn-organism and planted (its positive control) are the "
                   "default pair.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1...")
@click.option("--fractions", default=None, metavar="F,F,...",
              help="Deactivation sweep, fractions of all neurons [0.01,0.02,0.05].")
@click.option("--fraction", type=float, default=None,
              help="Main fraction (steering, pool sizes, transfer), one of --fractions [0.02].")
@click.option("--alpha", "alphas", multiple=True, type=float, metavar="A",
              help="Steering strengths (repeatable) [1, 4, 16].")
@click.option("--random-draws", type=click.IntRange(min=1), default=None,
              help="Random neuron sets per emotion [3].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Clips per forward pass [64].")
@click.option("--all-items", is_flag=True,
              help="Identify neurons on wrongly answered items too (a weak model).")
@click.option("--span", type=click.Choice(["all", "audio", "text"]), default="all",
              show_default=True, help="Select on the rates over these prompt positions.")
@library_errors
def demo(out: str, per_emotion_per_speaker: int, n_boot: int, seed: int,
         models: tuple[str, ...], device: str, fractions: str | None, fraction: float | None,
         alphas: tuple[float, ...], random_draws: int | None, batch_size: int | None,
         all_items: bool, span: str) -> None:
    """Run the whole method on the embedded default and write the report.

    Synthesizes emotional speech; extracts activations from the trained model organism
    (esn-organism) and from a positive control whose emotion neurons are planted; selects
    with every method; deactivates (fraction sweep), steers (alpha sweep), sweeps the
    identification-pool size and transfers between speaker groups, with random controls;
    then writes an HTML report. No GPU, checkpoint or corpus needed. With --model the same
    study runs on the named model(s), e.g. the pretrained Whisper + SmolLM2 organism.

    \b
    Example:
        esn demo --out esn-demo
        esn demo --model esn-whisper-smollm2 --device cuda --out demo-pretrained
    """
    from esn.pipeline.demo.run import ORGANISM, PLANTED, DemoOptions, run_demo

    given: dict[str, Any] = {}
    if models:
        names = {"esn-organism": ORGANISM, "planted": PLANTED}
        given["models"] = tuple(names.get(m, m) for m in models)
    if fractions:
        try:
            given["fractions"] = tuple(float(v) for v in fractions.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected comma-separated fractions, got "
                                     f"{fractions!r}", param_hint="--fractions") from None
    if fraction is not None:
        given["fraction"] = fraction
    if alphas:
        given["alphas"] = alphas
    if random_draws is not None:
        given["random_draws"] = random_draws
    if batch_size is not None:
        given["batch_size"] = batch_size
    html = run_demo(DemoOptions(out=Path(out), per_emotion_per_speaker=per_emotion_per_speaker,
                                n_boot=n_boot, seed=seed, device=device,
                                all_items=all_items, span=span, **given),
                    say=lambda line: click.echo(line, err=True))
    click.echo(f"report: {html}")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, metavar="DIR", help="Folder for report.html, PNGs and "
              "summary.json.")
@click.option("--title", default=None, help="Page title.")
@click.option("--n-boot", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True,
              help="Accepted for symmetry: an earlier esn report in DIR is always rebuilt, "
                   "and any other non-empty DIR is refused.")
@library_errors
def report(results: tuple[str, ...], out: str, title: str | None, n_boot: int,
           seed: int, overwrite: bool) -> None:
    """Write figures and tables of intervention results as one self-contained HTML page.

    RESULTS are folders written by ``esn intervene``; results of one model and store form
    a study (fraction, alpha, pool-size sweeps and transfers are recognised from each
    folder's context). The page, and the terminal, open with the findings per model; every
    figure is also written as PNG and SVG, and every number to summary.json.

    \b
    Example:
        esn report runs/results/* --out runs/report
    """
    from esn.pipeline.report import build_report, report_findings

    html = build_report([Path(r) for r in results], Path(out), title=title, n_boot=n_boot,
                        seed=seed, overwrite=overwrite)
    for line in report_findings(html.parent):
        click.echo(line)
    click.echo(f"report: {html}")


if __name__ == "__main__":  # pragma: no cover
    main()
