"""Text prompts per class, and the class names and aliases users may type."""

from __future__ import annotations

import random
from typing import Mapping

from textseg import CLASS_THRESHOLDS, CLASSES, THRESHOLD

PROMPTS: dict[str, tuple[str, ...]] = {
    "crack": (
        "segment crack",
        "crack",
        "wall crack",
        "segment wall crack",
        "crack in the wall",
        "hairline crack",
        "cracked plaster",
        "concrete crack",
    ),
    "taping": (
        "segment taping area",
        "taping area",
        "drywall seam",
        "joint tape",
        "drywall joint",
        "segment drywall seam",
        "taped joint",
        "joint compound seam",
    ),
}
"""Prompts per class; the first of each is the canonical one used for evaluation."""

CLASS_ALIASES: dict[str, str] = {
    "crack": "crack",
    "cracks": "crack",
    "taping": "taping",
    "tape": "taping",
    "drywall": "taping",
    "joint": "taping",
    "joints": "taping",
    "seam": "taping",
    "seams": "taping",
}
"""Names accepted on the command line for each class (case-insensitive)."""


def normalise_class(name: str) -> str:
    """The class a user-typed name means ("cracks" -> "crack", "drywall" -> "taping"); ValueError if none."""
    cls = CLASS_ALIASES.get(str(name).strip().lower())
    if cls is None:
        raise ValueError(f"unknown class {name!r}; use one of {list(CLASSES)} (aliases: {sorted(CLASS_ALIASES)})")
    return cls


def prompt_class(prompt: str) -> str | None:
    """The class a prompt names: one of the known prompts, or a prompt with the words of exactly one class
    ("segment the cracks" -> "crack"); None when it names none or both."""
    text = prompt.strip().lower()
    for cls, prompts in PROMPTS.items():
        if text in prompts:
            return cls
    named = {CLASS_ALIASES[w] for w in text.replace(",", " ").split() if w in CLASS_ALIASES}
    return named.pop() if len(named) == 1 else None


def threshold_for(prompt: str, threshold: float | None = None) -> float:
    """`threshold` when given (checked to lie in [0, 1]); otherwise the default of the class the prompt names
    (CLASS_THRESHOLDS), or THRESHOLD when it names none or both."""
    if threshold is None:
        cls = prompt_class(prompt)
        return CLASS_THRESHOLDS[cls] if cls is not None else THRESHOLD
    value = float(threshold)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return value


def thresholds_text(thresholds: Mapping[str, float] = CLASS_THRESHOLDS) -> str:
    """Thresholds per class as text: "crack 0.5, taping 0.3", or "0.5" when every class has the same one."""
    values = set(thresholds.values())
    if len(values) == 1:
        return f"{values.pop():g}"
    return ", ".join(f"{cls} {t:g}" for cls, t in thresholds.items())


def _check(cls: str) -> str:
    if cls not in PROMPTS:
        raise ValueError(f"unknown class {cls!r}; expected one of {list(CLASSES)}")
    return cls


def all_prompts() -> list[str]:
    """Every prompt of every class, in class order."""
    return [p for cls in CLASSES for p in PROMPTS[cls]]


def sample_prompt(cls: str, rng: random.Random) -> str:
    """One prompt of `cls`, drawn uniformly with `rng`."""
    return rng.choice(PROMPTS[_check(cls)])


def other_class(cls: str) -> str:
    """The class that is not `cls` (there are two)."""
    _check(cls)
    return next(c for c in CLASSES if c != cls)


def canonical_prompt(cls: str) -> str:
    """The fixed prompt of a class: "segment crack" / "segment taping area"."""
    return PROMPTS[_check(cls)][0]
