"""Temporary files and folders beside an output, safe against Ctrl-C.

A temporary path is named *before* it is created, so the code that removes it
knows its name whatever moment an interrupt lands at: inside the call that
creates it, or between that call and the ``try`` that guards it.
``tempfile.mkstemp`` returns the name only once the file exists, which leaves a
file behind when Ctrl-C arrives in between.
"""

import os
import secrets
import shutil

#: Every temporary name starts so (`nlmeans batch` skips such files as inputs).
PREFIX = ".nlmeans-"

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def temp_name(folder, suffix=""):
    """A new name in `folder`: 64 random bits, so it is nobody else's file."""
    return os.path.join(folder, f"{PREFIX}{secrets.token_hex(8)}{suffix}")


def create_private_file(path):
    """Create `path` (it must not exist), readable by its owner only; its descriptor."""
    return os.open(path, _FILE_FLAGS, 0o600)


def discard(path):
    """Remove the temporary file or folder `path` if it is there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
