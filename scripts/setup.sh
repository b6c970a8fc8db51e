#!/usr/bin/env bash
# Set up textseg on a fresh machine: a virtual environment in .venv with the package and its
# dependencies (CPU or CUDA torch as pip resolves it), plus, with --browser, Debian's Chromium
# for the JupyterLab playground test. Safe to run again: finished steps are skipped quickly.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --browser)" >&2; exit 2 ;;
  esac
done

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.textseg-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] installing textseg and its dependencies into .venv (torch takes about a minute)"
  .venv/bin/python -m pip install -q --upgrade pip "setuptools<81" wheel
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi

if [ "$browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] installing Debian's chromium for the browser test"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-dejavu-core >/dev/null
  else
    echo "[setup] chromium is missing and this is not root: the browser test will be skipped" >&2
  fi
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, textseg; print("textseg", textseg.__version__, "torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')"
