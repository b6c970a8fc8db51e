"""Attention statistics: defect cells of a mask, per-token weight on defect vs other cells, the defect-reading head."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, make_checkpoint, make_dataset

from textseg.attention import attention_contrast, contrast_table, defect_cells, defect_head, token_contrast
from textseg.data.datasets import collect_split
from textseg.predictor import Segmenter


def test_defect_cells_follow_the_mask_on_the_query_grid() -> None:
    mask = np.zeros((224, 224), bool)
    mask[:, :112] = True  # left half
    cells = defect_cells(mask, 196).reshape(14, 14)
    assert cells[:, :7].all() and not cells[:, 7:].any()
    thin = np.zeros((224, 224), bool)
    thin[:, 100] = True  # a 1-px line covers 1/16 of a 16-px cell: under the 10% needed
    assert not defect_cells(thin, 196).any()
    with pytest.raises(ValueError, match="square grid"):
        defect_cells(mask, 195)


def test_token_contrast_separates_a_head_that_reads_the_word_on_defects() -> None:
    cells = np.zeros(196, bool)
    cells[:20] = True
    attention = np.zeros((2, 196, 4))
    attention[:, :, 0] = 1.0  # everything on <start> ...
    attention[1, :20, 0], attention[1, :20, 2] = 0.2, 0.8  # ... except head 1 on defect cells, which reads token 2
    on, off = token_contrast(attention, cells)
    assert on.shape == off.shape == (2, 4)
    np.testing.assert_allclose(on[1], [0.2, 0, 0.8, 0])
    np.testing.assert_allclose(off[1], [1, 0, 0, 0])
    entry = {"prompt": "segment crack", "tokens": ["<start>", "segment", "crack", "<end>"], "defect": on, "other": off}
    assert defect_head(entry) == (1, 2)
    assert token_contrast(attention, np.ones(196, bool)) is None  # no other cell to compare with
    with pytest.raises(ValueError, match="does not match"):
        token_contrast(attention, np.zeros(100, bool))


def test_attention_contrast_on_a_model_averages_images_with_a_defect(tmp_path: Path) -> None:
    roots = {c: make_dataset(tmp_path / c, c, size=224) for c in ("crack", "taping")}
    # the branch at 224 px puts a 14x14 query grid over the image, so the 3-px cracks fill 10% of some cells
    # float32: the sums below hold to 1e-5 there; bf16 autocast (a CPU with hardware bf16) rounds them to about 1e-3
    seg = Segmenter.from_checkpoint(make_checkpoint(tmp_path / "ck.pt", dataclasses.replace(TINY, refine_size=224)), "cpu", amp=False)
    samples = collect_split(roots, "valid")
    stats = attention_contrast(seg, samples)
    assert set(stats) == {"crack", "taping"}
    for cls, entry in stats.items():
        assert entry["images"] == sum(s.cls == cls for s in samples)
        heads, tokens = entry["defect"].shape
        assert tokens == len(entry["tokens"]) and entry["tokens"][0] == "[CLS]"
        # each cell's weights over the prompt's tokens sum to one, so their means over cells do too
        np.testing.assert_allclose(entry["defect"].sum(1), np.ones(heads), atol=1e-5)
        np.testing.assert_allclose(entry["other"].sum(1), np.ones(heads), atol=1e-5)
    table = contrast_table(stats)
    assert table.count("\n") == 1 + sum(len(e["tokens"]) for e in stats.values())
    assert "| crack (2) | crack |" in table
