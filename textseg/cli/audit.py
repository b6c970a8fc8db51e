"""`textseg audit ROOT ...`: counts, unreadable files, masks, and copies leaking between splits."""

from __future__ import annotations

import argparse
from pathlib import Path

from textseg.data.audit import GROUPS_FILE, audit, audit_figure, dedupe, parse_roots, summary, write_photo_groups
from textseg.files import save_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `textseg audit`."""
    parser.add_argument("roots", nargs="+", metavar="ROOT", help="dataset root, or CLASS=ROOT (crack=data/cracks)")
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    parser.add_argument("--figure", type=Path, default=None, help="write a PNG: counts, foreground, duplicate pairs")
    parser.add_argument("--dedupe-to", type=Path, default=None, metavar="DIR",
                        help="write a leak-free copy of each root to DIR/<root name>: later-split files with a copy "
                             "or another shot of the scene in an earlier split dropped")
    parser.add_argument("--no-duplicates", action="store_true", help="skip the cross-split duplicate search")
    parser.add_argument("--photo-groups", action="store_true",
                        help=f"also search the train images of each root for copies and re-shots and write ROOT/{GROUPS_FILE}: "
                             "validation carves from train then keep them on one side")
    parser.add_argument("--top-k", type=int, default=20, help="candidates per image and shortlist descriptor (default 20)")
    parser.add_argument("--min-inliers", type=int, default=12,
                        help="geometric matches that make a copy or another shot of the scene (default 12)")
    parser.add_argument("--min-alignment", type=float, default=0.5,
                        help="edge agreement of the aligned pair that makes a copy, 0..1 (default 0.5)")
    parser.add_argument("--max-misfit", type=float, default=0.8,
                        help="local shifts left after the affine fit, pixels at 400 px, above which a pair is "
                             "another shot of the scene, not a copy (default 0.8)")
    parser.add_argument("--workers", type=int, default=2, help="threads (default 2)")


def run(args: argparse.Namespace) -> int:
    """Run the audit, print the summary, write JSON / figure / deduplicated copies."""
    if args.dedupe_to is not None and args.no_duplicates:
        raise ValueError("--dedupe-to needs the duplicate search; drop --no-duplicates")
    report = audit(args.roots, duplicates=not args.no_duplicates, workers=args.workers, top_k=args.top_k,
                   min_inliers=args.min_inliers, min_alignment=args.min_alignment,
                   max_misfit=args.max_misfit)
    print(summary(report))
    if args.photo_groups:
        for _, root in parse_roots(args.roots):
            print(f"photo groups: {write_photo_groups(root, workers=args.workers)}")
    if args.json is not None:
        save_json(report, args.json, indent=1)
        print(f"report: {args.json}")
    if args.figure is not None:
        print(f"figure: {audit_figure(report, args.figure)}")
    if args.dedupe_to is not None:
        names = [Path(e["root"]).name for e in report["roots"]]
        for i, entry in enumerate(report["roots"]):
            name = Path(entry["root"]).name
            if names.count(name) > 1:  # roots of one folder name: their copies are told apart by class and position
                name = f"{entry['class'] or name}-{i}"
            print(f"leak-free copy: {dedupe(entry['root'], args.dedupe_to / name, report)}")
    broken = [f"{e['root']}/{split}" for e in report["roots"] for split, s in e["splits"].items() if s["error"]]
    if broken:
        raise ValueError(f"{len(broken)} split(s) cannot be read as a dataset ({', '.join(broken)}); see the errors above")
    return 0
