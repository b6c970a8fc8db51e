"""Prediction: a trained model on one device, batched, at each image's original size (no files written, no threads).

    seg = Segmenter.from_checkpoint("outputs/runs/main/best.pt")
    preds = seg.predict(["wall.jpg"], "segment crack")        # [Prediction(prob, mask, prompt, ...)]

For interactive use the image is encoded once (`encode_image`) and any number of prompts are decoded
against it (`predict_encoded`); text features are cached per prompt, so a new prompt never re-runs the ViT.

Large photos: `seg.predict(images, prompt, tiling=Tiling())` segments each at full resolution in overlapping,
blended tiles (`Segmenter.tiled_probability`), with the presence gate decided on the whole photo.

Reading and writing files in batches is textseg.batch_io's; the command line is textseg.cli.predict's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image
import numpy as np
import torch
import torch.nn.functional as F

from textseg import CLASSES, MODEL_SIZE, THRESHOLD
from textseg.config import DataConfig, ModelConfig
from textseg.data.images import load_image, resize_rgb, to_rgb_array
from textseg.engine.runtime import amp_dtype, autocast, resolve_device
from textseg.model.build import TextSegModel, build_model
from textseg.model.checkpoint import CheckpointError, check_encoders, checkpoint_configs, load_checkpoint, load_decoder_state
from textseg.model.decoder import gate_logits
from textseg.model.minilm import is_minilm_weights
from textseg.progress import progress_bar
from textseg.prompts import NONE, PromptMeaning, prompt_class, threshold_for

logger = logging.getLogger(__name__)

ImageInput = str | Path | np.ndarray
PROMPT_CACHE_SIZE = 256
TILE_SIZE = 640
"""The side of the training photos (Roboflow exports), which the model saw squeezed into one 224-px input. On
held-out photos a tile showing less than a training photo did (the model zoomed in) scored lower
(benchmarks/RESULTS.md), so by default a tile covers the photo's shorter side, and never less than this."""


@dataclass(frozen=True)
class Tiling:
    """How a large photo is cut: `size` photo pixels per model input (None: the photo's shorter side, at least
    TILE_SIZE), neighbours overlapping by `overlap` of a tile, `batch_size` tiles per forward pass."""

    size: int | None = None
    overlap: float = 0.25
    batch_size: int = 8

    def side(self, height: int, width: int) -> int:
        """Photo pixels per tile for a photo of this size."""
        return int(self.size) if self.size is not None else max(TILE_SIZE, min(height, width))

    def __post_init__(self) -> None:
        if self.size is not None and int(self.size) < 32:
            raise ValueError(f"tile size must be at least 32 photo pixels, got {self.size}")
        if not 0.0 <= float(self.overlap) <= 0.75:
            raise ValueError(f"tile overlap must be in [0, 0.75] (a fraction of the tile), got {self.overlap}")
        if int(self.batch_size) < 1:
            raise ValueError(f"tile batch size must be >= 1, got {self.batch_size}")


@dataclass
class Prediction:
    """One (image, prompt) result at the image's original size."""

    prob: np.ndarray  # float32 (H, W) in [0, 1]
    mask: np.ndarray  # bool (H, W): prob > threshold
    prompt: str
    threshold: float = THRESHOLD
    attention: np.ndarray | None = None  # float32 (heads, queries, T tokens) when asked for
    tokens: list[str] = field(default_factory=list)  # prompt tokens, start and end markers included
    source: str = ""  # file path, or "array[i]"
    meaning: PromptMeaning | None = None  # the class the model takes the prompt to mean

    def with_threshold(self, threshold: float | None) -> "Prediction":
        """The same probabilities re-thresholded (no model work: for a threshold slider); None: the prompt's default."""
        threshold = threshold_for(self.prompt, threshold, self.meaning.cls if self.meaning else None)
        return dataclasses.replace(self, mask=self.prob > threshold, threshold=threshold)

    def stats(self) -> dict[str, object]:
        """Foreground pixels and fraction, size, and the unique values of the 0/255 mask PNG."""
        fg = int(self.mask.sum())
        return {
            "height": int(self.mask.shape[0]),
            "width": int(self.mask.shape[1]),
            "foreground_pixels": fg,
            "foreground_fraction": fg / self.mask.size,
            "unique_values": sorted({0, 255} if 0 < fg < self.mask.size else {255 if fg else 0}),
            "max_prob": float(self.prob.max()),
        }


@dataclass
class EncodedImage:
    """An image's visual tokens, pixel-encoder features and model-size tensor, computed once and reused for every
    prompt."""

    tokens: torch.Tensor | None  # (196, Dv) on the segmenter's device; None without a ViT
    image: torch.Tensor  # (3, S, S) float in [0, 1] on the segmenter's device
    size: tuple[int, int]  # original (H, W)
    source: str = ""
    rgb: np.ndarray | None = None  # uint8 (H, W, 3) original image, kept for overlays
    features: list[torch.Tensor] | None = None  # the decoder's image_features, one (C_i, h_i, w_i) per level


def to_rgb(image: ImageInput) -> np.ndarray:
    """uint8 RGB (H, W, 3) from a file path (turned upright by its EXIF orientation) or an array (grayscale, RGBA,
    16-bit, float in [0, 1])."""
    if isinstance(image, (str, Path)):
        return load_image(image, upright=True)
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3 and 0 not in arr.shape:
        return np.ascontiguousarray(arr)  # already RGB: no copy of a full-size photo through PIL
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape:
        raise ValueError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if arr.dtype == np.uint16:
        arr = np.clip(arr.astype(np.float64) / 65535.0 * 255.0, 0, 255).astype(np.uint8)  # as load_image does
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(arr)) <= 1.0 else 1.0
        arr = np.clip(np.nan_to_num(arr) * scale, 0, 255).round().astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ValueError(f"image array dtype {arr.dtype} not supported; use uint8, uint16, bool or float")
    return to_rgb_array(Image.fromarray(np.ascontiguousarray(arr)))


def image_tensor(rgb: np.ndarray, size: int = MODEL_SIZE) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, size, size) in [0, 1], resized as the dataset does (resize_rgb)."""
    return torch.from_numpy(resize_rgb(rgb, (size, size))).permute(2, 0, 1).float().div_(255.0)


def check_prompt(prompt: object) -> str:
    """The prompt, stripped; ValueError for a non-string or empty one."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string, got {type(prompt).__name__} {prompt!r}")
    if not prompt.strip():
        raise ValueError(f"empty prompt {prompt!r}; say what to segment, e.g. 'segment crack'")
    return prompt.strip()


class Segmenter:
    """A TextSegModel on one device, in eval mode, with a per-prompt text cache."""

    def __init__(
        self,
        model: TextSegModel,
        data_cfg: DataConfig | None = None,
        device: str | torch.device = "cpu",
        checkpoint: str | Path | None = None,
        amp: bool = True,
    ) -> None:
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.dtype = amp_dtype(self.device, amp)  # as in training: bf16 on CUDA or a CPU with hardware bf16
        self.model = model.to(self.device).eval()
        self.data_cfg = data_cfg or DataConfig()
        self.checkpoint = str(checkpoint) if checkpoint is not None else None
        self.image_size = int(self.data_cfg.image_size)
        self._prompts: OrderedDict[str, tuple[torch.Tensor, torch.Tensor, list[str]]] = OrderedDict()

    @property
    def model_cfg(self) -> ModelConfig:
        return self.model.cfg

    @property
    def visual(self) -> torch.nn.Module | None:
        """The ViT (None: the pixel encoder queries the prompt)."""
        return self.model.visual

    @property
    def text(self) -> torch.nn.Module:
        return self.model.text

    @property
    def decoder(self) -> torch.nn.Module:
        return self.model.decoder

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "auto",
        visual_weights: str | None = None,
        text_weights: str | None = None,
        amp: bool | None = None,
    ) -> "Segmenter":
        """Rebuild encoders (weights overridable, identity must match) and decoder from a training checkpoint.

        `amp`: mixed precision as in training (None, the default), or forced on / off (False: float32).
        """
        torch_device = resolve_device(device)
        payload = load_checkpoint(path)
        data_cfg, model_cfg, train_cfg = checkpoint_configs(payload)
        overrides = {k: v for k, v in (("visual_weights", visual_weights), ("text_weights", text_weights)) if v}
        if text_weights and model_cfg.text_encoder == "minilm" and not is_minilm_weights(text_weights):
            raise CheckpointError(
                f"{path}: trained with the all-MiniLM-L6-v2 text encoder, and --text-weights {text_weights} is not its "
                "weights (a model.zip, its folder or model.safetensors): leave --text-weights out, or use a checkpoint "
                "trained with --text-encoder clip")
        model = build_model(dataclasses.replace(model_cfg, **overrides), data_cfg.image_size)
        check_encoders(payload, model.identity, path)
        load_decoder_state(model.decoder, payload["decoder"], path)
        logger.info("loaded %s (epoch %s, %s decoder) on %s", path, payload.get("epoch"), model_cfg.decoder, torch_device)
        return cls(model, data_cfg, torch_device, checkpoint=path, amp=train_cfg.amp if amp is None else amp)

    # ------------------------------------------------------------------------------ encoding

    @torch.inference_mode()
    def encode_images(self, images: Sequence[ImageInput], sources: Sequence[str] | None = None) -> list[EncodedImage]:
        """Encode a batch of images with one ViT forward (none without a ViT) and one pass of the decoder's pixel
        encoder (none without one); keeps each original size for upsampling."""
        rgbs = [to_rgb(img) for img in images]
        batch = torch.stack([image_tensor(rgb, self.image_size) for rgb in rgbs]).to(self.device)  # (B, 3, S, S)
        with autocast(self.device, self.dtype):
            visual, levels = self.model.encode_images(batch)  # (B, N, Dv) or None; L x (B, C_i, h_i, w_i) or None
        tokens = list(visual.float()) if visual is not None else [None] * len(rgbs)
        names = list(sources) if sources is not None else [_source_name(img, i) for i, img in enumerate(images)]
        return [
            EncodedImage(tokens=tokens[i], image=batch[i], size=rgb.shape[:2], source=names[i], rgb=rgb,
                         features=None if levels is None else [level[i] for level in levels])
            for i, rgb in enumerate(rgbs)
        ]

    def encode_image(self, image: ImageInput) -> EncodedImage:
        """Encode one image (for the playground: once per image, then any number of prompts)."""
        return self.encode_images([image])[0]

    @torch.inference_mode()
    def encode_prompts(self, prompts: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor, list[str]]]:
        """Text features (T, Dt), padding (T,) and token strings per prompt (T: the text encoder's context, 64 for
        MiniLM, 77 for CLIP); uncached prompts in one batch."""
        prompts = [check_prompt(p) for p in prompts]
        missing = [p for p in dict.fromkeys(prompts) if p not in self._prompts]
        if missing:
            with autocast(self.device, self.dtype):  # tokenizing warns and cuts a prompt past T tokens
                ids, features, padding = self.model.encode_prompts(missing, self.device)  # (M, T), (M, T, Dt), (M, T)
            features = features.float()
            for i, p in enumerate(missing):
                self._prompts[p] = (features[i], padding[i], self.text.token_strings(ids[i].tolist()))
        entries = []
        for p in prompts:
            self._prompts.move_to_end(p)
            entries.append(self._prompts[p])
        while len(self._prompts) > max(PROMPT_CACHE_SIZE, len(missing)):
            self._prompts.popitem(last=False)
        return entries

    def encode_prompt(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Text features (T, Dt), padding (T,) and token strings for one prompt; cached per prompt."""
        return self.encode_prompts([prompt])[0]

    @torch.inference_mode()
    def prompt_meanings(self, prompts: Sequence[str]) -> list[PromptMeaning]:
        """What the model takes each prompt to mean, from the prompt alone (no image): the prompt classifier's class
        and probabilities; for a model without the "none" output, the class its words name, as such models did."""
        unique = list(dict.fromkeys(check_prompt(p) for p in prompts))  # a prompt repeated per image is read once
        texts = self.encode_prompts(unique)
        head = getattr(getattr(self.decoder, "presence", None), "prompt", None)
        probs: list[dict[str, float]] = [{} for _ in texts]
        if head is not None:
            with autocast(self.device, self.dtype):
                embedding = self.decoder.text(torch.stack([t[0] for t in texts]), torch.stack([t[1] for t in texts]))
                logits = head(embedding).float()  # (U, K [+ 1])
            names = [*CLASSES, NONE][: logits.shape[1]]
            probs = [dict(zip(names, row)) for row in logits.softmax(1).cpu().tolist()]
        if self.model_cfg.none_class and head is not None:
            read = {p: PromptMeaning(max(q, key=q.get), q) for p, q in zip(unique, probs)}
        else:
            read = {p: PromptMeaning(prompt_class(p) or NONE, q, "words") for p, q in zip(unique, probs)}
        return [read[check_prompt(p)] for p in prompts]

    def prompt_meaning(self, prompt: str) -> PromptMeaning:
        """What the model takes one prompt to mean (prompt_meanings)."""
        return self.prompt_meanings([prompt])[0]

    def threshold(self, prompt: str, threshold: float | None = None) -> float:
        """`threshold` when given, else the default of the class the model takes the prompt to mean."""
        return threshold_for(prompt, threshold, self.prompt_meaning(prompt).cls if threshold is None else None)

    # ------------------------------------------------------------------------------ decoding

    @torch.inference_mode()
    def _forward(
        self, encoded: Sequence[EncodedImage], prompts: Sequence[str], return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Ungated pixel logits (B, 1, S, S), presence logits (B,) (None for a decoder without a gate) and attention."""
        texts = self.encode_prompts(prompts)
        visual = None if encoded[0].tokens is None else torch.stack([e.tokens for e in encoded])  # (B, 196, Dv)
        images = torch.stack([e.image for e in encoded])  # (B, 3, S, S)
        text = torch.stack([t[0] for t in texts])  # (B, T, Dt)
        padding = torch.stack([t[1] for t in texts])  # (B, T)
        features = None  # an image paired with several prompts is encoded once (encode_images)
        if all(e.features is not None for e in encoded):
            features = [torch.stack(level) for level in zip(*(e.features for e in encoded))]
        with autocast(self.device, self.dtype):
            out = self.model(images, text, padding, visual=visual, pixel_features=features)
        presence = out.presence.float() if out.presence is not None else None
        return out.pixel_logits.float(), presence, (out.attention if return_attention else None)

    @torch.inference_mode()
    def decode(
        self, encoded: Sequence[EncodedImage], prompts: Sequence[str], return_attention: bool = False
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Probabilities at each image's original size for (encoded[i], prompts[i]) pairs, in one decoder pass."""
        if len(encoded) != len(prompts):
            raise ValueError(f"{len(encoded)} encoded images but {len(prompts)} prompts")
        if not encoded:
            return [], ([] if return_attention else None)
        pixel, presence, attention = self._forward(encoded, prompts, return_attention)
        logits = pixel if presence is None else gate_logits(pixel, presence)  # (B, 1, S, S)
        probs = []
        for i, e in enumerate(encoded):
            up = F.interpolate(logits[i : i + 1], size=e.size, mode="bilinear", align_corners=False)  # (1, 1, H, W)
            probs.append(torch.sigmoid_(up)[0, 0].cpu().numpy())  # float32, as the logits
        attn = None if attention is None else [a.float().cpu().numpy() for a in attention]
        return probs, attn

    @torch.inference_mode()
    def tiled_probability(self, image: ImageInput, prompt: str, tiling: Tiling = Tiling(), progress: bool = False) -> np.ndarray:
        """Probability (H, W) of a photo at full size from overlapping tiles of `tiling.side(H, W)` photo pixels.

        The photo is shrunk once so a tile becomes one model input; tiles are decoded in batches and their
        pixel probabilities blended with weights that fall off towards tile edges (no seams), on a canvas at
        the shrunk size, which is upsampled once at the end: memory per tile is bounded whatever the photo.
        The presence gate comes from the whole photo at model size, as in training: a tile without a defect
        does not switch the photo's answer off, and a prompt for a class the photo does not show still
        gives an empty mask. A photo no larger than a tile is predicted whole.
        """
        rgb = to_rgb(image)
        height, width = rgb.shape[:2]
        whole = self.encode_images([rgb], [_source_name(image, 0)])
        tile = tiling.side(height, width)
        if max(height, width) <= tile:
            return self.decode(whole, [prompt])[0][0]
        _, presence, _ = self._forward(whole, [prompt])
        side = self.image_size
        scale = side / tile
        small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
        small = resize_rgb(rgb, (small_w, small_h))
        pad_h, pad_w = max(0, side - small_h), max(0, side - small_w)
        if pad_h or pad_w:  # a panorama thinner than a tile: mirror it out to one model input
            small = np.pad(small, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect" if min(small_h, small_w) > 1 else "edge")
        stride = max(1, round(side * (1 - tiling.overlap)))
        corners = [(y, x) for y in tile_starts(small.shape[0], side, stride) for x in tile_starts(small.shape[1], side, stride)]
        weight = torch.from_numpy(blend_window(side, tiling.overlap))  # (S, S)
        total = torch.zeros(small.shape[:2])
        norm = torch.zeros(small.shape[:2])
        batches = range(0, len(corners), tiling.batch_size)
        for start in progress_bar(batches, desc="tiles", unit="batch", disable=not progress or len(batches) < 2):
            chunk = corners[start : start + tiling.batch_size]
            tiles = [small[y : y + side, x : x + side] for y, x in chunk]
            pixel, _, _ = self._forward(self.encode_images(tiles), [prompt] * len(tiles))
            probs = torch.sigmoid(pixel[:, 0]).cpu()  # (b, S, S)
            for (y, x), p in zip(chunk, probs):
                total[y : y + side, x : x + side] += p * weight
                norm[y : y + side, x : x + side] += weight
        canvas = (total / norm)[:small_h, :small_w]
        up = F.interpolate(canvas[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
        if presence is not None:
            up = up * torch.sigmoid(presence[0]).cpu()
        return up.numpy().astype(np.float32, copy=False)

    def predict_encoded(
        self,
        encoded: EncodedImage | Sequence[EncodedImage],
        prompt: str | Sequence[str],
        threshold: float | None = None,
        return_attention: bool = False,
    ) -> Prediction | list[Prediction]:
        """Predict from already-encoded image(s); one Prediction for one image, a list for a sequence. `threshold`
        None: each prompt's default (textseg.prompts.threshold_for)."""
        single = isinstance(encoded, EncodedImage)
        items = [encoded] if single else list(encoded)
        prompts = _pair_prompts(prompt, len(items))
        tokens = [t[2] for t in self.encode_prompts(prompts)]
        meanings = self.prompt_meanings(prompts)
        thresholds = [threshold_for(p, threshold, m.cls) for p, m in zip(prompts, meanings)]
        probs, attention = self.decode(items, prompts, return_attention)
        preds = [
            Prediction(
                prob=p,
                mask=p > thresholds[i],
                prompt=check_prompt(prompts[i]),
                threshold=thresholds[i],
                attention=None if attention is None else attention[i],
                tokens=tokens[i],
                source=items[i].source,
                meaning=meanings[i],
            )
            for i, p in enumerate(probs)
        ]
        return preds[0] if single else preds

    def predict(
        self,
        images: Sequence[ImageInput] | ImageInput,
        prompts: str | Sequence[str],
        threshold: float | None = None,
        batch_size: int = 8,
        return_attention: bool = False,
        progress: bool = False,
        tiling: Tiling | None = None,
    ) -> list[Prediction]:
        """Segment images with one prompt for all, or one prompt per image; batched encode and decode. `threshold`
        None: each prompt's default (textseg.prompts.threshold_for: 0.5 for cracks, 0.3 for taping).

        With `tiling`, each photo is segmented at full resolution in overlapping tiles (see tiled_probability);
        attention maps are not available then.
        """
        if isinstance(images, (str, Path, np.ndarray)):
            images = [images]
        images = list(images)
        prompt_list = _pair_prompts(prompts, len(images))
        meanings = self.prompt_meanings(prompt_list)  # validates and caches every prompt before any image work
        thresholds = [threshold_for(p, threshold, m.cls) for p, m in zip(prompt_list, meanings)]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out: list[Prediction] = []
        if tiling is not None:
            if return_attention:
                raise ValueError("attention maps come from one model input; predict without tiling to get them")
            for i, image in enumerate(progress_bar(images, desc="predict", unit="photo", disable=not progress or len(images) < 2)):
                prob = self.tiled_probability(image, prompt_list[i], tiling, progress=progress)
                out.append(Prediction(prob=prob, mask=prob > thresholds[i], prompt=check_prompt(prompt_list[i]), threshold=thresholds[i],
                                      tokens=self.encode_prompt(prompt_list[i])[2], source=_source_name(image, i),
                                      meaning=meanings[i]))
            return out
        starts = range(0, len(images), batch_size)
        for start in progress_bar(starts, desc="predict", unit="batch", disable=not progress or len(starts) < 2):
            chunk = images[start : start + batch_size]
            sources = [_source_name(img, start + i) for i, img in enumerate(chunk)]
            encoded = self.encode_images(chunk, sources)
            out += self.predict_encoded(encoded, prompt_list[start : start + batch_size], threshold, return_attention)
        return out


def tile_starts(length: int, side: int, stride: int) -> list[int]:
    """Tile origins along one axis of `length` pixels: every `stride`, the last one flush with the end."""
    if length <= side:
        return [0]
    starts = list(range(0, length - side, stride))
    return starts + [length - side]


def blend_window(side: int, overlap: float) -> np.ndarray:
    """(side, side) weights for blending tiles: 1 in the middle, falling linearly to near 0 across the overlap
    margin at each edge, so where tiles meet each one fades out as its neighbour fades in."""
    margin = max(1.0, overlap * side / 2)
    pos = np.arange(side, dtype=np.float32) + 0.5
    ramp = np.clip(np.minimum(pos, side - pos) / margin, 1e-3, 1.0)  # never 0: a photo edge has one tile
    return np.outer(ramp, ramp).astype(np.float32)


def _source_name(image: ImageInput, index: int) -> str:
    """A file's path, or "array[i]" for an in-memory image."""
    return str(image) if isinstance(image, (str, Path)) else f"array[{index}]"


def _pair_prompts(prompts: str | Sequence[str], n: int) -> list[str]:
    """One prompt per image: a single string is repeated, a list must have one entry per image."""
    if isinstance(prompts, str):
        return [prompts] * n
    prompts = list(prompts)
    if len(prompts) != n:
        raise ValueError(f"{len(prompts)} prompts for {n} images; give one prompt, or one per image")
    return prompts
