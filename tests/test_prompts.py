"""Prompt lists and sampling."""

import random
from collections import Counter

import pytest

from textseg import CLASS_THRESHOLDS, CLASSES, THRESHOLD
from textseg.prompts import PROMPTS, all_prompts, canonical_prompt, normalise_class, other_class, sample_prompt, threshold_for


def test_prompt_lists_cover_both_classes_without_overlap():
    assert set(PROMPTS) == set(CLASSES)
    assert all(len(PROMPTS[c]) >= 8 for c in CLASSES)
    assert not set(PROMPTS["crack"]) & set(PROMPTS["taping"])
    assert all_prompts() == list(PROMPTS["crack"]) + list(PROMPTS["taping"])
    assert {"segment crack", "wall crack"} <= set(PROMPTS["crack"])
    assert {"segment taping area", "drywall seam", "joint tape"} <= set(PROMPTS["taping"])


def test_canonical_and_other_class():
    assert canonical_prompt("crack") == "segment crack"
    assert canonical_prompt("taping") == "segment taping area"
    assert other_class("crack") == "taping" and other_class("taping") == "crack"
    with pytest.raises(ValueError, match="unknown class 'mold'"):
        other_class("mold")


def test_sample_prompt_is_uniform_and_seeded():
    rng = random.Random(0)
    counts = Counter(sample_prompt("taping", rng) for _ in range(4000))
    assert set(counts) == set(PROMPTS["taping"])
    expected = 4000 / len(PROMPTS["taping"])
    assert all(abs(n - expected) < 0.25 * expected for n in counts.values())
    a = [sample_prompt("crack", random.Random(7)) for _ in range(3)]
    assert a == [sample_prompt("crack", random.Random(7)) for _ in range(3)]
    with pytest.raises(ValueError, match="unknown class"):
        sample_prompt("Crack", rng)


def test_normalise_class_aliases():
    assert normalise_class("Cracks") == "crack"
    assert normalise_class("drywall") == normalise_class("joint") == "taping"
    with pytest.raises(ValueError, match="unknown class 'mold'"):
        normalise_class("mold")


def test_threshold_for_gives_the_class_default_or_the_value_given() -> None:
    assert threshold_for("segment crack") == CLASS_THRESHOLDS["crack"] == 0.5
    assert threshold_for("segment taping area") == threshold_for("the drywall seams") == CLASS_THRESHOLDS["taping"] == 0.3
    assert threshold_for("segment anything") == threshold_for("crack along the seam") == THRESHOLD  # no class, or both
    assert threshold_for("segment taping area", 0.7) == 0.7 and threshold_for("x", 0) == 0.0
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
            threshold_for("segment crack", bad)
