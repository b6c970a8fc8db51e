"""Training-time augmentation after the feature cache: a random zoom applied alike to image, mask and visual-token
grid, and a colour jitter of the image the refinement branch sees.

The frozen encoders' tokens stay cached per (image, flip); the zoom resamples the 14x14 token grid with the same
normalised transform as the pixels, so tokens, image and mask stay aligned. Parameters are drawn per example from
(seed, epoch, index), as SegDataset draws prompts and flips, so resumed and multi-process runs see the same ones.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

MIN_ZOOM_SIDE: float = 0.6
"""Smallest crop side, as a fraction of the image side (a zoom of at most 1/0.6 = 1.67x)."""
JITTER: float = 0.25
"""Brightness, contrast and saturation factors are drawn from [1 - JITTER, 1 + JITTER]."""
IDENTITY: tuple[float, ...] = (1.0, 0.0, 0.0, 1.0, 1.0, 1.0)
"""Parameters that change nothing: crop side 1, centre offset (0, 0), brightness, contrast, saturation 1."""


def draw_params(rng: random.Random) -> tuple[float, ...]:
    """(side, offset_x, offset_y, brightness, contrast, saturation) for one example; offsets keep the crop inside."""
    side = rng.uniform(MIN_ZOOM_SIDE, 1.0)
    room = 1.0 - side
    return (side, rng.uniform(-room, room), rng.uniform(-room, room),
            *(rng.uniform(1 - JITTER, 1 + JITTER) for _ in range(3)))


def _zoom(x: torch.Tensor, theta: torch.Tensor, mode: str) -> torch.Tensor:
    """Resample (B, C, H, W) through per-example affine maps theta (B, 2, 3) in normalised coordinates."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)


def _jitter(images: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """Colour jitter of (B, 3, H, W) images in [0, 1] with per-example factors (B,)."""
    b, c, s = (t.to(images.dtype)[:, None, None, None] for t in (brightness, contrast, saturation))
    gray_weights = images.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]
    x = images * b
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * c + mean
    gray = (x * gray_weights).sum(1, keepdim=True)
    return ((x - gray) * s + gray).clamp(0.0, 1.0)


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, visual: torch.Tensor | None, params: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Zoom (B, 3, S, S) images, (B, 1, S, S) masks and (B, N, D) token grids alike, then colour-jitter the images.

    params is (B, 6) as draw_params returns; rows equal to IDENTITY leave their example unchanged.
    """
    params = params.to(images.device, torch.float32)
    side, dx, dy = params[:, 0], params[:, 1], params[:, 2]
    theta = torch.zeros(len(params), 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = side, side, dx, dy
    if visual is not None:  # None: no ViT tokens (the pixel encoder sees the zoomed image itself)
        batch, tokens, dim = visual.shape
        grid = math.isqrt(tokens)
        grid_tokens = visual.transpose(1, 2).reshape(batch, dim, grid, grid)
        visual = _zoom(grid_tokens, theta, "bilinear").reshape(batch, dim, tokens).transpose(1, 2)
    masks = _zoom(masks.float(), theta, "bilinear").gt(0.5).to(masks.dtype)
    images = _jitter(_zoom(images, theta, "bilinear"), params[:, 3], params[:, 4], params[:, 5])
    return images, masks, visual
