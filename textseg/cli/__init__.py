"""textseg: find wall cracks and drywall taping seams in photos with a text prompt, and measure them.

The command line: one module per command in this package (textseg/cli/COMMAND.py), each declaring its options in
`add_arguments(parser)` and running in `run(args) -> int` on the library's functions. A command's module is imported
only when it runs, so `textseg --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from typing import Callable

COMMANDS: dict[str, str] = {
    "synth": "make two small synthetic datasets (cracks, drywall) to try everything without real photos",
    "extract-masks": "write masks/*.png for a dataset labelled with YOLO files or a COCO export",
    "audit": "check datasets: counts, unreadable files, masks, copies leaking between splits",
    "train": "train a model on CLASS=ROOT datasets",
    "predict": "segment photos with a text prompt: a mask and an overlay per photo",
    "evaluate": "score a trained model per class and prompt on a split",
    "inspect": "segment photos, then count and measure each defect (length, width; mm with --marker)",
    "measure": "count and measure each defect in masks you already have",
    "notebooks": "run the numbered notebooks headless (the main job)",
}


def entry_points(command: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """(add_arguments, run) of a command's module, textseg/cli/COMMAND.py."""
    module = importlib.import_module(f"textseg.cli.{command.replace('-', '_')}")
    return module.add_arguments, module.run


def build_parser(load_modules: bool = True) -> argparse.ArgumentParser:
    """The top-level parser; with load_modules, each subcommand's own arguments too."""
    parser = argparse.ArgumentParser(prog="textseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if load_modules:
            entry_points(name)[0](p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `textseg` console script."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        build_parser(load_modules=False).print_help()
        return 0 if command is None and any(a in ("-h", "--help") for a in argv) else 2
    add_arguments, run = entry_points(command)
    parser = argparse.ArgumentParser(prog="textseg")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command")
    add_arguments(sub.add_parser(command, description=COMMANDS[command]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with warnings.catch_warnings():  # a warning is one line for a user, not a source listing
            warnings.showwarning = lambda message, *_: print(f"textseg {command}: warning: {message}", file=sys.stderr)
            return int(run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError, FloatingPointError) as exc:
        print(f"textseg {command}: error: {exc}", file=sys.stderr)
        return 1
