"""Tests of the decoders and the loss: shapes, attention, gating, seeding, known loss values, learning."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from textseg.config import ModelConfig
from textseg.engine.losses import class_labels, class_match_loss, decoder_loss, presence_loss, segmentation_loss, soft_dice_loss
from textseg.model.decoder import ClassMatchHead, DecoderOutput, RefineDecoder, SeedDecoder, build_decoder, gate_logits

VISUAL_DIM, TEXT_DIM = 24, 16


def _inputs(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random visual tokens, text tokens, a padding mask (lengths 3 and 6) and images."""
    gen = torch.Generator().manual_seed(seed)
    visual = torch.randn(batch, 196, VISUAL_DIM, generator=gen)
    text = torch.randn(batch, 77, TEXT_DIM, generator=gen)
    lengths = torch.tensor([3, 6] * batch)[:batch]
    padding = torch.arange(77)[None, :] >= lengths[:, None]  # (B, 77)
    image = torch.rand(batch, 3, 224, 224, generator=gen)
    return visual, text, padding, image


def _cfg(decoder: str, **kwargs: object) -> ModelConfig:
    return ModelConfig(**{"decoder": decoder, "dim": 32, "heads": 8, "refine_width": 8, "pixel_encoder": "none",
                          "visual_weights": "random", **kwargs})


@pytest.mark.parametrize("name", ["seed", "refine"])
def test_shapes_and_attention(name: str) -> None:
    decoder = build_decoder(_cfg(name), VISUAL_DIM, TEXT_DIM)
    assert isinstance(decoder, SeedDecoder if name == "seed" else RefineDecoder)
    visual, text, padding, image = _inputs()
    out = decoder(visual, text, padding, image=image)
    assert out.logits.shape == (2, 1, 224, 224) and torch.isfinite(out.logits).all()
    attention = out.attention
    assert (out.presence is None) == (name == "seed") and out.pixel_logits.shape == out.logits.shape
    assert attention.shape == (2, 8, 196, 77)
    assert torch.allclose(attention.sum(-1), torch.ones(2, 8, 196), atol=1e-5)
    assert torch.all(attention.masked_select(padding[:, None, None, :].expand_as(attention)) == 0)
    assert (attention[0, :, :, :3] > 0).all()


def _conv_output_sides(decoder: torch.nn.Module, *inputs: torch.Tensor, image: torch.Tensor) -> set[int]:
    """Spatial sides of every Conv2d output in one forward pass."""
    sides: set[int] = set()
    hooks = [m.register_forward_hook(lambda _m, _i, out: sides.add(out.shape[-1]))
             for m in decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    decoder(*inputs, image=image)
    for hook in hooks:
        hook.remove()
    return sides


def test_refine_fold_runs_no_layer_at_full_resolution() -> None:
    visual, text, padding, image = _inputs()
    full = build_decoder(_cfg("refine", refine_fold=1, refine_size=224), VISUAL_DIM, TEXT_DIM)  # the images' size
    folded = build_decoder(_cfg("refine", refine_fold=2, refine_size=224), VISUAL_DIM, TEXT_DIM)
    assert folded.down[0][0].in_channels == 12 and folded.head.out_channels == 4  # 2x2 pixels in, 2x2 logits out
    assert max(_conv_output_sides(full, visual, text, padding, image=image)) == 224
    assert max(_conv_output_sides(folded, visual, text, padding, image=image)) == 112
    out = folded(visual, text, padding, image=image)
    assert out.logits.shape == out.pixel_logits.shape == (2, 1, 224, 224) and torch.isfinite(out.logits).all()
    with pytest.raises(ValueError, match="refine_fold 3: choose one of"):
        build_decoder(_cfg("refine", refine_fold=3), VISUAL_DIM, TEXT_DIM)


def test_refine_aux_gates_the_pixels() -> None:
    decoder = build_decoder(_cfg("refine"), VISUAL_DIM, TEXT_DIM)
    visual, text, padding, image = _inputs()
    out = decoder(visual, text, padding, image=image)
    assert out.presence.shape == (2,) and out.pixel_logits.shape == (2, 1, 224, 224)
    expected = torch.sigmoid(out.pixel_logits) * torch.sigmoid(out.presence)[:, None, None, None]
    assert torch.allclose(torch.sigmoid(out.logits), expected, atol=1e-6)
    with pytest.raises(ValueError, match="needs the image"):
        decoder(visual, text, padding)


def test_class_match_presence_is_the_sum_over_classes() -> None:
    head = ClassMatchHead(visual_dim=5, embed_dim=6, width=4)
    out = head(torch.rand(3, 3, 64, 64), torch.randn(3, 10, 5), torch.randn(3, 6))
    assert out["prompt_class"].shape == (3, 2) and out["image_class"].shape == (3, 2)
    expected = (out["prompt_class"].softmax(1) * out["image_class"].sigmoid()).sum(1)  # sum_k P(prompt k) P(image k)
    assert torch.allclose(out["presence"].sigmoid(), expected, atol=1e-6)
    sure = torch.full((1, 6), 1e3, requires_grad=True)  # a saturated prompt classifier: presence log-prob 0
    head(torch.rand(1, 3, 64, 64), torch.randn(1, 10, 5), sure)["presence"].backward()
    assert torch.isfinite(sure.grad).all()


def test_class_labels_and_match_loss() -> None:
    labels = class_labels(["crack", "taping", "taping"], ["taping", "taping", "crack"], torch.tensor([True, True, False]))
    assert labels.prompt.tolist() == [1, 1, 0]
    assert labels.image.tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]  # a drywall photo without a seam shows neither
    logits, target = torch.zeros(3, 1, 2, 2), torch.zeros(3, 1, 2, 2)
    zeros = DecoderOutput(logits, torch.zeros(3, 1, 1, 1), logits, prompt_class=torch.zeros(3, 2), image_class=torch.zeros(3, 2))
    assert class_match_loss(zeros, labels).item() == pytest.approx(2 * math.log(2))  # CE ln 2 + BCE ln 2
    sure = DecoderOutput(logits, torch.zeros(3, 1, 1, 1), logits,
                         prompt_class=torch.tensor([[-20.0, 20.0], [-20.0, 20.0], [20.0, -20.0]]),
                         image_class=torch.tensor([[20.0, -20.0], [-20.0, 20.0], [-20.0, -20.0]]))
    assert class_match_loss(sure, labels).item() == pytest.approx(0.0, abs=1e-6)
    seed = DecoderOutput(logits, torch.zeros(3, 1, 1, 1), logits)  # the seed decoder: no gate, no class heads
    base = decoder_loss(seed, target)
    assert decoder_loss(seed, target, labels).item() == pytest.approx(base.item())
    with_match = decoder_loss(dataclasses.replace(zeros, presence=torch.zeros(3)), target, labels)
    assert with_match.item() == pytest.approx(base.item() + math.log(2) + 2 * math.log(2), abs=1e-6)


def test_gate_logits_is_stable_at_extremes() -> None:
    pixel = torch.tensor([-100.0, -5.0, 0.0, 5.0, 40.0, 100.0]).view(6, 1, 1, 1)
    presence = torch.tensor([0.0, 100.0, 0.0, 100.0, 100.0, 100.0])
    gated = gate_logits(pixel, presence).flatten()
    assert torch.isfinite(gated).all()
    assert gated[0] < -99 and abs(gated[1] + 5) < 1e-4 and abs(gated[2] - math.log(1 / 3)) < 1e-5
    assert abs(gated[3] - 5) < 1e-4 and gated[5] > 13
    closed = gate_logits(torch.full((1, 1, 1, 1), 10.0), torch.tensor([-10.0]))
    assert closed.item() < -9.9  # a wrong-class prompt switches the pixel off
    pixel.requires_grad_(True)
    gate_logits(pixel, presence).sum().backward()  # saturated inputs: gradients stay finite (NaN ended a real run)
    assert torch.isfinite(pixel.grad).all()


def test_unknown_decoder_and_seeded_init() -> None:
    with pytest.raises(ValueError, match="decoder 'unet': choose one of"):
        build_decoder(_cfg("unet"), VISUAL_DIM, TEXT_DIM)
    a = build_decoder(_cfg("refine", init_seed=1), VISUAL_DIM, TEXT_DIM).state_dict()
    b = build_decoder(_cfg("refine", init_seed=1), VISUAL_DIM, TEXT_DIM).state_dict()
    c = build_decoder(_cfg("refine", init_seed=2), VISUAL_DIM, TEXT_DIM).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_loss_known_values() -> None:
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # p = 0.5 everywhere: BCE = ln 2; Dice = (2*0.5 + 1) / (2 + 1 + 1) = 0.5
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.5)
    assert segmentation_loss(logits, target).item() == pytest.approx(math.log(2) + 0.5, abs=1e-6)
    # empty target, confident empty prediction: both terms vanish
    assert segmentation_loss(torch.full((1, 1, 2, 2), -50.0), torch.zeros(1, 1, 2, 2)).item() == pytest.approx(0, abs=1e-6)
    # extreme wrong logits stay finite: BCE = 100 per pixel, Dice = 1 - 1/(4+1)
    wrong = segmentation_loss(torch.full((1, 1, 2, 2), 100.0), torch.zeros(1, 1, 2, 2))
    assert wrong.item() == pytest.approx(100 + 0.8, rel=1e-5)
    # presence: target any() is (1, 0); logits 0 -> ln 2 added
    two = torch.cat([target, torch.zeros_like(target)])
    assert presence_loss(torch.zeros(2), two).item() == pytest.approx(math.log(2))
    with_presence = segmentation_loss(torch.zeros(2, 1, 2, 2), two, presence_logit=torch.zeros(2))
    dice_mean = (0.5 + (1 - 1 / 3)) / 2  # second image: (0 + 1) / (2 + 0 + 1)
    assert with_presence.item() == pytest.approx(2 * math.log(2) + dice_mean, abs=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        segmentation_loss(logits, target[..., :1])


@pytest.mark.parametrize("name, fold", [("seed", 1), ("refine", 1), ("refine", 2)])
def test_few_steps_lower_the_loss(name: str, fold: int) -> None:
    decoder = build_decoder(_cfg(name, refine_fold=fold), VISUAL_DIM, TEXT_DIM)
    visual, text, padding, image = _inputs(batch=2, seed=1)
    target = torch.zeros(2, 1, 224, 224)
    target[0, :, 60:120, 100:110] = 1  # a vertical bar in image 0, nothing in image 1
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        out = decoder(visual, text, padding, image=image)
        loss = segmentation_loss(out.logits, target, out.presence)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses
