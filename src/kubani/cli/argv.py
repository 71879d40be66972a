"""Global options wherever they are typed: ``cluster-mgr validate -i hosts.yml`` works as
``cluster-mgr -i hosts.yml validate`` does (as with kubectl's global flags)."""

from __future__ import annotations

_WITH_VALUE = ("-i", "--inventory", "--vault-password-file")
_FLAGS = ("--debug",)


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` (without the program name) with the global options moved to the front.
    Nothing after ``--`` moves; a value that is missing is left for the parser to report."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            rest += args[index:]
            break
        if word in _FLAGS:
            hoisted.append(word)
        elif word in _WITH_VALUE and index + 1 < len(args):
            hoisted += [word, args[index + 1]]
            index += 1
        elif word.startswith(("--inventory=", "--vault-password-file=")) or (
            word.startswith("-i") and len(word) > 2
        ):
            hoisted.append(word)
        else:
            rest.append(word)
        index += 1
    return hoisted + rest
