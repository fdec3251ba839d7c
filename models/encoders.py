"""Frozen image encoders that turn images into grid features for VL-T5.

    tiny-clip     a randomly initialised 2-layer CLIP vision transformer (seeded, no files): tests and
                  offline runs; 32×32 images, a 4×4 grid of 64-d features
    clip-rn101    VL-Adapter's setting: CLIP ResNet-101's last feature map (2048-d) of a 224×224 image
                  (bicubic, ``feature_extraction/coco_CLIP.py:39-45``), 7×7 cells (its ``att_size`` 7,
                  :197) max-pooled to 6×6 = 36 "boxes" as their model's ``Downsample`` does
                  (``nn.AdaptiveMaxPool2d``, ``VL-T5/src/modeling_bart.py:413-437``; timm's port of OpenAI's weights)
    ID[@REV]      any Hugging Face CLIP vision model by hub id: its patch tokens, max-pooled to 6×6 the same way
    clip-vit      VL-Adapter's video setting (``--feature ViT --n_boxes 64``): one 512-d CLIP ViT feature per
                  frame (``args.feat_dim = 512``, ``VL-T5/src/multitask_video.py:646``), a clip's frames brought to
                  64 tokens (``resize``, ``src/video/tvqa_data.py:34-44``); tiny-clip-vit its offline stand-in

The pooling is done once, at extraction: the model's pool of frozen features gives the same numbers.

An encoder's ``preprocessing`` string (size, normalisation, pooling) is part of the feature cache's
key: features computed another way are another entry. The encoders never train.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TINY_CLIP = "tiny-clip"
CLIP_RN101 = "clip-rn101"
# timm's port of OpenAI's CLIP RN101 weights, at the commit that added them ("Add model", c7338ce on the hub's
# history page). The hub takes a full commit hash as revision: write the full one here before a hub run.
CLIP_RN101_HUB = "timm/resnet101_clip.openai"
CLIP_RN101_REVISION = "c7338ce"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's normalisation (VL-Adapter's clip_prepro_feats.py)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
GRID = 6  # VL-Adapter: 36 boxes, a 6×6 grid
CLIP_RN101_SIZE = 224  # VL-Adapter's --image_size "(224,224)" in every image script
# The video encoders' specs only (named with helper V1, who adds the encoders themselves): a clip is one
# "image" of VIDEO_TOKENS frame cells.
CLIP_VIT = "clip-vit"
TINY_CLIP_VIT = "tiny-clip-vit"
VIDEO_TOKENS = 64  # --n_boxes 64 in every video script


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder makes, known without its weights: feature size, cells per image, and how images
    are prepared (the cache key's ``preprocessing``)."""

    name: str
    feat_dim: int
    cells: int
    image_size: int
    grid: int | None  # pool the feature map to grid × grid cells; None: keep the encoder's own

    @property
    def preprocessing(self) -> str:
        pool = f"adaptive-max-{self.grid}x{self.grid}" if self.grid else "none"
        return f"rgb-bicubic-{self.image_size}px-clip-norm-pool-{pool}"


def tiny_clip_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                            image_size=32, patch_size=8, num_channels=3)


def spec(name: str) -> EncoderSpec:
    """The encoder ``name``'s spec; a hub id reads its ``config.json`` (from the local cache offline)."""
    if name == TINY_CLIP:
        cfg = tiny_clip_config()
        side = cfg.image_size // cfg.patch_size
        return EncoderSpec(name, cfg.hidden_size, side * side, cfg.image_size, None)
    if name == CLIP_RN101:
        return EncoderSpec(name, 2048, GRID * GRID, CLIP_RN101_SIZE, GRID)
    if name == CLIP_VIT:
        return EncoderSpec(name, 512, VIDEO_TOKENS, CLIP_RN101_SIZE, None)
    if name == TINY_CLIP_VIT:
        return EncoderSpec(name, tiny_clip_config().hidden_size, VIDEO_TOKENS, tiny_clip_config().image_size, None)
    from transformers import AutoConfig

    repo, _, revision = name.partition("@")
    cfg = AutoConfig.from_pretrained(repo, revision=revision or None)
    cfg = getattr(cfg, "vision_config", cfg)
    return EncoderSpec(name, cfg.hidden_size, GRID * GRID, cfg.image_size, GRID)


def check_encoder(name: str) -> str | None:
    """Why ``name`` is no image encoder (None: it is one, as far as can be told offline)."""
    if name in (TINY_CLIP, CLIP_RN101, CLIP_VIT, TINY_CLIP_VIT):
        return None
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name.partition("@")[0])
    except HFValidationError:
        return f"{name!r} is no image encoder (tiny-clip, clip-rn101 or a hub id of a CLIP model)"
    return None


@functools.lru_cache(maxsize=2)
def load_encoder(name: str) -> tuple[torch.nn.Module, str]:
    """The frozen encoder (eval mode) and where its weights came from, for the cache key."""
    if name == TINY_CLIP:
        from transformers import CLIPVisionModel

        with torch.random.fork_rng():  # fixed weights, whatever the trial's seed
            torch.manual_seed(0)
            model = CLIPVisionModel(tiny_clip_config())
        return model.eval().requires_grad_(False), "config:tiny-clip@seed0"
    if name == CLIP_RN101:
        import timm  # optional: pip install timm

        model = timm.create_model(f"hf-hub:{CLIP_RN101_HUB}@{CLIP_RN101_REVISION}", pretrained=True)
        return model.eval().requires_grad_(False), f"hub:{CLIP_RN101_HUB}@{CLIP_RN101_REVISION}"
    from transformers import CLIPVisionModel

    repo, _, revision = name.partition("@")
    model = CLIPVisionModel.from_pretrained(repo, revision=revision or None, dtype=torch.float32)
    return model.eval().requires_grad_(False), f"hub:{repo}@{revision or 'main'}"


def pixels(images: list[bytes], size: int) -> torch.Tensor:
    """Encoded images (PNG, JPEG, …) as a CLIP-normalised batch (N, 3, size, size)."""
    from PIL import Image

    out = []
    for data in images:
        img = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        out.append(torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3))
    x = torch.stack(out).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]


@torch.no_grad()
def encode(name: str, images: list[bytes], *, device: str | torch.device = "cpu") -> torch.Tensor:
    """Grid features (N, cells, feat_dim) of encoded images, in float32."""
    s = spec(name)
    model, _ = load_encoder(name)
    model.to(device)
    x = pixels(images, s.image_size).to(device)
    if name == CLIP_RN101:
        grid = model.forward_features(x)  # (N, 2048, 7, 7) at 224 px: the last stage, before the attention pool
    else:
        tokens = model(pixel_values=x).last_hidden_state[:, 1:]  # patch tokens, the class token dropped
        side = int(tokens.shape[1] ** 0.5)
        grid = tokens.transpose(1, 2).reshape(len(x), -1, side, side)
    if s.grid:
        grid = F.adaptive_max_pool2d(grid, s.grid)
    return grid.flatten(2).transpose(1, 2).float().cpu().contiguous()
