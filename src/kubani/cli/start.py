"""``cluster-mgr``'s console script: the collector paused while the CLI starts, then the CLI.

Kept apart from ``kubani.cli.main``, which imports Typer as it loads: the pause has to
begin before that import.
"""

# A command that has not finished by then is a long one (a provision, a watch): it collects
# again from here on, skipping what start-up made (frozen).
STARTUP_PAUSE_S = 2.0


def run() -> None:
    from kubani.collector import pause_for

    pause_for(STARTUP_PAUSE_S)
    from kubani.cli.main import run as run_cli

    run_cli()
