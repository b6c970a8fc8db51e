"""Feature cache: the frozen encoders' outputs, computed once and reused every epoch.

Visual tokens are keyed by (visual encoder identity, autocast dtype, sha1 of the image file's bytes,
model size, flip), text tokens by (text encoder identity, autocast dtype, prompt), so a changed image,
other encoder weights or another precision never reuse stale features. Tokens are stored as float16: in memory (default), or as one file per entry
under a directory (`RUN/cache/`), which later runs with the same encoders reuse. Mode "none" runs
the encoders on every call (the seed's behaviour), through the same interface.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn
import torch.distributed as dist

from textseg import MODEL_SIZE
from textseg.config import CACHE_MODES
from textseg.files import atomic_path, file_hash
from textseg.engine.runtime import autocast
from textseg.progress import progress_bar

logger = logging.getLogger(__name__)
STORE_DTYPE = torch.float16


def identity_hash(identity: dict[str, Any]) -> str:
    """Stable sha1 of an encoder identity dict (name, weights, file hash or random seed)."""
    return hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


class FeatureCache:
    """Visual tokens per (image content, flip) and text tokens per prompt, for one pair of frozen encoders."""

    def __init__(
        self,
        visual: nn.Module | None,
        text: nn.Module,
        mode: str = "memory",
        directory: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        image_size: int = MODEL_SIZE,
        amp_dtype: torch.dtype | None = None,
    ):
        if mode not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {mode!r}; use one of {list(CACHE_MODES)}")
        if mode == "disk" and directory is None:
            raise ValueError("cache mode 'disk' needs a directory (e.g. RUN/cache)")
        self.visual, self.text, self.mode = visual, text, mode
        self.device = torch.device(device)
        self.batch_size, self.image_size, self.amp_dtype = batch_size, image_size, amp_dtype
        self.visual_id = identity_hash(visual.identity) if visual is not None else ""
        self.text_id = identity_hash(text.identity)
        self.stats = {"visual_hits": 0, "visual_misses": 0, "text_hits": 0, "text_misses": 0}
        self._visual: dict[str, torch.Tensor] = {}  # key -> (196, D) float16 on device (memory mode)
        self._text: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # prompt key -> ((T, Dt) float16, (T,) bool)
        self._sha1: dict[str, str] = {}
        self.directory = Path(directory) if directory is not None else None
        if mode == "disk":
            self._visual_dir.mkdir(parents=True, exist_ok=True)
            self._text_dir.mkdir(parents=True, exist_ok=True)

    @property
    def _visual_dir(self) -> Path:
        return self.directory / f"visual-{self.visual_id[:16]}"  # type: ignore[operator]

    @property
    def _text_dir(self) -> Path:
        return self.directory / f"text-{self.text_id[:16]}"  # type: ignore[operator]

    def __len__(self) -> int:
        """Visual entries held (memory) or stored for these encoders (disk)."""
        if self.mode == "disk":
            return sum(1 for _ in self._visual_dir.glob("*.pt"))
        return len(self._visual)

    # ---- keys -------------------------------------------------------------------------------
    def content_hash(self, path: str | Path) -> str:
        """sha1 of an image file's bytes, computed once per path per cache."""
        key = str(path)
        if key not in self._sha1:
            self._sha1[key] = file_hash(path, "sha1")
        return self._sha1[key]

    def visual_key(self, path: str | Path, flip: int) -> str:
        """Cache key of one image file at one flip state for this visual encoder at this precision."""
        return hashlib.sha1(f"{self.visual_id}|{self.amp_dtype}|{self.content_hash(path)}|{self.image_size}|{int(flip)}".encode()).hexdigest()

    def text_key(self, prompt: str) -> str:
        """Cache key of one prompt for this text encoder at this precision."""
        return hashlib.sha1(f"{self.text_id}|{self.amp_dtype}|{prompt}".encode()).hexdigest()

    # ---- storage ----------------------------------------------------------------------------
    def _get_visual(self, key: str) -> torch.Tensor | None:
        if self.mode == "memory":
            return self._visual.get(key)
        path = self._visual_dir / f"{key}.pt"
        return torch.load(path, map_location=self.device, weights_only=True) if path.is_file() else None

    def _put_visual(self, key: str, tokens: torch.Tensor) -> None:
        tokens = tokens.to(STORE_DTYPE).contiguous()
        if self.mode == "memory":
            self._visual[key] = tokens
            return
        with atomic_path(self._visual_dir / f"{key}.pt") as tmp:
            torch.save(tokens.cpu().clone(), tmp)

    def _get_text(self, key: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        if key in self._text or self.mode != "disk":
            return self._text.get(key)
        path = self._text_dir / f"{key}.pt"
        if not path.is_file():
            return None
        data = torch.load(path, map_location=self.device, weights_only=True)
        self._text[key] = (data["features"], data["padding"])
        return self._text[key]

    def _put_text(self, key: str, features: torch.Tensor, padding: torch.Tensor) -> None:
        self._text[key] = (features.to(STORE_DTYPE), padding)
        if self.mode == "disk":
            with atomic_path(self._text_dir / f"{key}.pt") as tmp:
                torch.save({"features": features.to(STORE_DTYPE).cpu().clone(), "padding": padding.cpu().clone()}, tmp)

    # ---- encoders ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        with torch.no_grad(), autocast(self.device, self.amp_dtype):
            yield

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.visual(self.visual.fit(images.to(self.device, non_blocking=True))).float()  # (B, 196, Dv)

    def _encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            tokens = self.text.tokenize(prompts).to(self.device)
            features, padding = self.text(tokens)  # (B, T, Dt), (B, T)
        return features.float(), padding.to(self.device)

    # ---- lookups ----------------------------------------------------------------------------
    def visual_tokens(self, images: torch.Tensor, paths: Sequence[str], flips: Sequence[int]) -> torch.Tensor | None:
        """Visual tokens (B, 196, Dv) float32 of a batch of model-size images (already flipped as `flips` says);
        None when there is no visual encoder (the decoder's pixel encoder queries the text)."""
        if self.visual is None:
            return None
        if self.mode == "none":
            self.stats["visual_misses"] += len(paths)
            return self._encode_images(images)
        keys = [self.visual_key(p, f) for p, f in zip(paths, flips)]
        found = [self._get_visual(k) for k in keys]
        missing = [i for i, t in enumerate(found) if t is None]
        self.stats["visual_hits"] += len(keys) - len(missing)
        self.stats["visual_misses"] += len(missing)
        if missing:
            computed = self._encode_images(images[missing])
            for i, tokens in zip(missing, computed):
                self._put_visual(keys[i], tokens)
                found[i] = tokens.to(STORE_DTYPE)
        return torch.stack([t.to(self.device) for t in found]).float()  # type: ignore[union-attr]

    def text_tokens(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Text features (B, T, Dt) float32 and padding mask (B, T) bool for a list of prompts."""
        prompts = list(prompts)
        if self.mode == "none":
            self.stats["text_misses"] += len(prompts)
            return self._encode_prompts(prompts)
        keys = [self.text_key(p) for p in prompts]
        found = {k: self._get_text(k) for k in dict.fromkeys(keys)}
        new = [prompt for key, prompt in dict(zip(keys, prompts)).items() if found[key] is None]
        hits = sum(found[k] is not None for k in keys)
        self.stats["text_hits"] += hits
        self.stats["text_misses"] += len(keys) - hits
        if new:
            features, padding = self._encode_prompts(new)
            for prompt, f, m in zip(new, features, padding):
                key = self.text_key(prompt)
                self._put_text(key, f, m)
                found[key] = self._text[key]
        features = torch.stack([found[k][0] for k in keys]).float()  # type: ignore[index]
        padding = torch.stack([found[k][1] for k in keys])  # type: ignore[index]
        return features.to(self.device), padding.to(self.device)

    # ---- precomputation ---------------------------------------------------------------------
    def precompute_text(self, prompts: Sequence[str]) -> int:
        """Encode every prompt not yet cached, in one batch; returns how many were computed."""
        if self.mode == "none":
            return 0
        missing = list(dict.fromkeys(p for p in prompts if self._get_text(self.text_key(p)) is None))
        if missing:
            features, padding = self._encode_prompts(missing)
            for prompt, f, m in zip(missing, features, padding):
                self._put_text(self.text_key(prompt), f, m)
        self.stats["text_misses"] += len(missing)
        return len(missing)

    def precompute_visual(self, dataset: torch.utils.data.Dataset, flips: Sequence[int] = (0, 1), desc: str = "caching features") -> list[str]:
        """Encode every (image, flip) of an unflipped dataset not yet cached, in batches; returns the keys.

        `dataset` yields dicts with "image" (3, S, S) unflipped and "path"; flip 1 is the horizontal
        mirror (torch.flip on the last dim), as textseg.data.datasets.SegDataset applies it.
        """
        if self.mode == "none" or self.visual is None:
            return []
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=False, num_workers=0)
        keys: list[str] = []
        with progress_bar(total=len(dataset) * len(flips), desc=desc, unit="img", leave=False) as bar:  # type: ignore[arg-type]
            for batch in loader:
                for flip in flips:
                    batch_keys = [self.visual_key(p, flip) for p in batch["path"]]
                    missing = [i for i, k in enumerate(batch_keys) if self._get_visual(k) is None]
                    if missing:
                        images = batch["image"][missing]  # (M, 3, S, S)
                        tokens = self._encode_images(images.flip(-1) if flip else images)
                        for i, t in zip(missing, tokens):
                            self._put_visual(batch_keys[i], t)
                    self.stats["visual_misses"] += len(missing)
                    keys += batch_keys
                    bar.update(len(batch_keys))
        return keys

    def share(self, keys: list[str]) -> None:
        """DDP: exchange the entries each rank computed (`keys`) so every rank holds them all (memory mode)."""
        if self.mode != "memory" or not dist.is_initialized() or dist.get_world_size() == 1:
            return
        world = dist.get_world_size()
        all_keys: list[list[str]] = [[] for _ in range(world)]
        dist.all_gather_object(all_keys, keys)
        if not any(all_keys):
            return
        shape = torch.tensor(list(self._visual[keys[0]].shape) if keys else [0, 0], device=self.device)
        dist.all_reduce(shape, op=dist.ReduceOp.MAX)  # (196, D) from any rank that has entries
        longest = max(len(k) for k in all_keys)
        local = torch.zeros(longest, int(shape[0]), int(shape[1]), dtype=STORE_DTYPE, device=self.device)
        for i, k in enumerate(keys):
            local[i] = self._visual[k]
        gathered = [torch.empty_like(local.view(torch.uint8)) for _ in range(world)]
        dist.all_gather(gathered, local.view(torch.uint8))  # bytes: every backend carries uint8
        for rank_keys, block in zip(all_keys, gathered):
            tokens = block.view(STORE_DTYPE)
            for i, k in enumerate(rank_keys):
                self._visual.setdefault(k, tokens[i].clone())
