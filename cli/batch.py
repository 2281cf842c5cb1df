"""``nlmeans batch INPUT_DIR OUTPUT_DIR``: denoise every image of a folder."""

import contextlib
import fnmatch
import json
import os
import signal
import sys
import time

import click

from nlmeans.io import TEMP_PREFIX
from nlmeans_cli.options import denoise_kwargs, denoise_options, max_memory_option
from nlmeans_cli.processing import Interrupted, files_bar, process_task
from nlmeans_cli.signals import (Terminated, raise_if_signalled, raise_interrupted,
                                 raise_terminated)

EXAMPLE = """
Examples:

\b
  nlmeans batch photos/ clean/                        # every image, all cores
  nlmeans batch scans/ out/ --recursive --pattern '*.tif' --jobs 2
  nlmeans batch raw/ out/ --format png --suffix _clean --skip-existing
  nlmeans batch raw/ out/ --dry-run --json
"""


def find_inputs(input_dir, patterns, recursive, output_dir=None):
    """Image files under input_dir matching any pattern (case-insensitively, as
    file systems that keep `.JPG` and `.jpg` alike suggest), as paths relative to
    it, sorted. The output folder, where it lies inside the input folder, is
    skipped: outputs never become inputs."""
    from nlmeans.io import READABLE_EXTENSIONS

    skip = os.path.realpath(output_dir) if output_dir else None
    patterns = [p.lower() for p in patterns]
    found = []
    for root, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs
                         if os.path.realpath(os.path.join(root, d)) != skip) if recursive else []
        for name in sorted(files):
            if name.startswith(TEMP_PREFIX):
                continue  # a temporary file of an interrupted write
            rel = os.path.relpath(os.path.join(root, name), input_dir)
            if patterns:
                if any(fnmatch.fnmatchcase(name.lower(), p)
                       or fnmatch.fnmatchcase(rel.lower(), p) for p in patterns):
                    found.append(rel)
            elif os.path.splitext(name)[1].lower() in READABLE_EXTENSIONS:
                found.append(rel)
    return found


def output_path_for(rel, output_dir, suffix, fmt):
    stem, ext = os.path.splitext(rel)
    if fmt:
        ext = "." + fmt
    return os.path.join(output_dir, stem + suffix + ext)


# Worker side: each process runs a share of the cores' kernel threads.
_WORKER = {}


def _init_worker(threads, options, volume, quality, fmt, max_memory=None):
    # Ctrl-C and SIGTERM are the parent's to handle: it stops handing out work and
    # waits for the files in flight.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import numba

    # NUMBA_NUM_THREADS, where the user set it, caps the threads.
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    _WORKER.update(options=options, volume=volume, quality=quality, fmt=fmt,
                   max_memory=max_memory)


def _work(task):
    return process_task(task, **_WORKER)


@click.command("batch", epilog=EXAMPLE)
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path(file_okay=False))
@denoise_options
@click.option("--pattern", "patterns", multiple=True, metavar="GLOB",
              help="Only files matching GLOB (repeatable; default: every readable image type).")
@click.option("--recursive", is_flag=True, help="Descend into subfolders; OUTPUT_DIR mirrors "
                                                "the folder tree.")
@click.option("--suffix", default="", help="Add this to each output file's stem.")
@click.option("--format", "fmt", type=click.Choice(["png", "tif", "jpg", "bmp", "webp"]),
              default=None, help="Convert outputs to this format (default: keep each input's).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="JPEG/WebP output quality.")
@click.option("--volume", is_flag=True, help="Denoise multi-page TIFFs as 3-D volumes.")
@max_memory_option
@click.option("--skip-existing", is_flag=True, help="Leave outputs that exist (resume a run).")
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist.")
@click.option("--dry-run", is_flag=True, help="List what would be done; write nothing.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Files processed at once (default: all cores). The kernel's threads are "
                   "divided among them so the machine is not oversubscribed.")
@click.option("--scheduler", metavar="ADDRESS|local:N", default=None,
              help="Send one task per file to a dask.distributed scheduler (tcp://host:8786; "
                   "workers need nlmeans and the same paths) or to a local cluster of N "
                   "worker processes (local:N). Needs pip install 'nlmeans[dask]'.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def batch_command(input_dir, output_dir, patterns, recursive, suffix, fmt, quality, volume,
                  max_memory, skip_existing, overwrite, dry_run, jobs, scheduler, as_json, quiet,
                  **options):
    """Denoise every image in INPUT_DIR into OUTPUT_DIR (created if missing).

    One bad file never stops the batch: it is reported with its reason and the
    exit code is 1. Ctrl-C stops cleanly: finished files stay, no half-written
    file is left, and the summary is still printed.
    """
    from nlmeans_cli.processing import Outcome, log_to_stderr, same_file, warm_up

    if skip_existing and overwrite:
        raise click.UsageError("--skip-existing and --overwrite exclude each other")
    if scheduler is not None:
        from nlmeans_cli.cluster import check_scheduler

        if jobs is not None:
            raise click.UsageError("--jobs and --scheduler exclude each other: the cluster's "
                                   "workers decide how many files run at once")
        check_scheduler(scheduler)
    if os.path.exists(output_dir) and same_file(input_dir, output_dir) and not (suffix or fmt):
        raise click.UsageError("OUTPUT_DIR is INPUT_DIR: give --suffix or --format so that "
                               "no input is overwritten")
    kwargs = denoise_kwargs(**options)
    rels = find_inputs(input_dir, patterns, recursive, output_dir)
    if not rels:
        what = f"matching {', '.join(patterns)}" if patterns else "of a readable type"
        raise click.ClickException(f"{input_dir}: no image files {what}"
                                   + ("" if recursive else " (subfolders need --recursive)"))
    tasks, outcomes = [], []
    for rel in rels:
        src = os.path.join(input_dir, rel)
        dst = output_path_for(rel, output_dir, suffix, fmt)
        if os.path.exists(dst) and same_file(src, dst):
            outcomes.append(Outcome(src, dst, "failed", "output would overwrite the input"))
        elif os.path.exists(dst) and skip_existing:
            outcomes.append(Outcome(src, dst, "skipped", "output exists"))
        elif os.path.exists(dst) and not overwrite:
            outcomes.append(Outcome(src, dst, "failed", "output exists (use --overwrite or "
                                                        "--skip-existing)"))
        else:
            tasks.append((src, dst))

    if dry_run:
        for src, dst in tasks:
            outcomes.append(Outcome(src, dst, "planned"))
        _finish(outcomes, 0.0, as_json, quiet, dry_run=True)
        return

    cores = os.cpu_count() or 1
    jobs = min(jobs or cores, max(len(tasks), 1))
    started = time.perf_counter()
    interrupted = False
    created = []  # the output folders this run made, removed again if left empty
    if tasks:
        for folder in sorted({os.path.dirname(os.path.abspath(dst)) for _, dst in tasks}):
            created += _missing_folders(folder)
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise click.ClickException(f"{folder}: cannot create output folder "
                                           f"({exc.strerror})") from None
        show_bar = not quiet and sys.stderr.isatty()
        log_to_stderr(quiet)
        if scheduler is not None:
            jobs = None
        elif jobs > 1:
            warm_up(kwargs, tasks[0][0])
        # SIGTERM stops the batch as Ctrl-C does (its handler: nlmeans_cli.signals).
        try:
            if scheduler is not None:
                from nlmeans_cli.cluster import run_on_cluster

                outcomes += run_on_cluster(tasks, scheduler, dict(
                    options=kwargs, volume=volume, quality=quality, fmt=fmt,
                    max_memory=max_memory), show_bar)
            else:
                # The files in flight share the memory budget.
                from nlmeans.runners.outofcore import default_budget

                share = (max_memory or default_budget()) // jobs
                outcomes += _run(tasks, jobs, max(1, cores // jobs), kwargs, volume, quality,
                                 fmt, show_bar, share)
        except Interrupted as stop:
            outcomes += stop.outcomes
            interrupted = 143 if stop.terminated else 130
        finally:
            _remove_empty(created)
    _finish(outcomes, time.perf_counter() - started, as_json, quiet,
            interrupted=bool(interrupted), jobs=jobs, total=len(rels))
    if interrupted:
        raise SystemExit(interrupted)  # 128 + the signal's number
    if any(o.status == "failed" for o in outcomes):
        raise SystemExit(1)


def _missing_folders(folder):
    """`folder` and those of its ancestors that do not exist yet, outermost first."""
    missing = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        folder = parent if parent != folder else None
    return missing[::-1]


def _remove_empty(folders):
    """Remove those of `folders` that are empty, innermost first (a batch whose
    files all failed leaves no empty folder tree behind)."""
    for folder in sorted(set(folders), key=len, reverse=True):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty (or gone): it stays as it is


def _run(tasks, jobs, threads, options, volume, quality, fmt, show_bar, max_memory=None):
    """Outcomes of all tasks, processed `jobs` at a time, each within `max_memory`."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    import multiprocessing

    init = (threads, options, volume, quality, fmt, max_memory)
    done = []
    bar = files_bar(len(tasks))
    with bar if show_bar else contextlib.nullcontext() as bar:
        try:
            if jobs == 1:
                _init_worker(*init)
                # In-process: Ctrl-C and SIGTERM must reach this loop (the worker setup
                # ignores them).
                signal.signal(signal.SIGINT, raise_interrupted)
                signal.signal(signal.SIGTERM, raise_terminated)
                for task in tasks:
                    raise_if_signalled()
                    done.append(_work(task))
                    if bar is not None:
                        bar.update(1, done[-1])
                return done
            # "spawn": fresh workers, so Numba's threads are not forked mid-flight.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                     initargs=init) as pool:
                queue, pending = list(reversed(tasks)), set()
                try:
                    # One file per worker at a time: an interruption then stops at once,
                    # with no file queued behind the ones being denoised.
                    while queue or pending:
                        while queue and len(pending) < jobs:
                            pending.add(pool.submit(_work, queue.pop()))
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in finished:
                            done.append(future.result())
                            if bar is not None:
                                bar.update(1, done[-1])
                except KeyboardInterrupt as stop:
                    # Files being written finish (workers ignore SIGINT and SIGTERM), so
                    # nothing is left half-written, and the pool's processes all end.
                    pool.shutdown(wait=True, cancel_futures=True)
                    done += [future.result() for future in pending
                             if future.done() and not future.cancelled()]
                    raise Interrupted(done, isinstance(stop, Terminated)) from None
            return done
        except KeyboardInterrupt as stop:
            raise Interrupted(done, isinstance(stop, Terminated)) from None


def _finish(outcomes, seconds, as_json, quiet, dry_run=False, interrupted=False, jobs=1,
            total=None):
    """The summary (and --json's report) of a batch of `total` files."""
    counts = {s: sum(o.status == s for o in outcomes)
              for s in ("done", "skipped", "failed", "planned")}
    not_started = 0 if total is None else total - len(outcomes)
    pixels = sum(o.pixels for o in outcomes if o.status == "done")
    if as_json:
        click.echo(json.dumps({
            "files": [{"input": o.input, "output": o.output, "status": o.status,
                       "reason": o.reason, "seconds": round(o.seconds, 4), "pixels": o.pixels}
                      for o in outcomes],
            "summary": dict(counts, not_started=not_started, seconds=round(seconds, 3),
                            jobs=jobs, interrupted=interrupted,
                            images_per_second=(round(counts["done"] / seconds, 3)
                                               if seconds else None),
                            megapixels_per_second=round(pixels / seconds / 1e6, 3)
                            if seconds else None),
        }, indent=2))
    if quiet:
        return
    err = sys.stderr
    if dry_run:
        for o in outcomes:
            click.echo(f"{o.status}: {o.input} -> {o.output}" + (f" ({o.reason})" if o.reason
                                                                   else ""), file=err)
    for o in outcomes:
        if o.status == "failed":
            click.echo(f"failed: {o.input}: {o.reason}", file=err)
    rate = f", {counts['done'] / seconds:.2f} images/s, {pixels / seconds / 1e6:.2f} MP/s" \
        if seconds and counts["done"] else ""
    head = "interrupted: " if interrupted else ""
    click.echo(f"{head}{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} "
               f"failed" + (f", {counts['planned']} planned" if dry_run else "")
               + (f", {not_started} not started" if not_started else "")
               + f" in {seconds:.1f} s{rate}", file=err)
