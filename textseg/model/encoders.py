"""Frozen encoders: a timm ViT for image patch tokens, the OpenAI CLIP text tower for prompt tokens (the sentence
encoder, textseg.model.minilm, is the default text tower), and how either is chosen."""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import warnings
from pathlib import Path
from typing import Any, Iterator

import timm
import torch
import torch.nn.functional as F
from torch import nn

from textseg.config import ModelConfig
from textseg.files import file_hash

with warnings.catch_warnings():  # clip imports pkg_resources, which warns on every import
    warnings.simplefilter("ignore", UserWarning)
    import clip
    from clip.model import LayerNorm, Transformer

logger = logging.getLogger(__name__)

PRETRAINED = "pretrained"
RANDOM = "random"
CONTEXT_LENGTH = 77
PROBE_TIMEOUT_S = 3.0
HF_HOST = "huggingface.co"
CLIP_HOST = "openaipublic.azureedge.net"

# CLIP text towers by model name: (width, heads, layers, vocabulary size)
CLIP_TEXT_ARCH: dict[str, tuple[int, int, int, int]] = {
    "RN50": (512, 8, 12, 49408),
    "RN101": (512, 8, 12, 49408),
    "ViT-B/32": (512, 8, 12, 49408),
    "ViT-B/16": (512, 8, 12, 49408),
    "ViT-L/14": (768, 12, 12, 49408),
}


class WeightsUnavailableError(RuntimeError):
    """Pretrained encoder weights cannot be fetched; the message says how to give a file or choose random."""


def host_reachable(host: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if a TCP connection to host:443 opens within timeout seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's CPU RNG seeded, restoring the global RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Make huggingface_hub use its local cache only (no network, no retries) inside the block."""
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def resolve_weights(weights: str, flag: str) -> tuple[str, Path | None]:
    """Split a weights option into its kind ("pretrained", "random", "file") and the file path, if any."""
    if weights in (PRETRAINED, RANDOM):
        return weights, None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{flag} {weights!r}: no such file; give a weights file path, 'pretrained' or 'random'"
        )
    return "file", path


def _unavailable(what: str, flag: str, reason: str) -> WeightsUnavailableError:
    """The one-line error for pretrained weights that cannot be fetched."""
    return WeightsUnavailableError(
        f"pretrained weights for {what} are unavailable ({reason}); pass a local file with {flag} PATH "
        f"or choose {flag} random"
    )


def freeze(module: nn.Module) -> None:
    """Switch a module to eval mode and stop gradients to all its parameters."""
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)


class VisualEncoder(nn.Module):
    """A frozen timm ViT giving patch tokens (B, N, D * len(layers)) without CLS/prefix tokens."""

    def __init__(
        self,
        name: str = "vit_base_patch16_224",
        weights: str = RANDOM,
        layers: tuple[int, ...] = (-1,),
        seed: int = 0,
    ) -> None:
        super().__init__()
        kind, path = resolve_weights(weights, "--visual-weights")
        self.vit = self._create(name, kind, path, seed)
        depth = len(self.vit.blocks)
        self.layers = self._resolve_layers(tuple(layers), depth)
        self.embed_dim = int(self.vit.embed_dim)
        self.out_dim = self.embed_dim * len(self.layers)
        self.grid = int(self.vit.patch_embed.grid_size[0])
        self.image_size = int(self.vit.patch_embed.img_size[0])
        cfg = self.vit.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.identity: dict[str, Any] = {
            "name": name,
            "weights": path.name if path else kind,
            "sha256": file_hash(path) if path else None,
            "seed": seed if kind == RANDOM else None,
            "layers": list(self.layers),
        }
        freeze(self)

    @staticmethod
    def _resolve_layers(layers: tuple[int, ...], depth: int) -> tuple[int, ...]:
        """Turn block indices (negative from the end) into sorted, checked, non-negative indices."""
        if not layers:
            raise ValueError("visual layers: give at least one block index, e.g. (-1,)")
        resolved = [i + depth if i < 0 else i for i in layers]
        bad = [orig for orig, i in zip(layers, resolved) if not 0 <= i < depth]
        if bad:
            raise ValueError(f"visual layers {bad} out of range for a ViT with {depth} blocks (use 0..{depth - 1} or -1)")
        if len(set(resolved)) != len(resolved):
            raise ValueError(f"visual layers {list(layers)} name the same block twice")
        return tuple(sorted(resolved))

    @staticmethod
    def _create(name: str, kind: str, path: Path | None, seed: int) -> nn.Module:
        """Build the timm model with pretrained, file or seeded random weights."""
        if not timm.is_model(name.split(".")[0]):
            raise ValueError(f"visual model {name!r} is not a timm model name (e.g. vit_base_patch16_224)")
        if kind == PRETRAINED:
            return timm_pretrained(name)
        with seeded(seed):
            model = timm.create_model(name, pretrained=False)
        if path is not None:
            _load_timm_file(model, path)
        return model

    def train(self, mode: bool = True) -> "VisualEncoder":
        """Stay in eval mode: the encoder is frozen."""
        return super().train(False)

    def fit(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, S, S) of any side resized to the ViT's input side (antialiased when shrinking): a model
        whose pixel branch sees more pixels still gets the ViT's tokens of the whole image."""
        if images.dim() == 4 and images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images.float(), size=(self.image_size,) * 2, mode="bilinear", align_corners=False,
                                   antialias=images.shape[-1] > self.image_size)
        return images

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Patch tokens of images (B, 3, S, S) in [0, 1] -> (B, grid*grid, out_dim); other sides go through fit()."""
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"visual encoder expects images (B, 3, {self.image_size}, {self.image_size}), got {tuple(images.shape)}"
            )
        x = (images.float() - self.mean) / self.std
        vit = self.vit
        x = vit.patch_embed(x)
        x = vit._pos_embed(x)
        x = vit.patch_drop(x)
        x = vit.norm_pre(x)  # (B, prefix + 196, D)
        last = len(vit.blocks) - 1
        outputs = []
        for index, block in enumerate(vit.blocks[: self.layers[-1] + 1]):
            x = block(x)
            if index in self.layers:
                outputs.append(vit.norm(x) if index == last else x)
        prefix = int(getattr(vit, "num_prefix_tokens", 1))
        return torch.cat(outputs, dim=-1)[:, prefix:]  # (B, 196, D * len(layers))


def timm_pretrained(name: str, flag: str = "--visual-weights", **kwargs: Any) -> nn.Module:
    """timm.create_model(pretrained=True, **kwargs): local cache first, then the hub if it answers quickly."""
    try:
        with hub_offline():
            return timm.create_model(name, pretrained=True, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        logger.debug("no cached pretrained weights for %s: %s", name, exc)
    if not host_reachable(HF_HOST):
        raise _unavailable(f"timm {name}", flag, f"{HF_HOST} is not reachable")
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        raise _unavailable(f"timm {name}", flag, str(exc).splitlines()[0]) from exc


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A tensor state dict from .safetensors or a torch file (optionally nested under 'state_dict'/'model')."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable torch state dict ({exc}); give a .pth/.pt/.safetensors file") from exc
    if isinstance(data, dict):
        for key in ("state_dict", "model"):
            if isinstance(data.get(key), dict):
                data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return data


def _load_timm_file(model: nn.Module, path: Path) -> None:
    """Load a timm state dict into model; only classifier head keys may be missing or extra."""
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("head.")}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    resized = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    if missing or unexpected or resized:
        raise ValueError(
            f"{path}: weights do not fit timm model {model.default_cfg.get('architecture', '')} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, other shapes {sorted(resized)[:3]}); "
            "is it a state dict of the model named by --visual-model?"
        )
    model.load_state_dict(state, strict=False)


class TextEncoder(nn.Module):
    """The frozen CLIP text tower: token features after ln_final (B, 77, width) and a padding mask."""

    def __init__(self, name: str = "ViT-B/32", weights: str = RANDOM, seed: int = 0) -> None:
        super().__init__()
        kind, path = resolve_weights(weights, "--text-weights")
        if kind == RANDOM:
            self._build_random(name, seed)
        else:
            self._take_text_tower(_clip_load(name, path))
        self.out_dim = int(self.ln_final.weight.shape[0])
        self.identity: dict[str, Any] = {
            "name": name,
            "weights": path.name if path else kind,
            "sha256": file_hash(path) if path else None,
            "seed": seed if kind == RANDOM else None,
            "layers": None,
        }
        freeze(self)

    def _build_random(self, name: str, seed: int) -> None:
        """The text tower of a named CLIP model, initialised as CLIP does, from a fixed seed."""
        if name not in CLIP_TEXT_ARCH:
            raise ValueError(f"text model {name!r} unknown; choose one of {sorted(CLIP_TEXT_ARCH)}")
        width, heads, depth, vocab = CLIP_TEXT_ARCH[name]
        with seeded(seed):
            self.token_embedding = nn.Embedding(vocab, width)
            self.positional_embedding = nn.Parameter(torch.empty(CONTEXT_LENGTH, width))
            self.transformer = Transformer(width, depth, heads, attn_mask=self._causal_mask())
            self.ln_final = LayerNorm(width)
            nn.init.normal_(self.token_embedding.weight, std=0.02)
            nn.init.normal_(self.positional_embedding, std=0.01)
            proj_std = (width**-0.5) * ((2 * depth) ** -0.5)
            attn_std = width**-0.5
            fc_std = (2 * width) ** -0.5
            for block in self.transformer.resblocks:
                nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
                nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
                nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
                nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

    @staticmethod
    def _causal_mask() -> torch.Tensor:
        """CLIP's additive causal attention mask (77, 77)."""
        return torch.full((CONTEXT_LENGTH, CONTEXT_LENGTH), float("-inf")).triu_(1)

    def _take_text_tower(self, model: nn.Module) -> None:
        """Keep the text parts of a loaded CLIP model, dropping the visual tower."""
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        del model.visual

    def train(self, mode: bool = True) -> "TextEncoder":
        """Stay in eval mode: the encoder is frozen."""
        return super().train(False)

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        """CLIP token ids (B, 77); empty prompts raise ValueError, overlong ones are truncated with a warning."""
        if isinstance(prompts, str):
            prompts = [prompts]
        for index, prompt in enumerate(prompts):
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f"empty prompt at position {index} ({prompt!r}); give a text such as 'segment crack'")
            try:
                clip.tokenize(prompt)
            except RuntimeError:
                warnings.warn(
                    f"prompt {prompt[:40]!r}... is longer than CLIP's {CONTEXT_LENGTH} tokens; truncated",
                    UserWarning,
                    stacklevel=2,
                )
        return clip.tokenize([p.strip() for p in prompts], context_length=CONTEXT_LENGTH, truncate=True).long()

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, 77) -> (features (B, 77, width) after ln_final, padding (B, 77) True after end-of-text)."""
        tokens = tokens.long()
        x = self.token_embedding(tokens) + self.positional_embedding  # (B, 77, W)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # CLIP's blocks are sequence-first
        x = self.ln_final(x)  # (B, 77, W)
        eot = tokens.argmax(dim=-1, keepdim=True)  # the end-of-text token has the highest id
        positions = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        return x.float(), positions > eot

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize and encode prompts -> (features (B, 77, width), padding (B, 77))."""
        device = self.positional_embedding.device
        return self(self.tokenize(prompts).to(device))

    @staticmethod
    def token_strings(ids: list[int]) -> list[str]:
        """Readable CLIP tokens for ids up to and including end-of-text ("<start>", "segment", "crack", "<end>")."""
        tok = _clip_tokenizer()
        start, end = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
        words = []
        for i in map(int, ids):
            if i == start:
                words.append(START)
            elif i == end:
                words.append(END)
                break
            elif i == 0:
                break
            else:
                raw = bytearray(tok.byte_decoder[c] for c in tok.decoder[i]).decode("utf-8", errors="replace")
                words.append(raw.replace("</w>", ""))
        return words


START, END = "<start>", "<end>"
"""How TextEncoder.token_strings names CLIP's start-of-text and end-of-text markers."""
CLS, SEP = "[CLS]", "[SEP]"
"""BERT's start and end markers, as the sentence encoder's tokens name them (textseg.model.minilm)."""
MARKERS: frozenset[str] = frozenset({START, END, CLS, SEP})
"""Tokens that mark a prompt's start and end (CLIP's, BERT's) rather than one of its words."""


def word_indices(tokens: list[str]) -> list[int]:
    """Positions of the prompt's words among token strings: every token but the start and end markers."""
    return [i for i, t in enumerate(tokens) if t not in MARKERS]


@functools.cache
def _clip_tokenizer():
    """CLIP's BPE tokenizer (loaded once), used to label attention columns with words."""
    from clip.simple_tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def _clip_load(name: str, path: Path | None) -> nn.Module:
    """A CLIP model on CPU from a local file (JIT archive or state dict) or clip.load's official download."""
    if path is not None:
        try:  # OpenAI's files are TorchScript archives; others are plain state dicts
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        except RuntimeError:
            state = read_state_dict(path)
        try:
            return clip.model.build_model(dict(state)).float()
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ValueError(
                f"{path}: not a CLIP model file ({str(exc).splitlines()[0]}); give OpenAI's .pt or a CLIP state dict"
            ) from exc
    if name not in clip.available_models():
        raise ValueError(f"text model {name!r} unknown; choose one of {clip.available_models()}")
    cached = Path("~/.cache/clip").expanduser() / Path(clip.clip._MODELS[name]).name
    if not cached.is_file() and not host_reachable(CLIP_HOST):
        raise _unavailable(f"CLIP {name}", "--text-weights", f"{CLIP_HOST} is not reachable")
    try:
        model, _ = clip.load(name, device="cpu", jit=False)
    except (OSError, RuntimeError) as exc:
        raise _unavailable(f"CLIP {name}", "--text-weights", str(exc).splitlines()[0]) from exc
    return model.float()


def build_text_encoder(cfg: ModelConfig) -> nn.Module:
    """The frozen text tower named by cfg.text_encoder: the sentence encoder (minilm) or CLIP's."""
    if cfg.text_encoder == "clip":
        return TextEncoder(cfg.text_model, cfg.text_weights, cfg.init_seed)
    from textseg.model.minilm import SentenceEncoder  # transformers is imported only where this encoder is built

    return SentenceEncoder(cfg.text_weights, cfg.init_seed)


def build_encoders(cfg: ModelConfig) -> tuple[VisualEncoder | None, nn.Module]:
    """The frozen visual and text encoders named by a model config; no ViT (None) when queries resolve to "pixel"."""
    visual = VisualEncoder(cfg.visual_model, cfg.visual_weights, tuple(cfg.visual_layers), cfg.init_seed) if cfg.uses_vit else None
    return visual, build_text_encoder(cfg)


def visual_dim(visual: VisualEncoder | None) -> int:
    """Width of the visual tokens the decoder takes (0 without a ViT)."""
    return 0 if visual is None else visual.out_dim


def encoder_identity(visual: VisualEncoder | None, text: nn.Module, pixel: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint records about its encoders (and the pixel encoder's initial weights), so others are refused."""
    identity: dict[str, Any] = {"visual": dict(visual.identity) if visual is not None else None, "text": dict(text.identity)}
    if pixel is not None:
        identity["pixel"] = dict(pixel)
    return identity
