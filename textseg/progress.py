"""Progress bars: tqdm's (a widget in a notebook, text in a terminal), silenced where QUIET_ENV is "1".

`textseg notebooks` sets QUIET_ENV for the kernels it starts, so executed notebooks keep their plots and tables
instead of frozen bars; it reports each training epoch itself.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from tqdm.auto import tqdm

QUIET_ENV = "TEXTSEG_NO_PROGRESS"


def progress_bar(iterable: Iterable | None = None, disable: bool = False, **kwargs: Any) -> tqdm:
    """tqdm(iterable, **kwargs), disabled when asked or when the environment says QUIET_ENV=1."""
    return tqdm(iterable, disable=disable or os.environ.get(QUIET_ENV) == "1", **kwargs)
