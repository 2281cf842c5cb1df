"""``nlmeans batch --scheduler``: one task per file on a dask.distributed cluster.

The tasks are the local batch's (read, denoise, write atomically, a bad file
reported rather than raised), so outputs, summary, JSON and --skip-existing are
the same. Workers must have nlmeans installed and see the files at the same
paths (shared storage). A worker that dies takes only its file with it: the
scheduler hands the file to another worker once, and if that one dies too the
file is reported as failed. ``local:N`` starts a LocalCluster of N worker
processes with one thread each, on this machine.
"""

import contextlib
import os

import click

from nlmeans_cli.processing import Interrupted, Outcome, files_bar, process_task, warm_up
from nlmeans_cli.signals import Terminated

INSTALL = "pip install 'nlmeans[dask]'"
# A file whose worker died is given to one more worker, then reported failed.
_ALLOWED_FAILURES = 1
# How often a LocalCluster's servers check that their event loop is responsive.
_TICK_INTERVAL = "1s"


def check_scheduler(scheduler):
    """UsageError for a malformed --scheduler; ClickException (exit 1) when
    dask.distributed is not installed."""
    if scheduler.startswith("local:"):
        count = scheduler[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise click.UsageError(f"--scheduler {scheduler}: local:N needs a number of worker "
                                   f"processes N >= 1")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise click.ClickException(f"--scheduler needs dask.distributed: {INSTALL}") from None


def _cluster_task(task, settings, threads):
    """Run on a worker: the batch's task with the worker's share of the cores."""
    import numba

    from nlmeans.api.jobs import task_threads

    cap = numba.config.NUMBA_NUM_THREADS  # the most this process has (NUMBA_NUM_THREADS)
    numba.set_num_threads(min(threads or task_threads() or cap, cap))
    return process_task(task, **settings)


@contextlib.contextmanager
def _client(scheduler):
    """A distributed Client for `scheduler`; a LocalCluster for local:N."""
    import dask
    from distributed import Client, LocalCluster

    if not scheduler.startswith("local:"):
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise click.ClickException(f"--scheduler {scheduler}: cannot connect "
                                       f"({str(exc).splitlines()[0]})") from None
        with client:
            yield client, None
        return
    workers = int(scheduler[len("local:"):])
    # One task per worker thread at a time: a worker that dies then takes only the file
    # it was denoising with it (tasks queued on it would count its death too).
    # No statistical profiler (it samples every worker thread's stack every 10 ms), and
    # event-loop health checks every second instead of every 20 ms: with every core
    # denoising, both take the GIL and a core's time from the workers.
    with dask.config.set({"distributed.scheduler.allowed-failures": _ALLOWED_FAILURES,
                          "distributed.scheduler.worker-saturation": 1.0,
                          "distributed.worker.daemon": False,
                          "distributed.worker.profile.enabled": False,
                          "distributed.admin.tick.interval": _TICK_INTERVAL}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        with cluster, Client(cluster) as client:
            # Each process gets its share of the cores for the kernel's threads.
            yield client, max(1, (os.cpu_count() or 1) // workers)


def run_on_cluster(tasks, scheduler, settings, show_bar, work=_cluster_task):
    """Outcomes of all tasks, run on the cluster as `work(task, settings, threads)`;
    Ctrl-C and SIGTERM cancel the files not started and wait for those being
    written."""
    from distributed import as_completed

    if scheduler.startswith("local:"):
        warm_up(settings["options"], tasks[0][0])  # workers then load the kernel from the cache
    done = []
    bar = files_bar(len(tasks))
    with _client(scheduler) as (client, threads), \
            (bar if show_bar else contextlib.nullcontext()) as bar:
        futures = {client.submit(work, task, settings, threads, pure=False,
                                 key=f"nlmeans-{index}-{os.path.basename(task[0])}"): task
                   for index, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                done.append(_outcome(future, futures[future], Outcome))
                if bar is not None:
                    bar.update(1, done[-1])
        except KeyboardInterrupt as stop:
            running = [f for f in futures if f.status == "pending" and _started(client, f)]
            client.cancel([f for f in futures if f.status == "pending" and f not in running])
            for future in running:  # being written: let them finish, nothing half-done
                with contextlib.suppress(Exception):
                    future.result()
                done.append(_outcome(future, futures[future], Outcome))
            raise Interrupted(done, isinstance(stop, Terminated)) from None
    return done


def _outcome(future, task, outcome_type):
    """The task's Outcome; a task whose workers died, or that could not run,
    is a failed file."""
    try:
        outcome = future.result()
    except Exception as exc:  # KilledWorker, CancelledError, a lost connection
        from distributed import KilledWorker

        reason = ("its worker died twice while denoising it" if isinstance(exc, KilledWorker)
                  else f"{type(exc).__name__}: {exc}".splitlines()[0])
        return outcome_type(task[0], task[1], status="failed", reason=reason)
    outcome.details = None
    return outcome


def _started(client, future):
    """Whether the scheduler has the task processing on a worker."""
    try:
        states = client.run_on_scheduler(
            lambda dask_scheduler, key=future.key: getattr(dask_scheduler.tasks.get(key),
                                                           "state", None))
    except Exception:
        return True  # unknown: wait for it rather than leave it running unseen
    return states == "processing"
