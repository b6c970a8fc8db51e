"""Running the numbered notebooks headless (`textseg notebooks`).

The notebooks in `notebooks/` are a chain: 01 explores the data, 02 writes masks and the working
datasets that 03 trains on, 03 writes the run that 04, 05 and 06 read. `run_notebooks` executes them
in order with papermill into an output folder (never over the sources), passing parameters so the
chain holds, and stops at the first failure naming the notebook, the cell and the error.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from textseg import CLASSES
from textseg.engine.runs import RunDir, best_epoch, describe_epoch, read_history
from textseg.progress import QUIET_ENV

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]  # textseg/workbook/runner.py -> the repository
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "python3"


@dataclass
class NotebookResult:
    """What happened to one notebook: where its executed copy is, and the failing cell if any."""

    name: str
    output: Path
    seconds: float
    ok: bool
    cell: int | None = None  # execution count of the failing cell, as numbered in the executed copy
    error: str | None = None  # "ename: evalue" of the failing cell
    source: str = ""  # first line of the failing cell

    def summary(self) -> str:
        """One line for the CLI."""
        status = "ok" if self.ok else f"FAILED in cell [{self.cell}] ({self.source}): {self.error}"
        return f"{self.name}: {status} ({self.seconds:.1f} s) -> {self.output}"


def list_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks `NN_*.ipynb` of a folder, in order."""
    found = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"{notebooks_dir}: no numbered notebooks (NN_name.ipynb); run from the repository root")
    return found


def select_notebooks(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Notebooks whose number or name matches one of `only` ("03", "03_train_decoder", "3"); all if None."""
    if not only:
        return notebooks
    chosen = []
    for key in only:
        stem = Path(key).stem
        matches = [p for p in notebooks if p.stem == stem or (stem.isdigit() and int(p.stem[:2]) == int(stem))]
        if not matches:
            raise ValueError(f"--only {key}: no such notebook; choose from {[p.stem for p in notebooks]}")
        chosen += [p for p in matches if p not in chosen]
    return sorted(chosen)


def chain_parameters(work_dir: Path, figures_dir: Path | None = None) -> dict[str, Any]:
    """Path parameters that make every notebook read and write under `work_dir` (used by smoke runs)."""
    work = Path(work_dir)
    data = work / "data"
    return {
        "synth_dir": str(work / "synth"),
        "data_dir": str(data),
        "data": {"crack": str(data / "crack"), "taping": str(data / "taping")},
        "run_dir": str(work / "runs" / "main"),
        "runs_dir": str(work / "runs"),
        "checkpoint": str(RunDir(work / "runs" / "main").best),
        "out_dir": str(work / "reports"),
        "figures_dir": str(figures_dir if figures_dir is not None else work / "figures"),
    }


def declared_parameters(path: Path) -> dict[str, str]:
    """{name: default source} of the assignments in a notebook's cell tagged `parameters`."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"{path}: no cell tagged 'parameters'; papermill could not pass parameters to it")
    source = cells[0].source
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{path}: parameters cell line {exc.lineno}: {exc.msg}") from exc
    return {t.id: ast.get_source_segment(source, node.value) or "" for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def _failure(exc: Exception) -> tuple[int | None, str, str]:
    """(execution count, "ename: evalue", first source line) of a papermill execution error."""
    lines = [line for line in str(getattr(exc, "source", "")).splitlines() if line.strip()]
    first = lines[0].strip()[:80] if lines else ""
    return getattr(exc, "exec_count", None), f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', exc)}", first


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """Set textseg.progress.QUIET_ENV in this process's environment (and so in kernels started meanwhile)."""
    old = os.environ.get(QUIET_ENV)
    os.environ[QUIET_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(QUIET_ENV, None)
        else:
            os.environ[QUIET_ENV] = old


def run_notebook(path: Path, output: Path, parameters: dict[str, Any], kernel_name: str = KERNEL_NAME,
                 cwd: Path = REPO_ROOT) -> NotebookResult:
    """Execute one notebook with papermill into `output`; a failing cell is reported, not raised."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    if Path(output).resolve() == Path(path).resolve():
        raise ValueError(f"{output}: the executed copy would overwrite the source notebook; choose another --out")
    output.parent.mkdir(parents=True, exist_ok=True)
    declared = declared_parameters(path)
    params = {k: v for k, v in parameters.items() if k in declared}
    logger.info("running %s with %s", path.name, params)
    logging.getLogger("papermill.translators").setLevel(logging.ERROR)  # it cannot parse "crack=ROOT" lines; we do
    start = time.perf_counter()
    try:
        with quiet_progress():  # the kernel inherits it: no frozen bars in the executed copy
            papermill.execute_notebook(str(path), str(output), parameters=params, kernel_name=kernel_name,
                                       cwd=str(cwd), progress_bar=True, log_output=False)
    except PapermillExecutionError as exc:
        cell, error, source = _failure(exc)
        return NotebookResult(path.stem, output, time.perf_counter() - start, False, cell, error, source)
    return NotebookResult(path.stem, output, time.perf_counter() - start, True)


def run_notebooks(smoke: bool = False, only: list[str] | None = None, out_dir: Path = Path("outputs/notebooks"),
                  parameters: dict[str, Any] | None = None, notebooks_dir: Path = NOTEBOOKS_DIR,
                  work_dir: Path | None = None, kernel_name: str = KERNEL_NAME) -> list[NotebookResult]:
    """Run the numbered notebooks in order, chaining their parameters; stop at the first failure.

    Smoke runs (tiny models and data) read and write under `work_dir` (default outputs/smoke) so they
    never touch the main run or the committed figures; `parameters` override anything per name.
    """
    notebooks = select_notebooks(list_notebooks(notebooks_dir), only)
    params: dict[str, Any] = {"smoke": smoke}
    if work_dir is not None or smoke:
        params.update(chain_parameters(Path(work_dir or "outputs/smoke")))
    overrides = dict(parameters or {})
    declared = {name for nb in notebooks for name in declared_parameters(nb)}
    unknown = sorted(set(overrides) - declared)
    if unknown:
        raise ValueError(f"unknown notebook parameters {unknown}; the notebooks declare {sorted(declared)}")
    params.update(overrides)
    results = []
    for nb in notebooks:
        with EpochLogger(_run_dir(nb, params), nb.stem):
            result = run_notebook(nb, Path(out_dir) / nb.name, params, kernel_name=kernel_name)
        results.append(result)
        logger.info(result.summary())
        if not result.ok:
            break
    return results


def _run_dir(path: Path, params: dict[str, Any]) -> Path | None:
    """The training run a notebook writes (its `run_dir` parameter, given or default), None if it trains none."""
    declared = declared_parameters(path)
    if "run_dir" not in declared:
        return None
    return Path(params.get("run_dir", ast.literal_eval(declared["run_dir"])))


class EpochLogger:
    """While a notebook trains, log each epoch it appends to RUN/metrics.jsonl: papermill itself shows only a
    cell counter, which stands still for the whole training cell."""

    def __init__(self, run_dir: Path | None, name: str, interval_s: float = 5.0) -> None:
        self.path = None if run_dir is None else RunDir(run_dir).metrics
        self.name, self.interval_s = name, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self.seen = 0

    def __enter__(self) -> "EpochLogger":
        if self.path is not None:
            self.seen = len(self._history())  # a previous run's epochs are not news
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            self._stop.set()
            self._thread.join()
            self.poll()

    def _history(self) -> list[dict[str, Any]]:
        try:
            return read_history(self.path)
        except (OSError, ValueError):  # a line being written, or a folder being replaced
            return []

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def poll(self) -> None:
        """Log the epochs written since the last poll."""
        history = self._history()
        if len(history) < self.seen:  # the run started over
            self.seen = 0
        epochs, max_minutes = self._limits()
        for m in history[self.seen :]:
            minutes = sum(e.get("epoch_time_s", 0.0) for e in history if e["epoch"] <= m["epoch"]) / 60
            logger.info("%s: %s", self.name, describe_epoch(m, epochs or m["epoch"], minutes, max_minutes))
        self.seen = len(history)

    def _limits(self) -> tuple[int | None, float | None]:
        """The run's epoch cap and time limit, from its config.json (None where unknown)."""
        try:
            train = json.loads(RunDir(self.path.parent).config.read_text())["train"]
            return int(train["epochs"]), train.get("max_minutes")
        except (OSError, ValueError, KeyError, TypeError):
            return None, None


# --- CLI ------------------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A -p value: a Python/JSON literal (numbers, True, lists) or else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text


def parse_overrides(pairs: list[list[str]] | None, notebooks: list[Path]) -> dict[str, Any]:
    """-p NAME VALUE pairs as a dict; a name given twice, or declared as a list, collects a list; for a name declared as
    a dict, each KEY=VALUE adds one entry (`-p data crack=/x -p data taping=/y`)."""
    defaults = {name: default for nb in notebooks for name, default in declared_parameters(nb).items()}
    out: dict[str, Any] = {}
    for name, raw in pairs or []:
        value = parse_value(raw)
        declared = str(defaults.get(name, "")).lstrip()
        wants_list = declared.startswith("[")
        if declared.startswith("{") and isinstance(value, str) and "=" in value:
            key, entry = value.split("=", 1)
            out.setdefault(name, {})[key] = entry
        elif name in out:
            prev = out[name] if isinstance(out[name], list) else [out[name]]
            out[name] = prev + (value if isinstance(value, list) else [value])
        else:
            out[name] = [value] if wants_list and not isinstance(value, list) else value
    return out


EXPECTED_MIN_EPOCHS = 5
EXPECTED_MIN_IOU = 0.25
"""Below either, a finished training run is reported as far short of what the default model reaches (too little time,
or a broken setting), so the main job does not end on a bare "ok"."""


def training_verdict(run_dir: str | Path) -> str:
    """One line on a training run folder: epochs, its best epoch's IoU per class and wrong-prompt rate, and a warning
    when it ended far below what the model should reach."""
    history = RunDir(run_dir).history()
    if not history:
        return f"training: WARNING: {run_dir} holds no finished epoch"
    best = best_epoch(history)
    ious = {c: best[f"iou_{c}"] for c in CLASSES if f"iou_{c}" in best}
    line = (f"training: {len(history)} epochs in {run_dir}, best epoch {best['epoch']}: IoU "
            + ", ".join(f"{c} {v:.2f}" for c, v in ious.items()) + f"; wrong-prompt masks {best['negative_fp_rate']:.0%}")
    short = [f"{c} IoU {v:.2f}" for c, v in ious.items() if v < EXPECTED_MIN_IOU]
    if len(history) < EXPECTED_MIN_EPOCHS:
        short.insert(0, f"only {len(history)} epochs")
    if short:
        line += (f"\ntraining: WARNING: far below what the model reaches ({', '.join(short)}; expected at least "
                 f"{EXPECTED_MIN_EPOCHS} epochs and IoU {EXPECTED_MIN_IOU:.2f} per class): give it more time "
                 "(-p max_minutes M) or check the data and settings")
    return line


def parameter_value(name: str, overrides: dict[str, Any], notebook: Path) -> Any:
    """A notebook parameter as a run gets it: the override, else the notebook's default."""
    return overrides[name] if name in overrides else ast.literal_eval(declared_parameters(notebook)[name])
