"""CLIP RN101 as VL-Adapter prepares it: 224 px, the 7×7 last feature map, max-pooled to 6×6."""

import io

import torch
from PIL import Image

from peftbench.models import encoders


class FeatureMap(torch.nn.Module):
    """Stands in for timm's RN101: a known (N, 2048, side, side) map from the image's size (no weights)."""

    def forward_features(self, x):
        side = x.shape[-1] // 32  # RN101's stride
        return torch.arange(len(x) * 2048 * side * side, dtype=torch.float32).view(len(x), 2048, side, side).sin()


def png(size: int = 50) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


def test_clip_rn101_reads_224_px_and_max_pools_its_grid_to_6x6(monkeypatch):
    spec = encoders.spec(encoders.CLIP_RN101)
    assert spec.image_size == 224 and spec.cells == 36 and spec.feat_dim == 2048
    assert spec.preprocessing == "rgb-bicubic-224px-clip-norm-pool-adaptive-max-6x6"  # the cache's key
    monkeypatch.setattr(encoders, "load_encoder", lambda name: (FeatureMap(), "test"))
    feats = encoders.encode(encoders.CLIP_RN101, [png(), png(80)])
    grid = FeatureMap().forward_features(torch.zeros(2, 3, 224, 224))
    assert grid.shape[-1] == 7  # 224 px gives RN101 a 7×7 map
    # AdaptiveMaxPool2d(6) over 7 cells: each output cell is the max of a 2×2 window
    assert torch.equal(feats[:, 0], grid[:, :, :2, :2].amax(dim=(-1, -2)))
    assert torch.equal(feats[:, 35], grid[:, :, 5:, 5:].amax(dim=(-1, -2)))
    assert feats.shape == (2, 36, 2048)
