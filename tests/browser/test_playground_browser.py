"""The prompt playground in a real JupyterLab, driven by headless Chromium (Python Playwright).

Serves JupyterLab on 127.0.0.1 (hermetic settings, token), opens a parameterised copy of
notebooks/06_prompt_playground.ipynb, runs all cells, moves the threshold, types a prompt of the other class,
and checks that the mask image and the statistics change each time, with no "Loading widget" and no
console errors. Screenshots go to $TEXTSEG_SCREENSHOTS (e.g. figures/) or the test's tmp folder.

By default the playground runs on a tiny model trained here (1 epoch); set TEXTSEG_PLAYGROUND_CHECKPOINT
(and TEXTSEG_PLAYGROUND_DATA="crack=ROOT,taping=ROOT") to show a real run, e.g. outputs/runs/main/best.pt.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/lib/chromium/chromium") if p and Path(p).exists()), None)
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (apt-get install chromium fonts-dejavu-core; .ci/run does)",
                allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api", reason="the playwright pip package is not installed")

from textseg.workbook.runner import NOTEBOOKS_DIR  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "textseg-browser-test"
WAIT_MS = 120_000  # generous: kernel start, model load and decoding on a busy 2-core CPU


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_run(work: Path) -> tuple[Path, list[str]]:
    """A 1-epoch seed decoder on vit_tiny over a small synthetic set: (checkpoint, data specs)."""
    from textseg.config import DataConfig, ModelConfig, TrainConfig
    from textseg.data.synth import generate
    from textseg.engine.train import train

    roots = generate(work / "synth", seed=0, counts={"train": 4, "valid": 2, "test": 0})
    data = DataConfig(roots={c: str(r) for c, r in roots.items()}, image_size=224)  # the seed decoder's own size
    train(data, ModelConfig(visual_model="vit_tiny_patch16_224", decoder="seed", visual_weights="random", text_weights="random"),
          TrainConfig(epochs=1, batch_size=8, device="cpu"), work / "run")
    return work / "run" / "best.pt", [f"{c}={r}" for c, r in roots.items()]


def _step(threshold: float) -> float:
    """The slider move the test makes: three arrow presses of 0.01, downwards unless near the bottom."""
    return -0.03 if threshold >= 0.1 else 0.03


MIN_CHANGE = 0.002  # share of pixels the slider step must flip, so the change survives the playground's downsized PNG


def _partial_threshold(checkpoint: Path, data: list[str]) -> float:
    """A slider value (0.01 steps) at which the first image's crack mask is partial and changes with the slider move
    and with the prompt (a model that obeys may give the taping prompt an empty mask at every threshold)."""
    from textseg.data.datasets import parse_data_specs
    from textseg.workbook.playground import playground_images
    from textseg.predictor import Segmenter

    seg = Segmenter.from_checkpoint(checkpoint, device="cpu")
    first = next(iter(playground_images(parse_data_specs(data), "valid", 3).values()))
    encoded = seg.encode_image(first)
    crack = seg.predict_encoded(encoded, "segment crack").prob
    taping = seg.predict_encoded(encoded, "segment taping area").prob
    for t in sorted(np.round(np.arange(0.05, 0.951, 0.01), 2), key=lambda t: abs(t - float(np.median(crack)))):
        partial = 0.005 < (crack > t).mean() < 0.995
        moved, swapped = crack > t + _step(t), taping > t + _step(t)
        if partial and (moved != (crack > t)).mean() > MIN_CHANGE and (moved != swapped).any():
            return float(t)
    pytest.fail(f"no threshold makes a partial mask that the prompt and the slider change "
                f"(crack probs {crack.min():.3f}..{crack.max():.3f}, taping {taping.min():.3f}..{taping.max():.3f})")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a parameterised copy of the playground notebook; yields (url, work dir, threshold)."""
    import papermill

    work = tmp_path_factory.mktemp("lab")
    if os.environ.get("TEXTSEG_PLAYGROUND_CHECKPOINT"):
        checkpoint = Path(os.environ["TEXTSEG_PLAYGROUND_CHECKPOINT"]).resolve()
        data = [f"{c}={Path(r).resolve()}" for c, r in
                (s.split("=", 1) for s in os.environ.get("TEXTSEG_PLAYGROUND_DATA", "").split(",") if s)]
    else:
        checkpoint, data = _tiny_run(work)
    threshold = _partial_threshold(checkpoint, data)
    papermill.execute_notebook(str(NOTEBOOKS_DIR / "06_prompt_playground.ipynb"), str(work / "play.ipynb"),
                               parameters={"smoke": True, "checkpoint": str(checkpoint), "data": data, "per_class": 3,
                                           "threshold": threshold, "device": "cpu", "figures_dir": str(work / "figures")},
                               prepare_only=True, kernel_name="python3")
    state = Path(tempfile.mkdtemp(prefix="jlab-state-"))
    (state / "config" / "labconfig").mkdir(parents=True)
    (state / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(state / "ws"),
           "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "JUPYTER_CONFIG_DIR": str(state / "config")}
    port = _free_port()
    log = (work / "jlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={work}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(work / 'jlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/play.ipynb?token={TOKEN}", work, threshold
    finally:
        server.terminate()  # SIGTERM also shuts its kernels down
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(state, ignore_errors=True)


def test_playground_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, work, threshold = lab
    shots = Path(os.environ.get("TEXTSEG_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        profile = tempfile.mkdtemp(prefix="pw-profile-")
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                                   viewport={"width": 1400, "height": 1000})
        ctx.set_default_timeout(WAIT_MS)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
        try:
            page.goto(url)
            page.locator(".jp-NotebookPanel .jp-CodeCell .cm-content").first.wait_for(state="visible")
            page.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for(state="visible")
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            ui = page.locator(".jp-OutputArea-output .play-ui")
            ui.wait_for(state="visible")
            stats = ui.locator(".play-stats")
            mask = ui.locator("img.play-mask")
            expect(stats).to_contain_text("prompt 'segment crack'", timeout=WAIT_MS)
            expect(stats).to_contain_text(f"threshold {threshold:.2f}", timeout=WAIT_MS)
            expect(ui.locator(".play-meaning")).to_contain_text("taken to mean: crack", timeout=WAIT_MS)
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=mask.element_handle())
            for toast in page.locator('.Toastify__toast button:has-text("No")').all():
                toast.click()
            assert page.get_by_text("Loading widget").count() == 0
            ui.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "playground_lab.png"))
            ui.screenshot(path=str(shots / "playground_crack.png"))
            stats0, src0 = stats.inner_text(), mask.get_attribute("src")

            handle = ui.locator(".widget-slider .noUi-handle")
            handle.focus()
            for _ in range(3):
                handle.press("ArrowLeft" if _step(threshold) < 0 else "ArrowRight")
            expect(stats).to_contain_text(f"threshold {threshold + _step(threshold):.2f}", timeout=WAIT_MS)
            page.wait_for_function("([el, old]) => el.src !== old && el.complete", arg=[mask.element_handle(), src0])
            assert stats.inner_text() != stats0
            ui.screenshot(path=str(shots / "playground_threshold.png"))

            src1, stats1 = mask.get_attribute("src"), stats.inner_text()
            prompt = ui.locator(".widget-text input[type='text']")
            prompt.fill("")
            prompt.press_sequentially("segment taping area", delay=20)
            prompt.press("Enter")
            expect(stats).to_contain_text("prompt 'segment taping area'", timeout=WAIT_MS)
            expect(ui.locator(".play-meaning")).to_contain_text("taken to mean: taping", timeout=WAIT_MS)
            page.wait_for_function("([el, old]) => el.src !== old && el.complete", arg=[mask.element_handle(), src1])
            assert stats.inner_text() != stats1
            ui.screenshot(path=str(shots / "playground_taping.png"))
            assert page.get_by_text("Loading widget").count() == 0
        except Exception:
            page.screenshot(path=str(shots / "playground_failure.png"))  # what the page showed when it failed
            raise
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)
    assert not errors, errors
