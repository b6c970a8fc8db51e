"""Text prompts per class, and the class names and aliases users may type."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Mapping

from textseg import CLASS_THRESHOLDS, CLASSES, THRESHOLD

NONE = "none"
"""What a prompt means when it names none of the classes (a door, a person, the sky)."""

CANONICAL: dict[str, str] = {"crack": "segment crack", "taping": "segment taping area"}
"""The fixed prompt of each class, used for evaluation and validation."""

PHRASES: dict[str, tuple[str, ...]] = {
    "crack": ("crack", "cracks", "wall crack", "hairline crack", "cracked plaster", "concrete crack", "crack in the wall",
              "surface crack", "fine cracks", "cracking", "cracked wall", "crack line", "crack in the concrete",
              "structural crack", "thin crack", "fracture", "cracked paint"),
    "taping": ("taping area", "drywall seam", "joint tape", "drywall joint", "taped joint", "joint compound seam",
               "drywall seams", "tape joint", "drywall tape", "taped seam", "seam tape", "joint compound", "taping",
               "drywall joints", "tape line", "seam between drywall panels", "joint between two drywall boards"),
}
"""Names of each class's defect, from the everyday word to the trade's; TEMPLATES turn them into prompts."""

UNRELATED_PHRASES: tuple[str, ...] = (
    "chair", "table", "bed", "lamp", "tree", "dog", "bird", "bicycle", "road", "grass", "water", "clouds", "mountain",
    "computer", "keyboard", "phone", "bottle", "cup", "book", "shoe", "hat", "face", "hand", "painting", "mirror", "clock",
    "television", "stairs", "roof", "fence", "pipe", "radiator", "rug", "curtain", "bathtub", "toilet", "sink",
    "refrigerator", "truck", "bus", "boat", "horse", "ball", "shelf", "wallpaper pattern", "picture frame", "ladder",
    "paint bucket", "tiles", "carpet", "cushion", "lightbulb", "the moon", "a red apple", "text on a sign",
)
"""Things textseg does not segment: their prompts are trained with an empty target and the prompt class "none"."""

TEMPLATES: tuple[str, ...] = (
    "{}", "segment {}", "segment the {}", "the {}", "find the {}", "show the {}", "detect {}", "highlight the {}",
    "mark the {}", "locate the {}", "{} in this photo", "where is the {}", "a photo of {}", "mask of the {}",
)
"""How prompts are phrased around a name: the verbs and frames users type."""


def _phrased(names: tuple[str, ...]) -> tuple[str, ...]:
    """Every template around every name, without repeats, in a fixed order."""
    return tuple(dict.fromkeys(t.format(n) for n in names for t in TEMPLATES))


PROMPTS: dict[str, tuple[str, ...]] = {cls: (CANONICAL[cls], *(p for p in _phrased(PHRASES[cls]) if p != CANONICAL[cls]))
                                       for cls in CLASSES}
"""Training prompts per class; the first of each is the canonical one used for evaluation."""

REPRESENTATIVE: dict[str, tuple[str, ...]] = {
    "crack": ("segment crack", "crack", "wall crack", "segment wall crack", "crack in the wall", "hairline crack",
              "cracked plaster", "concrete crack"),
    "taping": ("segment taping area", "taping area", "drywall seam", "joint tape", "drywall joint", "segment drywall seam",
               "taped joint", "joint compound seam"),
}
"""A few prompts per class (canonical first) that evaluation scores one by one; every one is a training prompt."""

UNRELATED: tuple[str, ...] = _phrased(UNRELATED_PHRASES)
"""Training prompts for things textseg does not segment (target: an empty mask)."""

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


@dataclass(frozen=True)
class PromptMeaning:
    """What a model takes a prompt to mean: a class, or NONE (something textseg does not segment), and how sure it is.

    `probs` are the prompt classifier's probabilities per class (and NONE where the model has that output), read from
    the prompt alone; `source` says where `cls` came from: "model" (the classifier) or "words" (the class names in the
    prompt, for models trained before prompts for other things were).
    """

    cls: str
    probs: dict[str, float] = field(default_factory=dict)
    source: str = "model"

    @property
    def known(self) -> bool:
        """True when the prompt is taken to mean one of the classes textseg segments."""
        return self.cls != NONE

    @property
    def confidence(self) -> float:
        """The probability of `cls` (nan where the model has no prompt classifier)."""
        return self.probs.get(self.cls, float("nan"))

    def describe(self) -> str:
        """One line: "crack (0.97; taping 0.02, none 0.01)", or "none of crack, taping (0.95; ...)"."""
        others = ", ".join(f"{c} {p:.2f}" for c, p in self.probs.items() if c != self.cls)
        name = self.cls if self.known else f"none of {', '.join(CLASSES)}"
        if not self.probs:
            return f"{name} (by its words)"
        return f"{name} ({self.confidence:.2f}{'; ' + others if others else ''})"


def threshold_for(prompt: str, threshold: float | None = None, meaning: str | None = None) -> float:
    """`threshold` when given (checked to lie in [0, 1]); otherwise the default (CLASS_THRESHOLDS) of the class the
    prompt is taken to mean (`meaning`, as the model reads it: a class or NONE), or, without one, of the class its
    words name (prompt_class); THRESHOLD when it means none or both."""
    if threshold is None:
        cls = meaning if meaning is not None else prompt_class(prompt)
        return CLASS_THRESHOLDS.get(cls, THRESHOLD)
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
    if cls not in CANONICAL:
        raise ValueError(f"unknown class {cls!r}; expected one of {list(CLASSES)}")
    return cls


def all_prompts() -> list[str]:
    """Every training prompt: each class's in class order, then UNRELATED."""
    return [p for cls in CLASSES for p in PROMPTS[cls]] + list(UNRELATED)


def sample_prompt(cls: str, rng: random.Random) -> str:
    """One prompt of `cls` (or of NONE: UNRELATED), drawn uniformly with `rng`."""
    return rng.choice(UNRELATED if cls == NONE else PROMPTS[_check(cls)])


def other_class(cls: str) -> str:
    """The class that is not `cls` (there are two)."""
    _check(cls)
    return next(c for c in CLASSES if c != cls)


def canonical_prompt(cls: str) -> str:
    """The fixed prompt of a class: "segment crack" / "segment taping area"."""
    return CANONICAL[_check(cls)]
