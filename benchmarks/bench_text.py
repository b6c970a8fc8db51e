"""What the sentence encoder costs (issue 39): its one-time extraction and load, and per image once a prompt is cached.

Measured in one process, side by side:
    extract    first use on a machine: model.zip -> TEXTSEG_CACHE (a fresh temporary folder here), hash checked
    load       building the encoder from the extracted folder (transformers' import included on the first build)
    encode     one prompt through MiniLM (what the prompt cache saves on every later image)
    per image  Segmenter.predict on N photos with the prompt already cached, against the same with the prompt cache
               emptied before every photo (the text encoder then runs once per photo): the ratio is what caching buys

    python benchmarks/bench_text.py [--images 16] [--results benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from bench import append_results, machine_line  # noqa: E402
from textseg.config import ModelConfig  # noqa: E402
from textseg.data.datasets import collect_split  # noqa: E402
from textseg.engine.runtime import amp_dtype, resolve_device  # noqa: E402
from textseg.model.build import build_model  # noqa: E402
from textseg.model import minilm  # noqa: E402
from textseg.predictor import Segmenter  # noqa: E402

SAMPLE = REPO / "data" / "sample" / "cracks"


def best_of(fn, repeats: int = 3) -> float:
    """The fastest of `repeats` calls of fn, in seconds."""
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=16, help="photos per timed pass (data/sample cracks, repeated)")
    p.add_argument("--results", type=Path, default=None, help="append the table to this markdown file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TEXTSEG_CACHE"] = cache
        tic = time.perf_counter()
        minilm.model_folder(minilm.PRETRAINED, None)
        extract_s = time.perf_counter() - tic
        tic = time.perf_counter()
        encoder = minilm.SentenceEncoder()
        load_s = time.perf_counter() - tic
        encode_s = best_of(lambda: encoder.encode(["fine cracks in the plaster"]), 5)
        model = build_model(ModelConfig())
    device = resolve_device("cpu")
    seg = Segmenter(model, device=device)
    photos = [s.image for s in collect_split({"crack": SAMPLE}, "train", 0.0)]
    photos = (photos * (args.images // len(photos) + 1))[: args.images]
    prompt = "fine cracks in the plaster"

    def cached() -> None:
        for photo in photos:
            seg.predict([photo], prompt)

    def uncached() -> None:
        for photo in photos:
            seg._prompts.clear()  # the text encoder runs again for this photo
            seg.predict([photo], prompt)

    seg.predict([photos[0]], prompt)  # warm-up
    pairs = [(best_of(cached, 1), best_of(uncached, 1)) for _ in range(3)]  # interleaved
    per_cached = statistics.median(c for c, _ in pairs) / len(photos)
    per_uncached = statistics.median(u for _, u in pairs) / len(photos)
    precision = "bf16 autocast" if amp_dtype(device, True) is not None else "float32"
    text = (f"Machine: {machine_line(device)}; {precision}.\n\n"
            "| what | time |\n|---|---:|\n"
            f"| first use: extract model.zip and check its SHA-256 | {extract_s:.2f} s |\n"
            f"| build the encoder (first build in the process) | {load_s:.2f} s |\n"
            f"| encode one prompt | {encode_s * 1000:.1f} ms |\n"
            f"| predict one 640-px photo, prompt cached | {per_cached * 1000:.0f} ms |\n"
            f"| predict one 640-px photo, prompt encoded again | {per_uncached * 1000:.0f} ms |\n"
            f"| ratio, encoded again / cached (median of 3 interleaved passes of {len(photos)} photos) | "
            f"{per_uncached / per_cached:.3f}x |\n")
    print(text)
    if args.results:
        append_results(args.results, f"## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: what the sentence encoder costs\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
