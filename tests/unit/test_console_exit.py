"""The console script's exit: the command's status and output, without the teardown."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from kubani.cli import start
from tests.conftest import run_cli

# Records whether the interpreter's teardown ran: atexit work runs only there.
_PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("teardown\\n"))
{before}
sys.stdout.write("written, not flushed")
from kubani.cli.start import leave
leave({status})
"""


def _leave(status: str, before: str = "") -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(_PROBE).format(before=before, status=status)
    # Buffered output, as Python's default is, to show that it is written before the exit.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("status", "code", "stderr"),
    [("None", 0, ""), ("3", 3, ""), ("130", 130, ""), ("-1", 255, ""),
     ("'what / why / fix'", 1, "what / why / fix\n")],
)  # fmt: skip
def test_leave_exits_as_sys_exit_would_with_the_output_written(
    status: str, code: int, stderr: str
) -> None:
    done = _leave(status)
    assert done.returncode == code
    assert done.stdout == "written, not flushed"
    assert done.stderr == stderr  # no "teardown": the interpreter was not torn down


def test_leave_with_the_reader_gone_still_exits_with_the_status_quietly() -> None:
    # stdout a pipe whose reader has closed it, as under `| head`.
    done = _leave("4", before="import os; r, w = os.pipe(); os.close(r); os.dup2(w, 1)")
    assert done.returncode == 4
    assert done.stderr == ""


def test_leave_under_a_tracer_ends_normally_so_that_it_can_write_its_results() -> None:
    done = _leave("5", before="sys.settrace(lambda *args: None)")
    assert done.returncode == 5
    assert done.stdout == "written, not flushed"
    assert done.stderr == "teardown\n"


def test_the_exit_code_of_sys_exit_statuses() -> None:
    assert [start._exit_code(s) for s in (None, 0, 2, 256 + 1, True)] == [0, 0, 2, 1, 1]


def test_the_console_script_keeps_each_exit_status_and_its_output() -> None:
    version = run_cli("version")
    assert version.code == 0 and version.stdout.strip()
    unknown = run_cli("no-such-command")
    assert unknown.code == 2 and "no-such-command" in unknown.stderr
    assert unknown.stdout == ""
