"""The project's own files: dependency lists agree, the CLI dispatches, configs round-trip."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from textseg import cli
from textseg.config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_requirements() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = [line.strip()[2:] for line in lines[start + 1 :] if line.strip().startswith("- ")]
    return {_name(r): r.replace(" ", "") for r in reqs if not r.startswith("-e")}


def test_environment_yml_and_pyproject_list_the_same_requirements() -> None:
    assert _environment_requirements() == _pyproject_requirements()


def test_pins_needed_on_this_machine_are_present() -> None:
    reqs = _pyproject_requirements()
    assert reqs["torch"] == "torch==2.14.1"
    assert reqs["torchvision"] == "torchvision==0.29.1"
    assert reqs["setuptools"] == "setuptools<81"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make main" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_has_a_parser() -> None:
    parser = cli.build_parser()
    for name in cli.COMMANDS:
        args = parser.parse_args([name] + _minimal_args(name))
        assert args.command == name


def _minimal_args(name: str) -> list[str]:
    return {
        "synth": ["--out", "x"],
        "extract-masks": ["x"],
        "audit": ["x"],
        "train": ["--data", "crack=x", "--out", "x"],
        "predict": ["img.png", "--prompt", "crack", "--ckpt", "c.pt", "--out", "x"],
        "evaluate": ["--ckpt", "c.pt", "--data", "crack=x", "--out", "x"],
        "inspect": ["img.png", "--prompt", "crack", "--ckpt", "c.pt", "--out", "x"],
        "measure": ["m.png", "--class", "crack", "--out", "x"],
        "notebooks": [],
    }[name]


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-command"]) == 2
    assert "synth" in capsys.readouterr().out


def test_console_script_help_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "textseg", "--help"], capture_output=True, text=True, check=True)
    assert "extract-masks" in out.stdout


def test_prediction_imports_no_plotting_library() -> None:
    # `textseg predict` and `textseg.Segmenter` start faster without matplotlib (about half a second on a 2-core CPU).
    code = "import sys, textseg.predictor, textseg.cli.predict; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reading_and_writing_images_imports_no_torch() -> None:
    # `textseg extract-masks` starts about a second sooner without torch (2-core CPU).
    code = "import sys, textseg.data.labels; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_configs_round_trip_through_json_dicts() -> None:
    model = ModelConfig(visual_layers=(2, 5, 8, 11), decoder="seed")
    assert from_dict(ModelConfig, to_dict(model)) == model
    for cfg in (DataConfig(roots={"crack": "a"}), TrainConfig(max_minutes=1.5)):
        assert from_dict(type(cfg), to_dict(cfg)) == cfg


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown settings"):
        from_dict(TrainConfig, {"epochz": 3})
