"""The numbered notebooks: committed clean, run headless in smoke mode, chained, failures reported."""

from __future__ import annotations

import json
import os
import logging
from pathlib import Path

import nbformat
import numpy as np
import pytest

from textseg import cli
from textseg.workbook.runner import (
    NOTEBOOKS_DIR,
    declared_parameters,
    list_notebooks,
    parse_overrides,
    run_notebooks,
    select_notebooks,
    training_verdict,
)

EXPECTED = ["01_explore_data", "02_extract_masks", "03_train_decoder", "04_attention_maps", "05_evaluate",
            "06_prompt_playground", "07_inspect_photos"]


# ------------------------------------------------------------------------------------ committed files


def test_the_seven_notebooks_are_there_in_order():
    assert [p.stem for p in list_notebooks()] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_clean_and_parameterised(name):
    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    first, second = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and "**Question" in first.source
    assert second.cell_type == "code" and "parameters" in second.metadata.get("tags", [])
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: commit without outputs"
    params = declared_parameters(NOTEBOOKS_DIR / f"{name}.ipynb")
    assert params["smoke"] == "False" and params["figures_dir"] == '"figures"'
    assert "from textseg" in "".join(c.source for c in nb.cells)


def test_notebooks_that_read_the_run_default_to_the_main_run():
    for name in EXPECTED[3:]:
        assert declared_parameters(NOTEBOOKS_DIR / f"{name}.ipynb")["checkpoint"] == '"outputs/runs/main/best.pt"'
    assert declared_parameters(NOTEBOOKS_DIR / "03_train_decoder.ipynb")["run_dir"] == '"outputs/runs/main"'


# ------------------------------------------------------------------------------------ runner pieces


def test_select_notebooks_by_number_or_name():
    nbs = list_notebooks()
    assert [p.stem for p in select_notebooks(nbs, ["3"])] == ["03_train_decoder"]
    assert [p.stem for p in select_notebooks(nbs, ["05_evaluate", "01"])] == ["01_explore_data", "05_evaluate"]
    with pytest.raises(ValueError, match="--only 09: no such notebook"):
        select_notebooks(nbs, ["09"])


def test_parse_overrides_types_lists_and_repeats():
    nbs = list_notebooks()
    out = parse_overrides([["epochs", "3"], ["data", "crack=/x"], ["data", "taping=/y"], ["lr", "1e-3"],
                           ["resume", ""], ["smoke", "True"], ["split", "test"], ["visual_layers", "3"]], nbs)
    assert out == {"epochs": 3, "data": {"crack": "/x", "taping": "/y"}, "lr": 1e-3, "resume": "", "smoke": True,
                   "split": "test", "visual_layers": [3]}  # data is declared as a dict, visual_layers as a list
    assert parse_overrides([["data", '{"crack": "/x"}']], nbs) == {"data": {"crack": "/x"}}


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_papermill_sees_every_declared_parameter(path: Path) -> None:
    from papermill.translators import PythonTranslator

    cell = next(c for c in nbformat.read(str(path), as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    # papermill's own parser (papermill --help-notebook, "Passed unknown parameter" warnings) skips lines it cannot read
    assert [p.name for p in PythonTranslator.inspect(cell)] == list(declared_parameters(path))


def test_unknown_parameter_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown notebook parameters \['epochz'\]"):
        run_notebooks(only=["03"], out_dir=tmp_path, parameters={"epochz": 3})


def _write_nb(path: Path, cells: list) -> None:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture()
def failing_notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "nbs"
    folder.mkdir()
    params = nbformat.v4.new_code_cell("value = 1")
    params.metadata["tags"] = ["parameters"]
    _write_nb(folder / "01_fine.ipynb", [nbformat.v4.new_markdown_cell("**Question:** ok?"), params,
                                         nbformat.v4.new_code_cell("print(value + 1)")])
    _write_nb(folder / "02_broken.ipynb", [nbformat.v4.new_markdown_cell("**Question:** broken?"), params,
                                           nbformat.v4.new_code_cell("x = value"),
                                           nbformat.v4.new_code_cell("raise ValueError(f'bad value {x}')")])
    _write_nb(folder / "03_after.ipynb", [params, nbformat.v4.new_code_cell("print('never')")])
    return folder


def test_failure_names_notebook_cell_and_error_and_stops_the_chain(failing_notebooks, tmp_path):
    out = tmp_path / "out"
    results = run_notebooks(out_dir=out, notebooks_dir=failing_notebooks, parameters={"value": 7})
    assert [r.name for r in results] == ["01_fine", "02_broken"]  # 03 not run after the failure
    assert results[0].ok and not results[1].ok
    assert results[1].cell == 4 and results[1].error == "ValueError: bad value 7"  # [4]: after the injected cell
    assert results[1].source == "raise ValueError(f'bad value {x}')"
    assert "FAILED in cell [4] (raise ValueError(f'bad value {x}')): ValueError: bad value 7" in results[1].summary()
    executed = nbformat.read(out / "02_broken.ipynb", as_version=4)  # the executed copy shows the error
    assert any(o.get("ename") == "ValueError" for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    source = nbformat.read(failing_notebooks / "01_fine.ipynb", as_version=4)
    assert all(c.outputs == [] for c in source.cells if c.cell_type == "code")  # never written over


def test_cli_exits_1_and_reports_the_failure(failing_notebooks, tmp_path, capsys):
    code = cli.main(["notebooks", "--notebooks-dir", str(failing_notebooks), "--out", str(tmp_path / "o"),
                     "-p", "value", "2"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "01_fine: ok" in printed and "02_broken: FAILED in cell [4]" in printed and "ValueError: bad value 2" in printed
    assert "not run: 03_after" in printed


# ------------------------------------------------------------------------------------ the smoke chain


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """All seven notebooks in smoke mode, chained under one work folder."""
    work = tmp_path_factory.mktemp("smoke")
    results = run_notebooks(smoke=True, out_dir=work / "executed", work_dir=work)
    return work, results


@pytest.mark.slow
def test_smoke_chain_runs_every_notebook(smoke_run):
    work, results = smoke_run
    assert [r.name for r in results] == EXPECTED
    assert all(r.ok for r in results), [r.summary() for r in results if not r.ok]
    for name in EXPECTED:
        executed = nbformat.read(work / "executed" / f"{name}.ipynb", as_version=4)
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and "smoke = True" in injected[0].source
        texts = [o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs]
        assert not [t for t in texts if "it/s]" in t or "batch/s]" in t or "img/s]" in t], name  # no progress bars kept
        if name != "06_prompt_playground":  # the playground is a widget; progress bars are not
            assert not [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
                        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})], name


@pytest.mark.slow
def test_smoke_01_explores_and_audits(smoke_run):
    work, _ = smoke_run
    figures = work / "figures"
    for name in ("01_real_vs_synthetic", "01_sizes_coverage_widths", "01_samples_real", "01_samples_synthetic"):
        assert (figures / f"{name}.png").stat().st_size > 10_000, name
    report = json.loads((work / "reports" / "audit_real.json").read_text())
    assert "cross_split_duplicates" in report
    assert (work / "synth" / "cracks" / "train" / "masks").is_dir()


@pytest.mark.slow
def test_smoke_02_writes_masks_and_training_roots(smoke_run):
    from textseg.data.datasets import collect_split, load_target
    from textseg.data.images import image_size

    work, _ = smoke_run
    real = work / "data" / "real"
    coco_masks = sorted((real / "drywall" / "train" / "masks").glob("*.png"))
    assert len(coco_masks) == 13  # every drywall photo, the negative one included (empty mask)
    assert len(list((real / "cracks" / "test" / "masks").glob("*.png"))) == 4
    assert len(list((real / "cracks-yolo" / "train" / "masks").glob("*.png"))) == 2
    for cls in ("crack", "taping"):
        valid = collect_split({cls: work / "data" / cls}, "valid")
        assert any(s.image.name.startswith("real-") for s in valid)  # real photos held back for validation
        assert any(s.image.name.startswith("synth-") for s in valid)
        s = valid[0]
        assert load_target(s).shape[::-1] == image_size(s.image)
    sample = NOTEBOOKS_DIR.parent / "data" / "sample"  # read-only: masks were written into the copies only
    assert not (sample / "drywall" / "train" / "masks").exists() and not (sample / "cracks" / "test" / "masks").exists()
    assert (work / "figures" / "02_labels_vs_masks.png").is_file()


@pytest.mark.slow
def test_smoke_03_trains_a_loadable_run(smoke_run):
    from textseg.model.checkpoint import load_checkpoint

    work, _ = smoke_run
    run = work / "runs" / "main"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert [m["epoch"] for m in lines] == [1] and "iou_crack" in lines[0] and "negative_fp_rate" in lines[0]
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["epoch"] == 1 and ckpt["configs"]["model"]["visual_model"] == "vit_tiny_patch16_224"
    assert ckpt["configs"]["data"]["roots"]["crack"] == str(work / "data" / "crack")
    assert (work / "figures" / "03_training_curves.png").is_file()


@pytest.mark.slow
def test_smoke_04_05_06_use_the_checkpoint(smoke_run):
    work, _ = smoke_run
    figures = work / "figures"
    for name in ("04_attention_heads_crack", "04_attention_heads_taping", "04_prompt_swap_crack", "05_per_prompt",
                 "05_threshold_sweep", "05_best_crack", "05_worst_taping", "05_run_comparison", "06_playground_view"):
        assert (figures / f"{name}.png").stat().st_size > 5_000, name
    report = json.loads((work / "reports" / "eval_main" / "report.json").read_text())
    assert set(report["classes"]) == {"crack", "taping"} and report["checkpoint"] == str(work / "runs" / "main" / "best.pt")
    assert 0.0 <= report["negative_fp_rate"] <= 1.0 and set(report["classes"]["crack"]["per_prompt"]) >= {"segment crack", "crack"}
    attention = nbformat.read(work / "executed" / "04_attention_maps.ipynb", as_version=4)
    shown = [o["data"]["text/markdown"] for c in attention.cells if c.cell_type == "code" for o in c.outputs
             if "text/markdown" in o.get("data", {})]
    tables = [t for t in shown if t.startswith("| class (images) | token | weight on defect cells |")]
    assert tables and tables[0].count("\n") >= 3, tables  # the contrast table, with a class's token rows
    played = nbformat.read(work / "executed" / "06_prompt_playground.ipynb", as_version=4)
    outputs = [o for c in played.cells if c.cell_type == "code" for o in c.outputs]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


@pytest.mark.slow
def test_smoke_07_inspects_the_sample_photos(smoke_run):
    work, _ = smoke_run
    inspected = work / "reports" / "inspect"
    report = json.loads((inspected / "report.json").read_text())
    assert report["checkpoint"] == str(work / "runs" / "main" / "best.pt") and report["tiling"] == {"size": None, "overlap": 0.25}
    assert len(report["images"]) == 2 and report["failed"] == []
    for img in report["images"]:
        assert (inspected / img["mask"]).is_file() and (inspected / img["overlay"]).is_file()
    assert (inspected / "defects.csv").is_file()
    for name in ("07_inspect_overlays", "07_inspect_summary", "07_marker_tilted"):
        assert (work / "figures" / f"{name}.png").stat().st_size > 5_000, name
    # The tilted demo: the marker is found in the tilted photo, and the head-on mask carried there is measured in mm.
    tilted = work / "reports" / "tilted"
    assert json.loads((tilted / "marker" / "report.json").read_text())["images"][0]["scale"]["source"] == "marker"
    carried = json.loads((tilted / "carried_marker" / "report.json").read_text())["images"][0]
    assert carried["scale"]["source"] == "marker" and all("length_mm" in d for d in carried["defects"])


# ------------------------------------------------------------------------------------ helpers


def test_build_working_datasets_merges_sources_and_carves_valid(tmp_path):
    from textseg.data.datasets import collect_split, photo_key
    from textseg.data.images import load_mask, save_mask, save_rgb
    from textseg.workbook.helpers import build_working_datasets

    def root(name: str, splits: dict[str, int]) -> Path:
        for split, n in splits.items():
            for i in range(n):
                save_rgb(np.full((16, 20, 3), 40 * i, np.uint8), tmp_path / name / split / "images" / f"p{i}_jpg.rf.{i}a.jpg")
                m = np.zeros((16, 20), bool)
                m[:, i] = True
                save_mask(m, tmp_path / name / split / "masks" / f"p{i}_jpg.rf.{i}a.png")
        return tmp_path / name

    real = root("real/cracks", {"train": 6})  # no valid/: a part of train is held back
    synth = root("synth/cracks", {"train": 2, "valid": 1, "test": 1})
    merged = build_working_datasets({"crack": [real, synth]}, tmp_path / "out", val_fraction=0.34, seed=0)
    assert merged == {"crack": tmp_path / "out" / "crack"}
    train = collect_split({"crack": merged["crack"]}, "train")
    valid = collect_split({"crack": merged["crack"]}, "valid")
    names = sorted(s.image.name for s in train + valid)
    assert len(names) == 9 and all(n.startswith(("real-cracks__", "synth-cracks__")) for n in names)
    assert sum(n.startswith("real-cracks__") for n in (s.image.name for s in valid)) == 2  # round(6 * 0.34)
    real_keys = lambda samples: {photo_key(s.image) for s in samples if s.image.name.startswith("real-")}  # noqa: E731
    assert not real_keys(train) & real_keys(valid)  # a held-back photo has no copy left in train
    s = next(s for s in valid if "synth" in s.image.name)
    assert load_mask(s.mask)[:, 0].all()  # masks travel with their images
    assert len(collect_split({"crack": merged["crack"]}, "test")) == 1


def test_resume_checkpoint_choices(tmp_path):
    from textseg.workbook.helpers import resume_checkpoint

    assert resume_checkpoint(tmp_path, "") is None
    with pytest.raises(FileNotFoundError, match="resume='last': no checkpoint at .*last.pt"):
        resume_checkpoint(tmp_path, "last")
    (tmp_path / "last.pt").write_bytes(b"x")
    assert resume_checkpoint(tmp_path, "last") == tmp_path / "last.pt"
    with pytest.raises(FileNotFoundError, match="resume='nope.pt'"):
        resume_checkpoint(tmp_path, "nope.pt")


@pytest.mark.slow
def test_smoke_03_rerun_shows_the_existing_run(smoke_run):
    work, _ = smoke_run
    metrics = (work / "runs" / "main" / "metrics.jsonl").read_text()
    results = run_notebooks(smoke=True, only=["03"], out_dir=work / "again", work_dir=work)
    assert results[0].ok, results[0].summary()
    assert (work / "runs" / "main" / "metrics.jsonl").read_text() == metrics  # not retrained
    executed = nbformat.read(work / "again" / "03_train_decoder.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "already holds a run; showing it" in text


# ------------------------------------------------------------------------------------ main-job verdict


def _metrics(run: Path, epochs: int, crack: float, taping: float) -> Path:
    run.mkdir(parents=True)
    lines = [{"epoch": e + 1, "iou_crack": crack * (e + 1) / epochs, "iou_taping": taping * (e + 1) / epochs,
              "negative_fp_rate": 0.02, "score": (crack + taping) / 2 * (e + 1) / epochs} for e in range(epochs)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    return run


def test_training_verdict_warns_on_a_run_far_below_expectations(tmp_path: Path) -> None:
    good = training_verdict(_metrics(tmp_path / "good", 12, 0.5, 0.6))
    assert good.startswith("training: 12 epochs") and "best epoch 12: IoU crack 0.50, taping 0.60" in good
    assert "WARNING" not in good
    short = training_verdict(_metrics(tmp_path / "short", 2, 0.04, 0.0))
    assert "WARNING: far below what the model reaches (only 2 epochs, crack IoU 0.04, taping IoU 0.00" in short
    assert "WARNING" in training_verdict(tmp_path / "missing")


def test_epoch_logger_reports_new_epochs_while_a_notebook_trains(tmp_path, caplog):
    from textseg.workbook.runner import EpochLogger, _run_dir

    assert _run_dir(NOTEBOOKS_DIR / "03_train_decoder.ipynb", {}) == Path("outputs/runs/main")
    assert _run_dir(NOTEBOOKS_DIR / "03_train_decoder.ipynb", {"run_dir": "x/run"}) == Path("x/run")
    assert _run_dir(NOTEBOOKS_DIR / "05_evaluate.ipynb", {"run_dir": "x/run"}) is None
    record = {"epoch": 1, "train_loss": 0.5, "iou_crack": 0.25, "iou_taping": 0.5, "negative_fp_rate": 0.02, "epoch_time_s": 30}
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps(record) + "\n")
    (tmp_path / "config.json").write_text(json.dumps({"train": {"epochs": 400, "max_minutes": 10}}))
    with caplog.at_level(logging.INFO, logger="textseg.workbook.runner"):
        with EpochLogger(tmp_path, "03_train_decoder", interval_s=60):
            with metrics.open("a") as f:
                f.write(json.dumps({**record, "epoch": 2, "iou_crack": 0.375}) + "\n")
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    # Which epoch of how many, and how much of the time limit is used: the run ends at the limit, not at epoch 400.
    assert lines == ["03_train_decoder: epoch 2 of 400: train loss 0.500, IoU crack 0.38 taping 0.50, wrong prompts 2.0%, "
                     "30 s; 1.0 of 10 min, training stops at the time limit"]


def test_quiet_progress_silences_the_package_bars_and_restores_the_environment(monkeypatch):
    from textseg.workbook.runner import quiet_progress
    from textseg.progress import QUIET_ENV, progress_bar

    monkeypatch.delenv(QUIET_ENV, raising=False)
    assert not progress_bar(range(3)).disable
    with quiet_progress():
        assert progress_bar(range(3)).disable and list(progress_bar(range(3))) == [0, 1, 2]
    assert QUIET_ENV not in os.environ and not progress_bar(range(3)).disable
