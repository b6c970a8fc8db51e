"""Prompt lists and sampling."""

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from textseg import CLASS_THRESHOLDS, CLASSES, THRESHOLD
from textseg.prompts import (NONE, PROMPTS, REPRESENTATIVE, UNRELATED, PromptMeaning, all_prompts, canonical_prompt,
                             normalise_class, other_class, prompt_class, sample_prompt, threshold_for)


def test_prompt_lists_cover_both_classes_without_overlap():
    assert set(PROMPTS) == set(CLASSES)
    assert all(len(PROMPTS[c]) >= 100 and PROMPTS[c][0] == canonical_prompt(c) for c in CLASSES)  # varied phrasings
    assert all(len(set(PROMPTS[c])) == len(PROMPTS[c]) for c in CLASSES)
    assert not set(PROMPTS["crack"]) & set(PROMPTS["taping"]) and not set(UNRELATED) & set(all_prompts()[: -len(UNRELATED)])
    assert all_prompts() == list(PROMPTS["crack"]) + list(PROMPTS["taping"]) + list(UNRELATED)
    assert {"segment crack", "wall crack", "segment the cracks", "find the hairline crack"} <= set(PROMPTS["crack"])
    assert {"segment taping area", "drywall seam", "joint tape", "highlight the drywall joints"} <= set(PROMPTS["taping"])
    assert all(set(REPRESENTATIVE[c]) <= set(PROMPTS[c]) and REPRESENTATIVE[c][0] == canonical_prompt(c) for c in CLASSES)
    # a prompt for another thing never names a class in words, so its empty target never contradicts a class prompt
    assert all(prompt_class(p) is None for p in UNRELATED) and len(UNRELATED) >= 200


def test_heldout_prompts_are_in_no_training_list():
    """benchmarks/heldout_prompts.json measures prompts the model never saw: none may be a training prompt."""
    held = json.loads((Path(__file__).parents[1] / "benchmarks" / "heldout_prompts.json").read_text())
    trained = {p.lower() for p in all_prompts()}
    kinds = [*CLASSES, "unrelated"]
    assert all(len(held[k]) >= 10 for k in kinds)
    assert [p for k in kinds for p in held[k] if p.lower() in trained] == []


def test_sample_prompt_draws_unrelated_prompts_for_none() -> None:
    rng = random.Random(1)
    drawn = {sample_prompt(NONE, rng) for _ in range(2000)}
    assert drawn <= set(UNRELATED) and len(drawn) > 0.8 * len(UNRELATED)


def test_prompt_meaning_describes_itself() -> None:
    crack = PromptMeaning("crack", {"crack": 0.9, "taping": 0.06, "none": 0.04})
    assert crack.known and crack.confidence == 0.9 and crack.describe() == "crack (0.90; taping 0.06, none 0.04)"
    door = PromptMeaning(NONE, {"crack": 0.02, "taping": 0.03, "none": 0.95})
    assert not door.known and door.describe().startswith("none of crack, taping (0.95")
    assert PromptMeaning("taping", {}, "words").describe() == "taping (by its words)"
    assert threshold_for("segment the door", meaning=NONE) == THRESHOLD
    assert threshold_for("a seam of mud", meaning="taping") == CLASS_THRESHOLDS["taping"]  # the meaning, not the words
    assert threshold_for("segment crack", meaning="taping") == CLASS_THRESHOLDS["taping"]


def test_canonical_and_other_class():
    assert canonical_prompt("crack") == "segment crack"
    assert canonical_prompt("taping") == "segment taping area"
    assert other_class("crack") == "taping" and other_class("taping") == "crack"
    with pytest.raises(ValueError, match="unknown class 'mold'"):
        other_class("mold")


def test_sample_prompt_is_uniform_and_seeded():
    rng = random.Random(0)
    counts = Counter(sample_prompt("taping", rng) for _ in range(100 * len(PROMPTS["taping"])))
    assert set(counts) == set(PROMPTS["taping"])
    expected = 100
    assert all(abs(n - expected) < 0.45 * expected for n in counts.values())
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
