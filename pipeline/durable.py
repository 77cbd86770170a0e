"""Writing outputs so that nothing is lost: atomic replacement, and Ctrl-C held off while outputs are written.

Every end-of-run file (``summary.json``, ``tracklets.npz``, identities, the gallery, rewritten track files) is
written to a temporary file in its own folder and moved over the target with ``os.replace``: a reader sees the
previous complete file or the new complete file, never half of one, whatever interrupts the writer.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` (same suffix); on success it replaces ``path``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open`` for writing whose content appears at ``path`` only once the block completes."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text(path: str | Path, text: str) -> None:
    """``Path.write_text``, atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def check_writable_dir(path: str | Path) -> None:
    """Create ``path`` if needed and prove a file can be written in it; OSError (with the folder) otherwise."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test.") as fh:
        fh.write(b"x")
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def ctrl_c_deferred(what: str) -> Iterator[None]:
    """While the block writes ``what``, Ctrl-C (SIGINT) is logged and ignored instead of interrupting it.

    Only the main thread can own signal handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ignore(_signum: int, _frame: object) -> None:
        log.warning("Ctrl-C ignored: still writing %s (each file is replaced atomically)", what)

    previous: Callable | int | None = signal.signal(signal.SIGINT, ignore)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
