"""`textseg inspect` and `textseg measure`: report, table, overlays, summary; scale; bad inputs leave no partial output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_checkpoint, wall_photo

from textseg.cli import main
from textseg.data.images import load_mask
from textseg.inspection import MeasureSettings, inspect_photos, label_text, measured_class
from textseg.predictor import Segmenter, Tiling


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt")


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _bar_mask(path: Path, length: int = 200, width: int = 10, value: int = 255) -> Path:
    """A 120x300 mask with one horizontal bar of known length and width, and a second, short one."""
    mask = np.zeros((120, 300), np.uint8)
    mask[30 : 30 + width, 40 : 40 + length] = value
    mask[90:94, 60:120] = value
    Image.fromarray(mask).save(path)
    return path


def test_measure_cli_reports_known_geometry(tmp_path: Path, capsys) -> None:
    bar = _bar_mask(tmp_path / "bar.png")
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((50, 60), np.uint8)).save(empty)
    out = tmp_path / "out"
    code, stdout, _ = _run(["measure", str(bar), str(empty), "--class", "crack", "--out", str(out), "--mm-per-px", "0.05"], capsys)
    assert code == 0 and "bar.png: 2 defects" in stdout and "empty.png: 0 defects" in stdout
    report = json.loads((out / "report.json").read_text())
    assert report["class"] == "crack" and report["mm_per_px"] == 0.05 and report["failed"] == []
    first, second = report["images"][0]["defects"]
    assert first["id"] == 1 and first["area_px"] == 2000 and first["bbox"] == [40, 30, 240, 40]
    assert first["length_px"] == pytest.approx(200, rel=0.05) and first["mean_width_px"] == pytest.approx(10, abs=1)
    assert first["length_mm"] == pytest.approx(first["length_px"] * 0.05, abs=1e-3)
    assert first["width_class"] == "fine"  # about 0.5 mm wide
    assert second["length_px"] == pytest.approx(60, rel=0.05) and second["max_width_px"] == pytest.approx(4, abs=1)
    assert report["images"][1]["defects"] == [] and report["summary"]["count"] == 2
    assert report["summary"]["count_by_width_class"]["fine"] == 2  # 0.5 mm and 0.2 mm
    rows = list(csv.DictReader((out / "defects.csv").open()))
    assert len(rows) == 2 and rows[0]["image"] == str(bar) and rows[0]["bbox_x1"] == "240"
    assert float(rows[0]["length_px"]) == pytest.approx(first["length_px"])
    assert sorted(p.name for p in out.iterdir()) == ["bar_inspect.png", "defects.csv", "empty_inspect.png", "report.json", "summary.png"]
    shown = np.asarray(Image.open(out / "bar_inspect.png"))
    assert shown.shape == (120, 300, 3) and (shown == (255, 255, 0)).all(-1).any()  # boxes and labels drawn


def test_measure_cli_unscaled_and_zero_one_masks(tmp_path: Path, capsys) -> None:
    bar = _bar_mask(tmp_path / "bar.png", value=1)
    code, _, _ = _run(["measure", str(bar), "--class", "cracks", "--out", str(tmp_path / "out")], capsys)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["mm_per_px"] is None
    defect = report["images"][0]["defects"][0]
    assert "length_mm" not in defect and "width_class" not in defect and defect["area_px"] == 2000


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--mm-per-px", "0"], "--mm-per-px must be a positive number"),
        (["--mm-per-px", "-1"], "--mm-per-px must be a positive number"),
        (["--class", "window"], "unknown class 'window'"),
        (["--width-classes", "fine=x"], "width"),
    ],
)
def test_measure_cli_argument_errors_write_nothing(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    bar = _bar_mask(tmp_path / "bar.png")
    args = ["measure", str(bar), "--out", str(tmp_path / "out"), *extra]
    if "--class" not in extra:
        args += ["--class", "crack"]
    code, _, err = _run(args, capsys)
    assert code == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_measure_cli_non_binary_and_corrupt_masks_are_named(tmp_path: Path, capsys) -> None:
    good = _bar_mask(tmp_path / "good.png")
    gray = tmp_path / "gray.png"
    Image.fromarray(np.array([[0, 128, 255]] * 8, np.uint8)).save(gray)
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:30])
    out = tmp_path / "out"
    code, _, err = _run(["measure", str(gray), str(good), str(broken), "--class", "crack", "--out", str(out)], capsys)
    assert code == 1 and "2 of 3 images could not be read" in err and "gray.png" in err and "128" in err and "broken.png" in err
    report = json.loads((out / "report.json").read_text())
    assert [Path(i["image"]).name for i in report["images"]] == ["good.png"] and len(report["failed"]) == 2
    assert not (out / "gray_inspect.png").exists() and not (out / "broken_inspect.png").exists()


def test_inspect_cli_tiled_writes_full_size_masks_and_report(ckpt: Path, tmp_path: Path, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(wall_photo(300, 420)).save(photos / "wall.jpg")
    Image.fromarray(wall_photo(60, 80, seed=1)).save(photos / "small.png")
    (photos / "broken.jpg").write_bytes((photos / "wall.jpg").read_bytes()[:50])
    out = tmp_path / "out"
    code, stdout, err = _run(["inspect", str(photos), "--ckpt", str(ckpt), "--prompt", "segment crack", "--out", str(out),
                              "--device", "cpu", "--tile", "--tile-size", "128", "--threshold", "0.3"], capsys)
    assert code == 1 and "1 of 3 images could not be read" in err and "broken.jpg" in err
    report = json.loads((out / "report.json").read_text())
    assert report["class"] == "crack" and report["tiling"] == {"size": 128, "overlap": 0.25} and report["threshold"] == 0.3
    assert sorted(Path(i["image"]).name for i in report["images"]) == ["small.png", "wall.jpg"]
    wall = next(i for i in report["images"] if i["image"].endswith("wall.jpg"))
    assert (wall["height"], wall["width"]) == (300, 420) and load_mask(out / "wall_mask.png").shape == (300, 420)
    assert wall["summary"]["count"] == len(wall["defects"])
    assert "crack:" in stdout and "report" in stdout
    assert not list(out.glob("broken*")) and not list(out.glob(".*"))  # nothing partial, no temp files


def test_inspect_needs_a_class_the_prompt_names(ckpt: Path, tmp_path: Path, capsys) -> None:
    assert measured_class("segment taping area") == "taping" and measured_class("the cracks") == "crack"
    assert measured_class("something", "drywall") == "taping"
    img = tmp_path / "x.png"
    Image.fromarray(wall_photo(40, 40)).save(img)
    code, _, err = _run(["inspect", str(img), "--ckpt", str(ckpt), "--prompt", "defect", "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "does not name one class" in err and not (tmp_path / "o").exists()


def test_inspect_photos_api_wrong_prompt_gives_zero_defects(ckpt: Path, tmp_path: Path, monkeypatch) -> None:
    seg = Segmenter.from_checkpoint(ckpt, device="cpu")
    img = tmp_path / "x.png"
    Image.fromarray(wall_photo(200, 260)).save(img)
    monkeypatch.setattr(seg, "tiled_probability", lambda *a, **k: np.zeros((200, 260), np.float32))
    report = inspect_photos(seg, [img], "segment taping area", tmp_path / "o", tiling=Tiling(128), settings=MeasureSettings(mm_per_px=0.1))
    data = report.to_json()
    assert data["class"] == "taping" and data["images"][0]["defects"] == [] and data["summary"]["count"] == 0
    assert (tmp_path / "o" / "summary.png").stat().st_size > 5_000 and not load_mask(tmp_path / "o" / "x_mask.png").any()


def test_label_text_units() -> None:
    pixels = {"id": 3, "length_px": 412.4, "max_width_px": 3.14}
    assert label_text(pixels) == "#3  L 412 px  W 3.1 px"
    scaled = {**pixels, "length_mm": 41.2, "max_width_mm": 0.314}
    assert label_text(scaled) == "#3  L 41 mm  W 0.31 mm"
    # What the photo shows wins over the mask where it was read; a valley not seen leaves the mask's width.
    seen = {**scaled, "visible_length_mm": 39.6, "visible_width_mm": 0.1, "visible_max_width_mm": 0.12}
    assert label_text(seen) == "#3  L 40 mm  W 0.12 mm"
    assert label_text({**seen, "visible_max_width_mm": None}) == "#3  L 40 mm  W 0.31 mm"
