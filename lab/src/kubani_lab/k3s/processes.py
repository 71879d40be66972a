"""The programs the stand-in starts end with it, as K3s's own components (goroutines of one
process) do: its unit uses ``KillMode=process`` so that containers survive a restart, which
would otherwise leave an API server holding its port for the next start.

util-linux's ``setpriv --pdeathsig`` sets the signal and then runs the program (a
``preexec_fn`` would run Python between fork and exec in a threaded process)."""

from __future__ import annotations

import shutil
import subprocess


def dying_with_parent(command: list[str]) -> list[str]:
    """The command, run so that it gets SIGTERM when the thread that started it ends."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


def terminate(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL once the grace period is over."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
