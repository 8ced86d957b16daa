"""Command-line entry point ``linreg-collapse``.

Each command lives in its own module, which exposes ``register(subparsers)``: it adds its parser and
sets ``run=`` to a function taking the parsed arguments and returning an exit code. Registering must stay
cheap: command modules import JAX, sympy, matplotlib and scipy inside ``run``, so ``--help`` and argument
errors answer at once. Bad input raises :class:`~linreg_collapse.errors.InputError`; here it becomes one
line on stderr and exit code 2. Every command runs with JAX's persistent compilation cache
(:mod:`~linreg_collapse.compilation_cache`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .compilation_cache import enable_compilation_cache
from .errors import InputError, ResourceError

PROG = "linreg-collapse"

# Modules that register a command, in the order `--help` lists them.
COMMAND_MODULES = (
    "linreg_collapse.commands.reproduce",
    "linreg_collapse.commands.simulate",
    "linreg_collapse.commands.sweep",
    "linreg_collapse.commands.lm",
    "linreg_collapse.commands.bound",
    "linreg_collapse.commands.verify",
    "linreg_collapse.commands.figures",
)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse parser whose usage errors are one line (no usage dump) with exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG, description="Model collapse in linear regression and its cure by token-level editing (ToEdit): "
                               "simulate, derive, verify, plot; and the same experiments on a small language model.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    enable_compilation_cache()
    try:
        return int(args.run(args) or 0)
    except InputError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except ResourceError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # an unreadable input or unwritable output found mid-run
        print(f"{PROG}: error: {err.strerror or err}: {err.filename!r}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
