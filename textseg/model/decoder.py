"""Trainable decoders: the first version's cross-attention decoder ("seed") and a text-conditioned U-Net refinement of it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from textseg import CLASSES, MODEL_SIZE
from textseg.config import DECODERS, REFINE_FOLDS, ModelConfig
from textseg.model.backbone import NONE, PixelEncoder
from textseg.model.encoders import seeded
from textseg.model.minilm import sentence_embedding



class CrossAttentionBlock(nn.Module):
    """Visual tokens attend to text tokens (padding masked), then a pre-norm MLP; returns (B, dim, g, g)."""

    def __init__(self, visual_dim: int, text_dim: int, dim: int = 512, heads: int = 8, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.visual_proj = nn.Linear(visual_dim, dim)
        self.text_proj = nn.Linear(text_dim, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(
        self, visual: torch.Tensor, text: torch.Tensor, text_padding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, Dv), (B, T, Dt), (B, T) -> features (B, dim, g, g), attention (B, heads, N, T)."""
        v = self.visual_proj(visual)  # (B, 196, dim)
        t = self.text_proj(text)  # (B, T, dim)
        attended, attention = self.attn(
            v, t, t, key_padding_mask=text_padding.bool(), need_weights=True, average_attn_weights=False
        )  # (B, 196, dim), (B, heads, 196, T)
        x = v + attended
        x = x + self.mlp(self.norm(x))  # (B, 196, dim)
        batch, tokens, dim = x.shape
        grid = math.isqrt(tokens)
        if grid * grid != tokens:
            raise ValueError(f"decoder expects a square grid of visual tokens, got {tokens}")
        return x.transpose(1, 2).reshape(batch, dim, grid, grid), attention


@dataclass
class DecoderOutput:
    """What a decoder (and TextSegModel) returns for a batch of (image, prompt) pairs."""

    logits: torch.Tensor  # (B, 1, S, S) at the image's size, gated by the presence where the decoder has a gate
    attention: torch.Tensor  # (B, heads, N, T): N query cells attending over the T prompt tokens
    pixel_logits: torch.Tensor  # (B, 1, S, S) before the gate (the logits themselves for a decoder without one)
    presence: torch.Tensor | None = None  # (B,) logit that the image shows the prompted class
    prompt_class: torch.Tensor | None = None  # (B, K [+ 1]) which class the prompt names (+ none)
    image_class: torch.Tensor | None = None  # (B, K) which classes the image shows


class SeedDecoder(nn.Module):
    """The seed's decoder: cross-attention at 14x14, then kernel-2 stride-2 ConvTranspose up to 224x224 logits."""

    def __init__(self, visual_dim: int, text_dim: int, dim: int = 512, heads: int = 8) -> None:
        super().__init__()
        self.context = CrossAttentionBlock(visual_dim, text_dim, dim, heads, mlp_ratio=4.0)
        widths = [dim, dim // 2, dim // 4, dim // 8]  # 14 -> 28 -> 56 -> 112
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2), nn.GELU()]
        layers.append(nn.ConvTranspose2d(widths[-1], 1, kernel_size=2, stride=2))  # 112 -> 224
        self.upsample = nn.Sequential(*layers)

    def forward(
        self,
        visual: torch.Tensor,
        text: torch.Tensor,
        text_padding: torch.Tensor,
        image: torch.Tensor | None = None,
        pixel_features: list[torch.Tensor] | None = None,
    ) -> DecoderOutput:
        """Logits (B, 1, 224, 224), or at the image's size when one is given, and attention (B, heads, 196, T).
        No pixel encoder: pixel_features is always None (see image_features); no presence gate."""
        features, attention = self.context(visual, text, text_padding)  # (B, dim, 14, 14)
        logits = self.upsample(features)  # (B, 1, 224, 224)
        if image is not None and image.shape[-2:] != logits.shape[-2:]:
            logits = F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return DecoderOutput(logits, attention, logits)

    def image_features(self, image: torch.Tensor) -> None:
        """Nothing of the image is computed apart from the prompt: the ViT tokens come in from outside."""
        return None


class RunningStandardizer(nn.Module):
    """Per-dimension centering and scaling with running statistics (buffers), so tiny differences count."""

    def __init__(self, dim: int, momentum: float = 0.05, eps: float = 1e-4, clip: float = 8.0) -> None:
        super().__init__()
        self.momentum, self.eps, self.clip = momentum, eps, clip
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _update(self, x: torch.Tensor) -> None:
        """Fold a batch's statistics into the running ones (the first batch of >1 rows sets them); under DDP the
        statistics are those of the global batch, as one process would compute them."""
        sums = torch.cat([x.double().sum(0), x.double().square().sum(0), x.new_tensor([x.shape[0]], dtype=torch.float64)])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(sums)
        dim, count = x.shape[1], float(sums[-1])
        if count < 2:
            return
        mean = sums[:dim] / count
        var = (sums[dim : 2 * dim] / count - mean.square()).clamp_min(0.0)
        mean, var = mean.to(self.mean.dtype), var.to(self.var.dtype)
        if not bool(self.initialised):
            self.mean.copy_(mean)
            self.var.copy_(var)
            self.initialised.fill_(True)
            return
        self.mean.lerp_(mean, self.momentum)
        self.var.lerp_(var, self.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> standardised (B, D), clipped to +-clip."""
        if self.training:
            self._update(x.detach())
        z = (x - self.mean) / torch.sqrt(self.var + self.eps)
        return z.clamp(-self.clip, self.clip)


TEXT_POOLINGS: tuple[str, ...] = ("clip", "sentence")


class TextConditioner(nn.Module):
    """Pooled prompt embedding (B, E) from token features, then an MLP.

    "sentence": the sentence encoder's own embedding (mean of the attended tokens, L2-normalised), scaled to unit
    variance per dimension: a smooth function of the prompt's meaning, so paraphrases land near each other.
    "clip": CLIP's end-of-text token beside the mean token, standardised with running statistics (random CLIP weights
    give nearly identical features, and the standardiser makes their small differences count).
    """

    def __init__(self, text_dim: int, embed_dim: int, pooling: str = "clip") -> None:
        super().__init__()
        if pooling not in TEXT_POOLINGS:
            raise ValueError(f"text pooling {pooling!r}: choose one of {list(TEXT_POOLINGS)}")
        self.pooling = pooling
        pooled = text_dim if pooling == "sentence" else 2 * text_dim
        self.standardize = RunningStandardizer(pooled) if pooling == "clip" else None
        self.mlp = nn.Sequential(nn.Linear(pooled, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, text: torch.Tensor, text_padding: torch.Tensor) -> torch.Tensor:
        """(B, T, Dt), (B, T) -> (B, E)."""
        if self.standardize is None:
            return self.mlp(sentence_embedding(text, text_padding) * math.sqrt(text.shape[-1]))
        keep = (~text_padding.bool()).unsqueeze(-1).to(text.dtype)  # (B, T, 1)
        mean = (text * keep).sum(1) / keep.sum(1).clamp_min(1.0)  # (B, Dt)
        eot = (keep.squeeze(-1).sum(1).long() - 1).clamp_min(0)  # last attended position = end-of-text
        last = text[torch.arange(text.shape[0], device=text.device), eot]  # (B, Dt)
        return self.mlp(self.standardize(torch.cat([last, mean], dim=-1)))


def _conv(c_in: int, c_out: int, stride: int = 1, dilation: int = 1, norm: bool = True) -> nn.Sequential:
    """3x3 convolution, GroupNorm (unless norm=False), ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=not norm)
    ]
    if norm:
        layers.append(nn.GroupNorm(min(8, c_out // 4), c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FiLM(nn.Module):
    """Feature-wise affine modulation x * (1 + gamma) + beta from a text embedding; starts as identity."""

    def __init__(self, embed_dim: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embed_dim, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W), (B, E) -> (B, C, H, W)."""
        gamma, beta = self.linear(embedding)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


LOG_Q_MAX: float = -1e-6
"""Largest log-probability turned into a logit (q <= 1 - 1e-6, logit <= 13.8): keeps log(1 - q) and its gradient finite."""


def logit_from_log_prob(log_q: torch.Tensor) -> torch.Tensor:
    """logit(q) = log q - log(1 - q) from log q, stable for q near 0 and 1, with finite gradients everywhere.

    Each branch of the where() is evaluated on inputs clamped to its own range, so the branch not taken
    never produces an infinite value whose zero gradient would turn into NaN.
    """
    log_q = log_q.clamp(max=LOG_Q_MAX)
    half = -math.log(2)
    near_one = torch.log(-torch.expm1(log_q.clamp(min=half)))  # log(1 - q) for q > 1/2
    small = torch.log1p(-torch.exp(log_q.clamp(max=half)))  # log(1 - q) for q <= 1/2
    return log_q - torch.where(log_q > half, near_one, small)


class PooledHead(nn.Module):
    """Class logits from a feature map's mean and max, plus the standardised mean visual token when there is one."""

    def __init__(self, channels: int, visual_dim: int, num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.tokens = RunningStandardizer(visual_dim) if visual_dim else None
        self.head = nn.Linear(2 * channels + visual_dim, num_classes)

    def classify(self, features: torch.Tensor, visual: torch.Tensor | None) -> torch.Tensor:
        """(B, C, h, w), (B, N, Dv) or None -> (B, K) logits."""
        pooled = [features.float().mean(dim=(2, 3)), features.float().amax(dim=(2, 3))]
        if self.tokens is not None:
            if visual is None:
                raise ValueError("this decoder was built with visual tokens; pass them")
            pooled.append(self.tokens(visual.float().mean(1)))
        return self.head(torch.cat(pooled, dim=1))

    def forward(self, features: torch.Tensor, visual: torch.Tensor | None) -> torch.Tensor:
        """(B, C, h, w), (B, N, Dv) or None -> (B, K) logits."""
        return self.classify(features, visual)


class ImageClassifier(PooledHead):
    """Which classes an image shows (multi-label logits), never from the prompt: a small CNN over the pixels plus
    the standardised mean of the frozen visual tokens."""

    def __init__(self, visual_dim: int, num_classes: int = len(CLASSES), width: int = 16, stages: int = 5) -> None:
        widths = [3] + [width * 2 ** min(i, 3) for i in range(stages)]  # 3, w, 2w, 4w, 8w, 8w: 224 -> 7
        super().__init__(widths[-1], visual_dim, num_classes)
        self.features = nn.Sequential(*(_conv(c_in, c_out, stride=2) for c_in, c_out in zip(widths[:-1], widths[1:])))

    def forward(self, image: torch.Tensor, visual: torch.Tensor | None) -> torch.Tensor:
        """(B, 3, S, S) in [0, 1], (B, N, Dv) or None -> (B, K) logits."""
        return self.classify(self.features(image * 2 - 1), visual)  # features (B, 8w, S/32, S/32)


class ClassMatchHead(nn.Module):
    """Presence of the prompted class: P = sum_k P(prompt names class k) * P(image shows class k).

    A prompt classifier on the text embedding and an image classifier on the pixels, each trained on every
    example (the prompt's class and the image's class are always known), so obeying the prompt does not
    have to be learned from the negative examples alone. With `none_class` the prompt classifier has one more
    output, "none of the classes" (a door, the sky), which adds nothing to P: such a prompt switches the mask off.
    """

    def __init__(self, visual_dim: int, embed_dim: int, num_classes: int = len(CLASSES), width: int = 16,
                 image: nn.Module | None = None, none_class: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.prompt = nn.Linear(embed_dim, num_classes + int(none_class))
        self.image = image if image is not None else ImageClassifier(visual_dim, num_classes, width)

    def forward(self, image: torch.Tensor, visual: torch.Tensor | None, embedding: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (B, 3, S, S) or a feature map (what self.image takes), (B, N, Dv) or None, (B, E) ->
        {"presence": (B,), "prompt_class": (B, K) or (B, K + 1), "image_class": (B, K)} (logits)."""
        prompt_class, image_class = self.prompt(embedding), self.image(image, visual)  # (B, K [+ 1]), (B, K)
        prompt_log_p = F.log_softmax(prompt_class.float(), 1)[:, : self.num_classes]  # the none output adds nothing
        log_p = torch.logsumexp(prompt_log_p + F.logsigmoid(image_class.float()), 1)  # (B,)
        return {"presence": logit_from_log_prob(log_p), "prompt_class": prompt_class, "image_class": image_class}


def gate_logits(pixel_logits: torch.Tensor, presence_logit: torch.Tensor) -> torch.Tensor:
    """Logit of sigmoid(pixel) * sigmoid(presence), in float32 log space: (B,1,H,W), (B,) -> (B,1,H,W)."""
    return logit_from_log_prob(F.logsigmoid(pixel_logits.float()) + F.logsigmoid(presence_logit.float())[:, None, None, None])


# The way down of a refine decoder: deepest features, skips (finest first), context, attention, the gate's input.
Encoded = tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]


class _PromptedUNet(nn.Module):
    """What both refine decoders share: the forward pass (input check, the bottleneck where the cross-attention
    context joins, the FiLM-modulated climb back up, the unfolded head and the gated output). Subclasses define the
    modules these steps use and `_encode`, the way down."""

    image_size: int
    fold: int

    def forward(
        self,
        visual: torch.Tensor | None,
        text: torch.Tensor,
        text_padding: torch.Tensor,
        image: torch.Tensor | None = None,
        pixel_features: list[torch.Tensor] | None = None,
    ) -> DecoderOutput:
        """Gated logits (B, 1, S, S) at the image's size, the attention, the ungated logits, the presence and both
        class heads. `pixel_features`: image_features of these images, computed once and reused for every prompt
        (None: computed here)."""
        image, size = self._input(image)
        embedding = self.text(text, text_padding)  # (B, E)
        deepest, skips, context, attention, pooled = self._encode(image, visual, text, text_padding, embedding, pixel_features)
        x = self._climb(self._bottom(deepest, context, embedding), skips, embedding)  # (B, dec[0], S / fold, ...)
        pixel_logits = F.pixel_shuffle(self.head(x), self.fold)  # (B, 1, S, S)
        match = self.presence(pooled, visual, embedding)  # presence (B,), prompt_class and image_class (B, K)
        return self._output(pixel_logits, size, match, attention)

    def _encode(self, image: torch.Tensor, visual: torch.Tensor | None, text: torch.Tensor, text_padding: torch.Tensor,
                embedding: torch.Tensor, pixel_features: list[torch.Tensor] | None) -> Encoded:
        """The way down: the deepest features (B, C, S/16, S/16), the skips (finest first), the cross-attention
        context and its attention, and what the presence gate's image classifier reads."""
        raise NotImplementedError

    def image_features(self, image: torch.Tensor) -> list[torch.Tensor] | None:
        """What the way down computes from the image alone, before any prompt, for forward's pixel_features; None
        where nothing is (every stage of the from-scratch branch is modulated by the prompt)."""
        return None

    def _input(self, image: torch.Tensor | None) -> tuple[torch.Tensor, tuple[int, int]]:
        """The image (B, 3, S, S) in [0, 1] at the branch's resolution, and its own (H, W): the logits' size."""
        if image is None:
            raise ValueError("the refine decoder needs the image (B, 3, S, S) in [0, 1]; pass image=")
        size = tuple(image.shape[-2:])
        if image.shape[-2:] != (self.image_size, self.image_size):
            image = F.interpolate(image, size=(self.image_size,) * 2, mode="bilinear", align_corners=False)
        return image, size  # type: ignore[return-value]

    def _bottom(self, x: torch.Tensor, context: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Deepest features (B, C, S/16, S/16) + cross-attention context + global context, then the bottleneck."""
        if context.shape[-2:] != x.shape[-2:]:
            context = F.interpolate(context, size=x.shape[-2:], mode="bilinear", align_corners=False)
        x = x + self.fuse(context) + self.global_context(x.mean(dim=(2, 3)))[:, :, None, None]
        return self.film_bottleneck(self.bottleneck(x), embedding)

    def _climb(self, x: torch.Tensor, skips: list[torch.Tensor], embedding: torch.Tensor) -> torch.Tensor:
        """Up through the skip levels, deepest first; returns the finest level's features."""
        for i in reversed(range(len(self.up))):
            x = F.interpolate(self.lateral[i](x), size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.film_up[i](self.up[i](x + self.skip[i](skips[i])), embedding)  # (B, dec[i], ...)
        return x

    @staticmethod
    def _output(pixel_logits: torch.Tensor, size: tuple[int, int], match: dict[str, torch.Tensor],
                attention: torch.Tensor) -> DecoderOutput:
        """Pixel logits at `size` (the input image's), gated by the presence."""
        if pixel_logits.shape[-2:] != tuple(size):
            pixel_logits = F.interpolate(pixel_logits, size=tuple(size), mode="bilinear", align_corners=False)
        logits = gate_logits(pixel_logits, match["presence"])
        return DecoderOutput(logits, attention, pixel_logits, match["presence"], match["prompt_class"], match["image_class"])


class RefineDecoder(_PromptedUNet):
    """Seed cross-attention context fused into a text-conditioned (FiLM) U-Net over the image, with a presence gate.

    Encoder widths w, 2w, 4w, 8w at 1/2 ... 1/16 of the image side (a w/4-channel stem at full resolution);
    decoder widths w/4 ... 2w on the way back up; one 3x3 convolution per scale except two (dilated) at the
    bottleneck, where the 14x14 cross-attention features and a global image context are added.
    The context block uses min(dim, 8w) channels to keep the branch cheap on CPU.
    fold=2 drops the full-resolution stage: the image enters space-to-depth (2x2 pixels as 12 channels at
    1/2) and the head's 4 logit channels are unfolded back (pixel shuffle), so no layer runs at full size.
    """

    def __init__(
        self,
        visual_dim: int,
        text_dim: int,
        dim: int = 512,
        heads: int = 8,
        width: int = 32,
        image_size: int = MODEL_SIZE,
        fold: int = 1,
        pooling: str = "clip",
        none_class: bool = False,
    ) -> None:
        super().__init__()
        if fold not in REFINE_FOLDS:
            raise ValueError(f"refine fold must be one of {list(REFINE_FOLDS)}, got {fold}")
        self.image_size, self.fold = image_size, fold
        stem = max(4, width // 4)
        enc = [stem, width, 2 * width, 4 * width, 8 * width]  # 1/1, 1/2, 1/4, 1/8, 1/16 of the side
        dec = [stem, max(8, width // 2), width, 2 * width]  # decoder channels at 1/1 ... 1/8
        full = fold == 1  # a stage at full resolution, run without GroupNorm (cheaper); the other stages keep it
        if not full:  # that stage is dropped: everything from 1/2 of the side down
            enc, dec = enc[1:], dec[1:]
        embed = 4 * width
        context_dim = min(dim, 8 * width)
        self.context = CrossAttentionBlock(visual_dim, text_dim, context_dim, heads, mlp_ratio=1.0)
        self.text = TextConditioner(text_dim, embed, pooling)
        self.down = nn.ModuleList([_conv(3 * fold * fold, enc[0], norm=not full)])
        self.down.extend(_conv(c_in, c_out, stride=2) for c_in, c_out in zip(enc[:-1], enc[1:]))
        self.film_down = nn.ModuleList(FiLM(embed, c) for c in enc)
        self.fuse = nn.Conv2d(context_dim, enc[-1], 1)
        self.global_context = nn.Linear(enc[-1], enc[-1])
        self.bottleneck = nn.Sequential(_conv(enc[-1], enc[-1]), _conv(enc[-1], enc[-1], dilation=2))
        self.film_bottleneck = FiLM(embed, enc[-1])
        self.presence = ClassMatchHead(visual_dim, embed, width=max(8, width // 2), none_class=none_class)
        deeper = [*dec[1:], enc[-1]]  # channels arriving from below at each decoder scale
        self.lateral = nn.ModuleList(nn.Conv2d(c_in, c_out, 1) for c_in, c_out in zip(deeper, dec))
        self.skip = nn.ModuleList(nn.Conv2d(c_in, c_out, 1) for c_in, c_out in zip(enc[:-1], dec))
        self.up = nn.ModuleList(_conv(c, c, norm=i > 0 or not full) for i, c in enumerate(dec))
        self.film_up = nn.ModuleList(FiLM(embed, c) for c in dec)
        self.head = nn.Conv2d(dec[0], fold * fold, 1)

    def _encode(self, image: torch.Tensor, visual: torch.Tensor | None, text: torch.Tensor, text_padding: torch.Tensor,
                embedding: torch.Tensor, pixel_features: list[torch.Tensor] | None) -> Encoded:
        """A from-scratch convolutional encoder over the image; the ViT tokens query the prompt (B, C, 14, 14)."""
        context, attention = self.context(visual, text, text_padding)
        x = F.pixel_unshuffle(image * 2 - 1, self.fold)  # (B, 3 fold^2, S / fold, S / fold)
        skips = []
        for block, film in zip(self.down, self.film_down):
            x = film(block(x), embedding)  # (B, enc[i], S / (fold 2**i), ...)
            skips.append(x)
        deepest = skips.pop()  # the deepest level feeds the bottleneck
        return deepest, skips, context, attention, image  # the gate's small classifier reads the image itself


class PixelRefineDecoder(_PromptedUNet):
    """The refine decoder over a pretrained CNN pyramid (fine-tuned), with the cross-attention context and the gate.

    The pixel encoder's features at 1/2 ... 1/32 of the side are FiLM-modulated by the prompt embedding; the 1/32
    and 1/16 levels meet the cross-attention context at 1/16 (the bottleneck); a U-Net path climbs back to 1/2, where
    4 logit channels are unfolded to full size (pixel shuffle). The cross-attention's queries are the ViT's patch
    tokens when given, else (queries "pixel") the pixel encoder's own 1/16 and 1/32 features, before any prompt
    modulation. The presence gate's image classifier pools the unmodulated 1/32 features.
    """

    def __init__(
        self,
        pixel: nn.Module,
        visual_dim: int,
        text_dim: int,
        dim: int = 512,
        heads: int = 8,
        width: int = 32,
        image_size: int = MODEL_SIZE,
        pooling: str = "clip",
        none_class: bool = False,
    ) -> None:
        super().__init__()
        if list(pixel.reductions) != [2, 4, 8, 16, 32]:
            raise ValueError(f"pixel encoder must give features at strides 2..32, got {pixel.reductions}")
        self.pixel, self.image_size, self.fold = pixel, image_size, 2
        chans = list(pixel.channels)  # e.g. 16, 24, 48, 120, 352 for EfficientNet-Lite2
        embed, context_dim, bottom = 4 * width, min(dim, 8 * width), 8 * width
        dec = [max(8, width // 2), width, 2 * width]  # decoder channels at 1/2, 1/4, 1/8
        self.context = CrossAttentionBlock(visual_dim or chans[3] + chans[4], text_dim, context_dim, heads, mlp_ratio=1.0)
        self.text = TextConditioner(text_dim, embed, pooling)
        self.film_down = nn.ModuleList(FiLM(embed, c) for c in chans)
        self.reduce = nn.Conv2d(chans[3] + chans[4], bottom, 1)
        self.fuse = nn.Conv2d(context_dim, bottom, 1)
        self.global_context = nn.Linear(bottom, bottom)
        self.bottleneck = nn.Sequential(_conv(bottom, bottom), _conv(bottom, bottom, dilation=2))
        self.film_bottleneck = FiLM(embed, bottom)
        self.presence = ClassMatchHead(visual_dim, embed, image=PooledHead(chans[4], visual_dim), none_class=none_class)
        deeper = [*dec[1:], bottom]  # channels arriving from below at each decoder scale
        self.lateral = nn.ModuleList(nn.Conv2d(c_in, c_out, 1) for c_in, c_out in zip(deeper, dec))
        self.skip = nn.ModuleList(nn.Conv2d(c_in, c_out, 1) for c_in, c_out in zip(chans[:3], dec))
        self.up = nn.ModuleList(_conv(c, c) for c in dec)
        self.film_up = nn.ModuleList(FiLM(embed, c) for c in dec)
        self.head = nn.Conv2d(dec[0], 4, 1)

    @staticmethod
    def _pixel_queries(feats: list[torch.Tensor]) -> torch.Tensor:
        """The 1/16 features with the 1/32 ones upsampled beside them, as tokens (B, (S/16)^2, C3 + C4)."""
        deep = F.interpolate(feats[4], size=feats[3].shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([feats[3], deep], dim=1).flatten(2).transpose(1, 2)

    def _encode(self, image: torch.Tensor, visual: torch.Tensor | None, text: torch.Tensor, text_padding: torch.Tensor,
                embedding: torch.Tensor, pixel_features: list[torch.Tensor] | None) -> Encoded:
        """The pretrained pyramid, FiLM-modulated; its 1/16 and 1/32 levels merged at 1/16 for the bottleneck."""
        feats = self.pixel(image) if pixel_features is None else pixel_features  # (B, C_i, S / 2**(i+1), ...), i = 0..4
        queries = visual if visual is not None else self._pixel_queries(feats)  # (B, N, Dq)
        context, attention = self.context(queries, text, text_padding)  # (B, C, g, g)
        skips = [film(x, embedding) for film, x in zip(self.film_down, feats)]
        deep = F.interpolate(skips[4], size=skips[3].shape[-2:], mode="bilinear", align_corners=False)
        deepest = self.reduce(torch.cat([skips[3], deep], dim=1))  # (B, 8w, S/16, S/16)
        return deepest, skips[:3], context, attention, feats[4]  # the gate pools the unmodulated 1/32 features

    def image_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The pixel encoder's pyramid (B, C_i, S / 2**(i+1), ...) of images (B, 3, H, W) in [0, 1]: about half of a
        forward pass, the same for every prompt."""
        return self.pixel(self._input(image)[0])


def build_decoder(cfg: ModelConfig, visual_dim: int, text_dim: int) -> nn.Module:
    """The decoder named by cfg.decoder (over cfg.pixel_encoder for refine), parameters initialised from cfg.init_seed.

    visual_dim is 0 when no ViT tokens are used (queries "pixel").
    """
    cfg = cfg.resolved()
    with seeded(cfg.init_seed):
        if cfg.decoder == "seed":
            return SeedDecoder(visual_dim, text_dim, cfg.dim, cfg.heads)
        if cfg.decoder == "refine" and cfg.pixel_encoder == NONE:
            return RefineDecoder(visual_dim, text_dim, cfg.dim, cfg.heads, cfg.refine_width, cfg.refine_size, cfg.refine_fold,
                                 cfg.text_pooling, cfg.none_class)
        if cfg.decoder == "refine":
            pixel = PixelEncoder(cfg.pixel_encoder, cfg.pixel_weights, cfg.init_seed)
            return PixelRefineDecoder(pixel, visual_dim if cfg.queries == "vit" else 0, text_dim, cfg.dim, cfg.heads,
                                      cfg.refine_width, cfg.refine_size, cfg.text_pooling, cfg.none_class)
    raise ValueError(f"unknown decoder {cfg.decoder!r}; choose one of {list(DECODERS)}")


def pixel_identity(decoder: nn.Module) -> dict | None:
    """Identity (name, weights, file hash) of a decoder's pretrained pixel encoder, None when it has none."""
    pixel = getattr(decoder, "pixel", None)
    return dict(pixel.identity) if pixel is not None else None
