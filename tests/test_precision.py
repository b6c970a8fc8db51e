"""Mixed precision: which dtype each device gets, autocast on and off, and cache keys per precision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textseg.engine import runtime as precision
from textseg.engine.cache import FeatureCache
from textseg.engine.runtime import amp_dtype, autocast

from conftest import FakeText, FakeVisual

CPU = torch.device("cpu")


def test_cpu_gets_bf16_only_with_hardware_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert amp_dtype(CPU, True) is torch.bfloat16
    assert amp_dtype(CPU, False) is None
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert amp_dtype(CPU, True) is None  # emulated bf16 would be slower than float32


def test_autocast_runs_matmuls_in_the_chosen_dtype() -> None:
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast(CPU, torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16
    with autocast(CPU, None):
        assert (a @ b).dtype == torch.float32


def test_cache_keys_differ_by_precision(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"not really a png, only hashed")
    full = FeatureCache(FakeVisual(), FakeText(), "memory", amp_dtype=None)
    half = FeatureCache(FakeVisual(), FakeText(), "memory", amp_dtype=torch.bfloat16)
    assert full.visual_key(image, 0) != half.visual_key(image, 0)
    assert full.text_key("segment crack") != half.text_key("segment crack")
    assert full.visual_key(image, 0) == FeatureCache(FakeVisual(), FakeText(), "memory").visual_key(image, 0)
