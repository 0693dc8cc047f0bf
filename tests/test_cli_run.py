"""Tests of the run every command shares: where output goes, when a bar is drawn."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from inspector.cli_run import open_output, show_progress


def test_show_progress_decision() -> None:
    """A bar only when wanted, on a terminal, and never between results on that terminal."""
    decide = functools.partial(show_progress, wanted=True, stderr_is_terminal=True)
    assert decide(same_terminal=False, streaming=True)
    assert decide(same_terminal=True, streaming=False)  # results printed once the bar is done
    assert not decide(same_terminal=True, streaming=True)
    assert not show_progress(wanted=False, stderr_is_terminal=True, same_terminal=False,
                             streaming=False)
    assert not show_progress(wanted=True, stderr_is_terminal=False, same_terminal=False,
                             streaming=False)


def test_open_output_discards_on_error(tmp_path: Path) -> None:
    """open_output(): an exception in the block leaves no file; a clean block renames."""
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        with open_output(str(target)) as out:
            out.write("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with open_output(str(target)) as out:
        out.write("whole\n")
        assert not target.exists()  # nothing at the target until the block ends
    assert target.read_text() == "whole\n"
