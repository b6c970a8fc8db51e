"""Training augmentation: identity parameters change nothing, a zoom keeps image, mask and tokens aligned."""

import random

import pytest
import torch

from textseg.data.augment import IDENTITY, JITTER, MIN_ZOOM_SIDE, augment_batch, draw_params


def _batch(size: int = 32, grid: int = 4, dim: int = 3):
    """Images, masks and a token grid with the same square (rows/cols 8..15 of 32 = tokens 1 of 4) marked."""
    images = torch.rand(2, 3, size, size) * 0.5
    masks = torch.zeros(2, 1, size, size)
    masks[:, :, 8:16, 8:16] = 1
    images[:, :, 8:16, 8:16] = 1.0
    tokens = torch.zeros(2, dim, grid, grid)
    tokens[:, :, 1, 1] = 1.0
    return images, masks, tokens.flatten(2).transpose(1, 2)  # (2, 16, dim)


def test_identity_parameters_change_nothing() -> None:
    images, masks, visual = _batch()
    params = torch.tensor([IDENTITY, IDENTITY])
    out_images, out_masks, out_visual = augment_batch(images, masks, visual, params)
    torch.testing.assert_close(out_images, images, atol=1e-5, rtol=0)
    assert torch.equal(out_masks, masks)
    torch.testing.assert_close(out_visual, visual, atol=1e-6, rtol=0)


def test_zoom_keeps_image_mask_and_tokens_aligned() -> None:
    images, masks, visual = _batch()
    # crop the top-left half (side 0.5, centre at -0.5, -0.5): the marked square doubles to rows/cols 16..31
    params = torch.tensor([(0.5, -0.5, -0.5, 1.0, 1.0, 1.0)] * 2)
    out_images, out_masks, out_visual = augment_batch(images, masks, visual, params)
    rows = out_masks[0, 0].amax(1).nonzero().flatten()
    assert rows.min() == 16 and rows.max() == 31
    assert torch.all(out_images[0][:, 17:31, 17:31] > 0.99)  # the bright square moved with the mask (edges blend)
    grid = out_visual[0, :, 0].reshape(4, 4)
    assert grid[2:, 2:].min() > 0.4 and grid[:2, :2].max() < 0.3  # token weight sits where the mask now is


def test_jitter_changes_colours_within_range_but_not_masks() -> None:
    images, masks, visual = _batch()
    params = torch.tensor([(1.0, 0.0, 0.0, 1.2, 0.8, 0.0)] * 2)  # brighter, less contrast, grayscale
    out_images, out_masks, out_visual = augment_batch(images, masks, visual, params)
    assert torch.equal(out_masks, masks)
    assert out_images.min() >= 0 and out_images.max() <= 1
    torch.testing.assert_close(out_images[:, 0], out_images[:, 1])  # saturation 0: channels equal
    assert not torch.allclose(out_images, images, atol=1e-3)


def test_drawn_parameters_stay_in_range_and_repeat_with_the_seed() -> None:
    draws = [draw_params(random.Random(f"0:{i}")) for i in range(200)]
    assert draws[:5] == [draw_params(random.Random(f"0:{i}")) for i in range(5)]
    for side, dx, dy, *colour in draws:
        assert MIN_ZOOM_SIDE <= side <= 1
        assert abs(dx) <= 1 - side + 1e-9 and abs(dy) <= 1 - side + 1e-9  # the crop stays inside the image
        assert all(1 - JITTER <= f <= 1 + JITTER for f in colour)


@pytest.mark.parametrize("augment", [False, True])
def test_dataset_items_carry_parameters(augment: bool, tmp_path) -> None:
    from textseg.data.datasets import Sample, SegDataset

    samples = [Sample(tmp_path / f"{i}.png", None, "crack", "train", tmp_path) for i in range(4)]
    ds = SegDataset(samples, augment=augment, seed=1)
    params = [ds.augmentation(i) for i in range(4)]
    assert (all(p == IDENTITY for p in params)) is not augment
    ds.set_epoch(1)
    assert ([ds.augmentation(i) for i in range(4)] == params) is not augment  # new parameters each epoch
