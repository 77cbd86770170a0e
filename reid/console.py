"""What every command prints: quiet logging routed through progress bars, bars only on a terminal, and one
end-of-run summary format.

It lives in ``reid`` because ``reid`` is the bottom layer that both the trainer's and the pipeline's
commands import; it holds no state of its own beyond the root logger's handler.

- Third-party libraries that log at INFO on import or per call (faiss's loader, ultralytics, PIL, ...)
  are raised to WARNING: their warnings and errors still show, their chatter does not.
- Log lines go through :func:`tqdm.tqdm.write`, so they never break a progress bar.
- Bars are drawn only when stderr is a terminal; redirected to a file, stderr holds log lines only.
- Every command ends with :func:`end_summary`: one line of facts, the output folder, the next command.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

QUIET_LOGGERS = (
    "faiss",
    "ultralytics",
    "PIL",
    "matplotlib",
    "numexpr",
    "urllib3",
    "onnxruntime",
    "openvino",
    "h5py",
    "filelock",
    "fsspec",
)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%H:%M:%S"


class TqdmHandler(logging.Handler):
    """A handler that writes each record with ``tqdm.write``: bars are cleared, the line printed, bars redrawn."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream or sys.stderr)
        except Exception:  # never let logging take the run down
            self.handleError(record)


def setup_logging(level: str | int = "INFO", stream: IO[str] | None = None) -> None:
    """Route the root logger through :class:`TqdmHandler` at ``level`` and quieten third-party INFO chatter.

    Replaces handlers a previous call (or ``logging.basicConfig``) installed, so calling it twice is safe.
    """
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"log level: expected DEBUG, INFO, WARNING or ERROR, got {level!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = TqdmHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
    # Ultralytics configures its own stdout logger when imported (after this call): its switch is YOLO_VERBOSE.
    os.environ.setdefault("YOLO_VERBOSE", "True" if numeric <= logging.DEBUG else "False")


def bars_enabled(requested: bool = True, stream: IO[str] | None = None) -> bool:
    """Progress bars only when asked for and the stream is a terminal."""
    stream = stream or sys.stderr
    return bool(requested) and hasattr(stream, "isatty") and stream.isatty()


def progress(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr that is drawn only when :func:`bars_enabled` (``enabled`` and a terminal)."""
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=not bars_enabled(enabled, kwargs["file"]), **kwargs)


def end_summary(title: str, facts: Sequence[str], out: str | Path | None = None, next_steps: Sequence[str] = ()) -> str:
    """The one end-of-command format::

    <title>: fact, fact, fact
      output: <folder or file>
      next:   <command>
              <command>
    """
    lines = [f"{title}: {', '.join(facts)}" if facts else title]
    if out is not None:
        lines.append(f"  output: {out}")
    for i, step in enumerate(next_steps):
        lines.append(f"  {'next:' if i == 0 else '':<7} {step}")
    return "\n".join(lines)
