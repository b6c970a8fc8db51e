"""The `textseg` command line: one subcommand per package module, each a thin wrapper.

Every subcommand lives next to the functions it calls: the module named in COMMANDS defines
`add_cli_arguments(parser)` and `run_cli(args) -> int` ("module:name" names a module's second command,
`add_name_cli_arguments` and `run_name_cli`). Modules are imported only when their command runs, so
`textseg --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from typing import Callable

COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("textseg.data.synth", "generate synthetic crack and drywall datasets"),
    "extract-masks": ("textseg.data.labels", "write masks/*.png from YOLO labels or a COCO export"),
    "audit": ("textseg.data.audit", "audit datasets: counts, bad files, masks, leaks between splits"),
    "train": ("textseg.engine.train", "train the decoder on CLASS=ROOT datasets"),
    "predict": ("textseg.predict", "segment images with a text prompt"),
    "evaluate": ("textseg.evaluate", "metrics per class and prompt on a split"),
    "inspect": ("textseg.inspection", "predict, then measure each defect (length, width, count) in photos"),
    "measure": ("textseg.inspection:measure", "measure each defect in existing masks, as inspect does"),
    "notebooks": ("textseg.workbook.runner", "run the numbered notebooks headless with papermill"),
}


def entry_points(spec: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """(add_arguments, run) of a COMMANDS module spec."""
    module_name, _, name = spec.partition(":")
    module = importlib.import_module(module_name)
    prefix = f"{name}_" if name else ""
    return getattr(module, f"add_{prefix}cli_arguments"), getattr(module, f"run_{prefix}cli")


def build_parser(load_modules: bool = True) -> argparse.ArgumentParser:
    """The top-level parser; with load_modules, each subcommand's own arguments too."""
    parser = argparse.ArgumentParser(prog="textseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if load_modules:
            entry_points(module_name)[0](p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `textseg` console script."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        build_parser(load_modules=False).print_help()
        return 0 if command is None and any(a in ("-h", "--help") for a in argv) else 2
    add_arguments, run = entry_points(COMMANDS[command][0])
    parser = argparse.ArgumentParser(prog="textseg")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command")
    add_arguments(sub.add_parser(command, description=COMMANDS[command][1]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with warnings.catch_warnings():  # a warning is one line for a user, not a source listing
            warnings.showwarning = lambda message, *_: print(f"textseg {command}: warning: {message}", file=sys.stderr)
            return int(run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError, FloatingPointError) as exc:
        print(f"textseg {command}: error: {exc}", file=sys.stderr)
        return 1
