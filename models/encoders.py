"""Frozen image encoders that turn images into grid features for VL-T5.

    tiny-clip     a randomly initialised 2-layer CLIP vision transformer (seeded, no files): tests and
                  offline runs; 32×32 images, a 4×4 grid of 64-d features
    clip-rn101    VL-Adapter's setting: CLIP ResNet-101's last feature map (2048-d) of a 224×224 image
                  (bicubic, ``feature_extraction/coco_CLIP.py:39-45``), 7×7 cells (its ``att_size`` 7,
                  :197) max-pooled to 6×6 = 36 "boxes" as their model's ``Downsample`` does
                  (``nn.AdaptiveMaxPool2d``, ``VL-T5/src/modeling_bart.py:413-437``; timm's port of OpenAI's weights)
    ID[@REV]      any Hugging Face CLIP vision model by hub id: its patch tokens, max-pooled to 6×6 the same way

Video encoders read a clip (an animated image's bytes, a video file's with PyAV installed, or VALUE's ``.npz`` of
per-frame features) as one "image" of ``cells`` tokens, so a clip is cached, keyed and checked as a picture is
(models/features.py):

    tiny-clip-vit a randomly initialised 2-layer CLIP ViT with a 64-d projection (seeded, no files): tests
                  and offline runs on 32×32 frames
    clip-vit      VL-Adapter's video features (``--feature ViT``, ``feat_dim`` 512, multitask_video.py:646):
                  VALUE's CLIP-ViT features, OpenAI's ViT-B/32 image embedding (``encode_image``, 512-d) of
                  one frame every 1.5 s, 224 px centre crop (HERO_Video_Feature_Extractor's clip/extract.py)

Both end as VL-Adapter's 64 visual tokens (``--n_boxes 64``): ``to_tokens`` is their data loaders'
``resize`` (tvqa_data.py:34-44): fewer frames are padded with zero rows, more are max-pooled over time.

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

from peftbench.models.names import CLIP_RN101, CLIP_VIT, TINY_CLIP, TINY_CLIP_VIT, VIDEO_ENCODERS

# timm's port of OpenAI's CLIP RN101 weights, at the commit that added them ("Add model", c7338ce on the hub's
# history page). The hub takes a full commit hash as revision: write the full one here before a hub run.
CLIP_RN101_HUB = "timm/resnet101_clip.openai"
CLIP_RN101_REVISION = "c7338ce"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's normalisation (VL-Adapter's clip_prepro_feats.py)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
GRID = 6  # VL-Adapter: 36 boxes, a 6×6 grid
CLIP_RN101_SIZE = 224  # VL-Adapter's --image_size "(224,224)" in every image script
# The hub's port of OpenAI's ViT-B/32; the commit other projects pin for it (not checked offline here).
CLIP_VIT_HUB = "openai/clip-vit-base-patch32"
CLIP_VIT_REVISION = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"
VIDEO_TOKENS = 64  # VL-Adapter's video scripts: --n_boxes 64
FRAME_INTERVAL = 1.5  # seconds between sampled frames: VALUE's features, one every 1.5 s


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder makes, known without its weights: feature size, cells per image, and how images
    are prepared (the cache key's ``preprocessing``)."""

    name: str
    feat_dim: int
    cells: int
    image_size: int
    grid: int | None  # pool the feature map to grid × grid cells; None: keep the encoder's own
    frame_interval: float | None = None  # a video encoder: seconds between sampled frames, ``cells`` tokens

    @property
    def preprocessing(self) -> str:
        if self.frame_interval:
            return (f"frames-every-{self.frame_interval}s-rgb-bicubic-{self.image_size}px-centre-crop-clip-norm-"
                    f"image-embedding-zero-pad-or-adaptive-max-{self.cells}")
        pool = f"adaptive-max-{self.grid}x{self.grid}" if self.grid else "none"
        return f"rgb-bicubic-{self.image_size}px-clip-norm-pool-{pool}"


def tiny_clip_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                            image_size=32, patch_size=8, num_channels=3)


def tiny_clip_vit_config():
    """tiny-clip's vision transformer with a 64-d image-embedding projection (CLIP's ``visual_projection``)."""
    cfg = tiny_clip_config()
    cfg.projection_dim = 64
    return cfg


def spec(name: str) -> EncoderSpec:
    """The encoder ``name``'s spec; a hub id reads its ``config.json`` (from the local cache offline)."""
    if name == TINY_CLIP:
        cfg = tiny_clip_config()
        side = cfg.image_size // cfg.patch_size
        return EncoderSpec(name, cfg.hidden_size, side * side, cfg.image_size, None)
    if name == CLIP_RN101:
        return EncoderSpec(name, 2048, GRID * GRID, CLIP_RN101_SIZE, GRID)
    if name == TINY_CLIP_VIT:
        cfg = tiny_clip_vit_config()
        return EncoderSpec(name, cfg.projection_dim, VIDEO_TOKENS, cfg.image_size, None, FRAME_INTERVAL)
    if name == CLIP_VIT:
        return EncoderSpec(name, 512, VIDEO_TOKENS, 224, None, FRAME_INTERVAL)
    from transformers import AutoConfig

    repo, _, revision = name.partition("@")
    cfg = AutoConfig.from_pretrained(repo, revision=revision or None)
    cfg = getattr(cfg, "vision_config", cfg)
    return EncoderSpec(name, cfg.hidden_size, GRID * GRID, cfg.image_size, GRID)


def seeded(build) -> torch.nn.Module:
    """A tiny encoder ``build()`` makes from its config: weights from seed 0 whatever the trial's seed, frozen."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build()
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=2)
def load_encoder(name: str) -> tuple[torch.nn.Module, str]:
    """The frozen encoder (eval mode) and where its weights came from, for the cache key."""
    if name == TINY_CLIP:
        from transformers import CLIPVisionModel

        return seeded(lambda: CLIPVisionModel(tiny_clip_config())), "config:tiny-clip@seed0"
    if name == CLIP_RN101:
        import timm  # optional: pip install timm

        model = timm.create_model(f"hf-hub:{CLIP_RN101_HUB}@{CLIP_RN101_REVISION}", pretrained=True)
        return model.eval().requires_grad_(False), f"hub:{CLIP_RN101_HUB}@{CLIP_RN101_REVISION}"
    if name in VIDEO_ENCODERS:
        return load_video_encoder(name)
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
    if s.frame_interval:
        return clip_tokens(name, images, device=device)
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


def load_video_encoder(name: str) -> tuple[torch.nn.Module, str]:
    """A frozen CLIP vision tower with its projection (the image embedding ``encode_image`` gives), and its source."""
    from transformers import CLIPVisionModelWithProjection

    if name == TINY_CLIP_VIT:
        return seeded(lambda: CLIPVisionModelWithProjection(tiny_clip_vit_config())), "config:tiny-clip-vit@seed0"
    model = CLIPVisionModelWithProjection.from_pretrained(CLIP_VIT_HUB, revision=CLIP_VIT_REVISION, dtype=torch.float32)
    return model.eval().requires_grad_(False), f"hub:{CLIP_VIT_HUB}@{CLIP_VIT_REVISION}"


def sampled_frames(data: bytes, interval: float) -> list:
    """The frames of a clip shown at 0, ``interval``, 2·``interval``, … seconds of its duration, as RGB pictures:
    a fixed frame rate whatever the clip's own (VALUE's 1 every 1.5 s). An animated image (GIF, WebP, APNG) is
    read by Pillow; anything else (mp4, webm) by PyAV, an optional extra (``pip install av``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        frames, starts, t = image_frames(Image.open(io.BytesIO(data)))
    except UnidentifiedImageError:
        frames, starts, t = video_frames(data)
    if not frames:
        raise ValueError("a clip without frames")
    shown, k, out = 0, 0, []
    while k * interval < max(t, 1e-9):  # the frame on screen at k·interval: the last one started by then
        while shown + 1 < len(starts) and starts[shown + 1] <= k * interval:
            shown += 1
        out.append(frames[shown])
        k += 1
    return out


def image_frames(clip) -> tuple[list, list[float], float]:
    """An animated image's frames (RGB), the second each starts at, and its duration in seconds."""
    from PIL import ImageSequence

    frames, starts, t = [], [], 0.0
    for frame in ImageSequence.Iterator(clip):
        frames.append(frame.convert("RGB"))
        starts.append(t)
        t += frame.info.get("duration", 0) / 1000
    return frames, starts, t


def video_frames(data: bytes) -> tuple[list, list[float], float]:
    """A video file's frames (RGB), the second each starts at (its timestamp less the first's), and its duration
    (the last frame's start plus one frame at the stream's rate), decoded by PyAV."""
    try:
        import av
    except ImportError:
        raise ValueError("a clip that is no animated image: reading video files needs PyAV (pip install av)") from None
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        decoded = [(float(f.time), f.to_image()) for f in container.decode(stream) if f.time is not None]
        rate = float(stream.average_rate or stream.guessed_rate or 1)
    if not decoded:
        return [], [], 0.0
    decoded.sort(key=lambda pair: pair[0])
    first = decoded[0][0]
    starts = [t - first for t, _ in decoded]
    return [img.convert("RGB") for _, img in decoded], starts, starts[-1] + 1 / rate


def frame_pixels(frames: list, size: int) -> torch.Tensor:
    """Frames as a CLIP-normalised batch (F, 3, size, size): the shorter side resized to ``size`` (bicubic),
    then the centre square (CLIP's preprocessing, and HERO's extractor's centre crop)."""
    from PIL import Image

    out = []
    for img in frames:
        scale = size / min(img.size)
        w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
        img = img.resize((w, h), Image.Resampling.BICUBIC)
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
        out.append(torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3))
    x = torch.stack(out).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]


def to_tokens(frame_features: torch.Tensor, tokens: int) -> torch.Tensor:
    """(F, D) per-frame features as exactly ``tokens`` rows, as VL-Adapter's data loaders resize them
    (tvqa_data.py:34-44): fewer frames padded with zero rows after them, more max-pooled over time
    (``adaptive_max_pool1d``, so each token is the maximum over a run of consecutive frames)."""
    n, dim = frame_features.shape
    if n < tokens:
        return torch.cat([frame_features, frame_features.new_zeros(tokens - n, dim)])
    if n > tokens:
        return F.adaptive_max_pool1d(frame_features.t()[None], tokens)[0].t()
    return frame_features


def npz_features(data: bytes) -> torch.Tensor:
    """VALUE's published per-frame features (an ``.npz`` with ``features``: frames × 512, float16) as float32."""
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return torch.from_numpy(npz["features"].astype("float32"))


@torch.no_grad()
def clip_tokens(name: str, clips: list[bytes], *, device: str | torch.device = "cpu") -> torch.Tensor:
    """Clips as VL-Adapter's visual tokens (N, cells, feat_dim): each clip's frames sampled every
    ``frame_interval`` s, each frame's CLIP image embedding (one forward for all frames), resized to
    ``cells`` tokens (``to_tokens``). A clip given as VALUE's ``.npz`` (a zip) already holds per-frame
    embeddings of that sampling, and is only resized."""
    s = spec(name)
    per_clip = [npz_features(data) if data[:2] == b"PK" else sampled_frames(data, s.frame_interval) for data in clips]
    frames = [f for p in per_clip if isinstance(p, list) for f in p]
    if frames:
        model, _ = load_encoder(name)
        model.to(device)
        embedded = iter(model(pixel_values=frame_pixels(frames, s.image_size).to(device)).image_embeds.float().cpu()
                        .split([len(p) for p in per_clip if isinstance(p, list)]))
    out = []
    for p in per_clip:
        feats = next(embedded) if isinstance(p, list) else p
        if feats.ndim != 2 or feats.shape[1] != s.feat_dim:
            raise ValueError(f"{name}: a clip's frame features are {tuple(feats.shape)}, not (frames, {s.feat_dim})")
        out.append(to_tokens(feats, s.cells))
    return torch.stack(out).contiguous()
