"""Held-out prompts (issue 39): does a trained model follow prompts it never saw, and refuse things it does not segment?

For each run folder (RUN/best.pt, trained by `textseg train` or benchmarks/carves.sh), evaluates the run's own
validation carve with the prompts of benchmarks/heldout_prompts.json (written before training, never in
textseg/prompts.py) and reports, per class:
    canonical IoU              the class's canonical prompt, dataset-level IoU at its default threshold
    paraphrase / canonical     mean over the class's held-out paraphrases of their IoU, over the canonical IoU
    paraphrase fires on other  how often the class's paraphrases draw a mask (> 1% of pixels) on the other class's photos
    unrelated fires            how often prompts for things textseg does not segment draw a mask on this class's photos
    read right                 held-out prompts the model takes to mean the right class (unrelated ones: "none")
Each prompt is thresholded as prediction does (at the default of the class the model takes it to mean).

    python benchmarks/bench_prompts.py outputs/carves/minilm/seed3/refine outputs/carves/minilm/seed4/refine ... \
        [--results benchmarks/RESULTS.md] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import append_results, machine_line  # noqa: E402
from textseg import CLASSES  # noqa: E402
from textseg.engine.runtime import amp_dtype, resolve_device  # noqa: E402
from textseg.evaluate import evaluate  # noqa: E402
from textseg.predictor import Segmenter  # noqa: E402
from textseg.prompts import NONE, all_prompts, canonical_prompt, other_class  # noqa: E402

HELDOUT = Path(__file__).with_name("heldout_prompts.json")


def heldout_prompts(path: Path = HELDOUT) -> dict[str, list[str]]:
    """{"crack": [...], "taping": [...], "unrelated": [...]}, checked to share no prompt with the training lists."""
    data = json.loads(path.read_text())
    lists = {k: list(data[k]) for k in (*CLASSES, "unrelated")}
    trained = {p.lower() for p in all_prompts()}
    leaked = [p for ps in lists.values() for p in ps if p.lower() in trained]
    if leaked:
        raise ValueError(f"{path}: held-out prompts {leaked} are training prompts (textseg/prompts.py)")
    return lists


def score_run(run: Path, device: str = "auto", batch_size: int = 8) -> dict[str, Any]:
    """Held-out prompt metrics of RUN/best.pt on its own validation carve."""
    held = heldout_prompts()
    seg = Segmenter.from_checkpoint(run / "best.pt", device=device)
    roots = seg.data_cfg.roots
    prompts = {cls: [canonical_prompt(cls), *held[cls]] for cls in roots}
    negatives = {cls: [*held[other_class(cls)], *held["unrelated"]] for cls in roots}
    tic = time.monotonic()
    report = evaluate(seg, roots, "valid", thresholds=(), prompts=prompts, negative_prompts=negatives,
                      batch_size=batch_size, progress=True)
    meanings = report["prompt_meanings"]
    fires = report["negative_fp_rate_per_prompt"]
    out: dict[str, Any] = {"run": str(run), "seed": seg.data_cfg.carve_seed, "epoch": None, "eval_s": time.monotonic() - tic,
                           "wrong_prompt": report["negative_fp_rate"], "classes": {}}
    for cls in roots:
        entry = report["classes"][cls]
        para = [entry["per_prompt"][p]["iou"] for p in held[cls]]
        canonical = entry["iou"]
        other = other_class(cls)
        out["classes"][cls] = {
            "images": entry["n_images"],
            "canonical_iou": canonical,
            "paraphrase_iou": statistics.fmean(para),
            "paraphrase_ratio": statistics.fmean(para) / canonical if canonical else float("nan"),
            "worst_paraphrase": min(zip(para, held[cls]))[1],
            "paraphrase_fires_on_other": statistics.fmean(fires[other][p] for p in held[cls]) if other in fires else None,
            "unrelated_fires": statistics.fmean(fires[cls][p] for p in held["unrelated"]),
            "read_right": statistics.fmean(meanings[p]["class"] == cls for p in held[cls]),
        }
    out["unrelated_read_none"] = statistics.fmean(meanings[p]["class"] == NONE for p in held["unrelated"])
    out["per_prompt"] = {cls: {p: report["classes"][cls]["per_prompt"][p]["iou"] for p in prompts[cls]} for cls in roots}
    out["fires"] = fires
    out["meanings"] = meanings
    return out


def _mean_sd(values: list[float], percent: bool = False) -> str:
    """"0.474 ± 0.020", or "3.7% ± 4.1" for rates (population sd, as the other tables of RESULTS.md)."""
    if percent:
        return f"{100 * statistics.fmean(values):.1f}% ± {100 * statistics.pstdev(values):.1f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def markdown(results: list[dict[str, Any]], machine: str) -> str:
    """One row per run, then the mean ± sd over runs."""
    head = ("| run (carve) | crack IoU: canonical / paraphrases (ratio) | taping IoU: canonical / paraphrases (ratio) | "
            "crack paraphrases fire on taping | taping paraphrases fire on crack | unrelated fire: crack / taping photos | "
            "wrong-prompt | read right: crack / taping / none |")
    lines = [f"Held-out prompts (benchmarks/heldout_prompts.json: {machine}). Each run on its own validation carve.", "",
             head, "|---|---|---|---:|---:|---|---:|---|"]
    for r in results:
        c, t = r["classes"]["crack"], r["classes"]["taping"]
        lines.append(
            f"| {Path(r['run']).parent.name} ({r['seed']}) | {c['canonical_iou']:.3f} / {c['paraphrase_iou']:.3f} ({c['paraphrase_ratio']:.2f}) | "
            f"{t['canonical_iou']:.3f} / {t['paraphrase_iou']:.3f} ({t['paraphrase_ratio']:.2f}) | "
            f"{c['paraphrase_fires_on_other']:.1%} | {t['paraphrase_fires_on_other']:.1%} | "
            f"{c['unrelated_fires']:.1%} / {t['unrelated_fires']:.1%} | {r['wrong_prompt']:.1%} | "
            f"{c['read_right']:.0%} / {t['read_right']:.0%} / {r['unrelated_read_none']:.0%} |")
    if len(results) > 1:
        def col(cls: str, key: str) -> list[float]:
            return [r["classes"][cls][key] for r in results]
        lines.append(
            f"| **mean ± sd** | {_mean_sd(col('crack', 'canonical_iou'))} / {_mean_sd(col('crack', 'paraphrase_iou'))} "
            f"({_mean_sd(col('crack', 'paraphrase_ratio'))}) | {_mean_sd(col('taping', 'canonical_iou'))} / "
            f"{_mean_sd(col('taping', 'paraphrase_iou'))} ({_mean_sd(col('taping', 'paraphrase_ratio'))}) | "
            f"{_mean_sd(col('crack', 'paraphrase_fires_on_other'), True)} | "
            f"{_mean_sd(col('taping', 'paraphrase_fires_on_other'), True)} | "
            f"{_mean_sd(col('crack', 'unrelated_fires'), True)} / {_mean_sd(col('taping', 'unrelated_fires'), True)} | "
            f"{_mean_sd([r['wrong_prompt'] for r in results], True)} | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders holding best.pt")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--results", type=Path, default=None, help="append the table to this markdown file")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    args = p.parse_args()
    device = resolve_device(args.device)
    machine = f"{machine_line(device)}, {'bf16 autocast' if amp_dtype(device, True) is not None else 'float32'}"
    results = [score_run(run, args.device, args.batch_size) for run in args.runs]
    text = markdown(results, machine)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.results:
        append_results(args.results, f"## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: held-out prompts\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
