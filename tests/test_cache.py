"""Feature cache: hits and misses, float16 storage, flips, disk persistence, invalidation by content and encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from textseg.data.datasets import SegDataset, collect_split
from textseg.files import file_hash
from textseg.engine.cache import FeatureCache
from textseg.prompts import all_prompts

from conftest import FakeText, FakeVisual


def _dataset(root: Path, n: int = 5) -> list:
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / "train" / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = rng.integers(0, 255, (40, 48, 3)).astype(np.uint8)
        Image.fromarray(img).save(root / "train" / "images" / f"im{i}.png")
        Image.fromarray((img[..., 0] > 128).astype(np.uint8) * 255).save(root / "train" / "masks" / f"im{i}.png")
    return collect_split({"crack": root}, "train", val_fraction=0.0)


@pytest.fixture
def samples(tmp_path: Path) -> list:
    return _dataset(tmp_path / "data")


def test_memory_cache_hits_misses_and_values(samples: list) -> None:
    visual, text = FakeVisual(), FakeText()
    cache = FeatureCache(visual, text, "memory", batch_size=2)
    plain = SegDataset(samples)
    keys = cache.precompute_visual(plain, flips=(0, 1))
    assert len(keys) == len(set(keys)) == 10 and len(cache) == 10
    assert cache.stats["visual_misses"] == 10 and visual.calls == 6  # 3 batches x 2 flips, batched
    assert all(t.dtype == torch.float16 for t in cache._visual.values())
    assert cache.precompute_visual(plain) == keys and visual.encoded == 10  # nothing recomputed
    # training items at any epoch and flip hit the cache and equal a fresh encoding of the flipped image
    train = SegDataset(samples, flip=True, negative_rate=0.5, seed=3)
    for epoch in range(3):
        train.set_epoch(epoch)
        items = [train[i] for i in range(len(train))]
        images = torch.stack([it["image"] for it in items])
        tokens = cache.visual_tokens(images, [it["path"] for it in items], [it["flip"] for it in items])
        assert tokens.shape == (5, 196, 6) and tokens.dtype == torch.float32
        torch.testing.assert_close(tokens, visual(images), atol=2e-3, rtol=1e-3)
    assert {it["flip"] for it in items} == {0, 1}
    assert cache.stats["visual_hits"] == 15 and cache.stats["visual_misses"] == 10


def test_text_cache(samples: list) -> None:
    text = FakeText()
    cache = FeatureCache(FakeVisual(), text, "memory")
    assert cache.precompute_text(all_prompts() + ["segment crack"]) == len(all_prompts())
    assert cache.precompute_text(all_prompts()) == 0
    feats, padding = cache.text_tokens(["segment crack", "drywall seam", "segment crack"])
    assert feats.shape == (3, 77, 4) and padding.dtype == torch.bool and padding[0].sum() == 77 - len("segment crack")
    torch.testing.assert_close(feats[0], feats[2])
    assert cache.stats["text_hits"] == 3 and text.encoded == len(all_prompts())
    cache.text_tokens(["a new prompt"])
    assert cache.stats["text_misses"] == len(all_prompts()) + 1 and text.encoded == len(all_prompts()) + 1


def test_changed_image_bytes_miss(samples: list) -> None:
    visual = FakeVisual()
    cache = FeatureCache(visual, FakeText(), "memory")
    plain = SegDataset(samples)
    cache.precompute_visual(plain, flips=(0,))
    path = samples[0].image
    before = cache.visual_key(path, 0)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(path)  # same name, new content
    fresh = FeatureCache(visual, FakeText(), "memory")  # a new run hashes files anew
    fresh._visual = dict(cache._visual)  # even holding the old entries...
    assert fresh.visual_key(path, 0) != before
    item = SegDataset(samples)[0]
    tokens = fresh.visual_tokens(item["image"][None], [item["path"]], [0])
    assert fresh.stats == {"visual_hits": 0, "visual_misses": 1, "text_hits": 0, "text_misses": 0}  # ...it misses
    torch.testing.assert_close(tokens, visual(item["image"][None]), atol=1e-3, rtol=1e-3)
    assert fresh.content_hash(path) == file_hash(path, "sha1")


def test_disk_cache_persists_and_invalidates_on_encoder(samples: list, tmp_path: Path) -> None:
    plain = SegDataset(samples)
    first = FeatureCache(FakeVisual(), FakeText(), "disk", tmp_path / "cache")
    first.precompute_visual(plain, flips=(0, 1))
    first.precompute_text(["segment crack"])
    files = sorted((tmp_path / "cache").rglob("*.pt"))
    assert len(files) == 11 and len(first) == 10 and not list((tmp_path / "cache").rglob(".*"))
    same_visual = FakeVisual()
    second = FeatureCache(same_visual, FakeText(), "disk", tmp_path / "cache")  # a later run, same encoders
    second.precompute_visual(plain, flips=(0, 1))
    assert same_visual.encoded == 0 and second.stats["visual_misses"] == 0
    item = plain[2]
    tokens = second.visual_tokens(item["image"][None], [item["path"]], [1])
    torch.testing.assert_close(tokens, same_visual(item["image"].flip(-1)[None]), atol=2e-3, rtol=1e-3)
    assert second.stats["visual_hits"] == 1
    other = FakeVisual(seed=1)  # other weights: other identity, nothing reused
    third = FeatureCache(other, FakeText(), "disk", tmp_path / "cache")
    third.precompute_visual(plain, flips=(0,))
    assert other.encoded == 5 and third.stats["visual_misses"] == 5 and len(third) == 5
    assert len(list((tmp_path / "cache").glob("visual-*"))) == 2


def test_no_cache_mode_always_computes(samples: list) -> None:
    visual, text = FakeVisual(), FakeText()
    cache = FeatureCache(visual, text, "none")
    plain = SegDataset(samples)
    assert cache.precompute_visual(plain) == [] and cache.precompute_text(["crack"]) == 0
    item = plain[0]
    for _ in range(2):
        cache.visual_tokens(item["image"][None], [item["path"]], [0])
        cache.text_tokens(["crack"])
    assert visual.encoded == 2 and text.encoded == 2 and len(cache) == 0
    assert cache.stats == {"visual_hits": 0, "visual_misses": 2, "text_hits": 0, "text_misses": 2}
    with pytest.raises(ValueError, match="unknown cache mode 'ram'"):
        FeatureCache(visual, text, "ram")
    with pytest.raises(ValueError, match="needs a directory"):
        FeatureCache(visual, text, "disk")
