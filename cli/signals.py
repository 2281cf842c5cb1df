"""Ctrl-C and SIGTERM: stop cleanly with exit code 130 or 143, wherever they land.

A signal that arrives while Python runs inside a C callback (Numba writing its
cache, for one) raises there, where the exception cannot propagate: Python prints
it as "Exception ignored" with a traceback and the library may then fail with an
unrelated error. So the handlers remember the signal; the command's error handling
asks `exit_code_of_signal` before treating an error as a bug, and long loops call
`raise_if_signalled` in case the library went on as if nothing had happened.
"""

import signal
import sys

_received = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be."""


def raise_interrupted(signum, frame):
    """A SIGINT handler: Ctrl-C's KeyboardInterrupt, remembered."""
    _received.append(signum)
    raise KeyboardInterrupt()


def raise_terminated(signum, frame):
    """A SIGTERM handler: stop as Ctrl-C does, telling the two apart; remembered."""
    _received.append(signum)
    raise Terminated()


def exit_code_of_signal():
    """128 + the number of the first signal received, or None."""
    return 128 + _received[0] if _received else None


def raise_if_signalled():
    """Raise the exception of a signal received but swallowed on its way."""
    if _received:
        raise Terminated() if _received[0] == signal.SIGTERM else KeyboardInterrupt()


def install():
    """Ctrl-C and SIGTERM (a service manager, `kill`, `timeout`) handled as above,
    so that every command cleans up (no partial output, no temporary file) and
    exits 130 or 143; a signal swallowed in a C callback kept quiet: it was
    remembered, and the command stops with its exit code."""
    signal.signal(signal.SIGINT, raise_interrupted)
    signal.signal(signal.SIGTERM, raise_terminated)
    default_hook = sys.unraisablehook

    def quiet_interrupts(unraisable):
        if not (_received and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            default_hook(unraisable)

    sys.unraisablehook = quiet_interrupts
