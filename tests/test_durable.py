"""Atomic writes and the Ctrl-C shield of end-of-run outputs."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from pipeline.durable import atomic_open, atomic_path, check_writable_dir, ctrl_c_deferred, write_text


def test_atomic_write_replaces_the_file_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_text(target, "old")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as fh:
        fh.write("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    write_text(target, "new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_atomic_path_keeps_the_suffix_for_writers_that_need_it(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "t.npz") as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path
        with open(tmp, "wb") as fh:
            np.savez(fh, a=np.arange(3))
    assert np.load(tmp_path / "t.npz")["a"].tolist() == [0, 1, 2]


def test_second_ctrl_c_is_ignored_while_writing(tmp_path: Path) -> None:
    with ctrl_c_deferred("outputs"):
        signal.raise_signal(signal.SIGINT)  # would raise KeyboardInterrupt right here without the shield
        write_text(tmp_path / "a.txt", "written")
    assert (tmp_path / "a.txt").read_text() == "written"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_writable_dir_check_names_the_folder(tmp_path: Path) -> None:
    check_writable_dir(tmp_path / "new" / "run")
    assert list((tmp_path / "new" / "run").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError) as err:
        check_writable_dir(tmp_path / "file" / "run")
    assert "file" in str(err.value)
