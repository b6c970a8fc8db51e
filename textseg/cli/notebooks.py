"""`textseg notebooks`: run the numbered notebooks headless with papermill."""

from __future__ import annotations

import argparse
from pathlib import Path

from textseg.workbook.runner import (NOTEBOOKS_DIR, list_notebooks, parameter_value, parse_overrides, run_notebooks,
                                     select_notebooks, training_verdict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg notebooks`."""
    parser.add_argument("--smoke", action="store_true", help="tiny models and data (CI), under --work")
    parser.add_argument("--only", action="append", metavar="NN", help="run only these notebooks (repeatable): 03 or 03_train_decoder")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the executed copies (default outputs/notebooks; WORK/notebooks with --work or --smoke)")
    parser.add_argument("--work", type=Path, default=None,
                        help="read and write data, runs and figures under this folder (default for --smoke: outputs/smoke)")
    parser.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR, help="folder of the numbered notebooks")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                        help="set a notebook parameter (repeatable; a name given twice makes a list)")


def run(args: argparse.Namespace) -> int:
    """Run the notebooks, print one line per notebook, exit 1 on the first failure."""
    notebooks = select_notebooks(list_notebooks(args.notebooks_dir), args.only)
    overrides = parse_overrides(args.parameter, notebooks)
    work = args.work or (Path("outputs/smoke") if args.smoke else None)
    out = args.out or (work / "notebooks" if work is not None else Path("outputs/notebooks"))
    results = run_notebooks(smoke=args.smoke, only=args.only, out_dir=out, parameters=overrides,
                            notebooks_dir=args.notebooks_dir, work_dir=work)
    for result in results:
        print(result.summary())
    trained = next((nb for nb, r in zip(notebooks, results) if r.ok and nb.stem.startswith("03")), None)
    if trained is not None and not args.smoke:
        print(training_verdict(parameter_value("run_dir", overrides, trained)))
    skipped = [nb.stem for nb in notebooks[len(results):]]
    if skipped:
        print(f"not run: {', '.join(skipped)}")
    return 0 if all(r.ok for r in results) else 1
