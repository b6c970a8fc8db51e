"""The `textseg` command line: one subcommand per package module, each a thin wrapper.

Every subcommand lives next to the functions it calls: the module named in COMMANDS defines
`add_cli_arguments(parser)` and `run_cli(args) -> int`. Modules are imported only when their
command runs, so `textseg --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("textseg.synth", "generate synthetic crack and drywall datasets"),
    "extract-masks": ("textseg.labels", "write masks/*.png from YOLO labels or a COCO export"),
    "audit": ("textseg.audit", "audit datasets: counts, bad files, masks, leaks between splits"),
    "train": ("textseg.train", "train the decoder on CLASS=ROOT datasets"),
    "predict": ("textseg.predict", "segment images with a text prompt"),
    "evaluate": ("textseg.evaluate", "metrics per class and prompt on a split"),
    "notebooks": ("textseg.notebooks", "run the numbered notebooks headless with papermill"),
}


def build_parser(load_modules: bool = True) -> argparse.ArgumentParser:
    """The top-level parser; with load_modules, each subcommand's own arguments too."""
    parser = argparse.ArgumentParser(prog="textseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if load_modules:
            importlib.import_module(module_name).add_cli_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `textseg` console script."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        build_parser(load_modules=False).print_help()
        return 0 if command is None and any(a in ("-h", "--help") for a in argv) else 2
    module = importlib.import_module(COMMANDS[command][0])
    parser = argparse.ArgumentParser(prog="textseg")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command")
    module.add_cli_arguments(sub.add_parser(command, description=COMMANDS[command][1]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(module.run_cli(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError, FloatingPointError) as exc:
        print(f"textseg {command}: error: {exc}", file=sys.stderr)
        return 1
