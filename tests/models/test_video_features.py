"""Video features: frames sampled every 1.5 s, one CLIP embedding per frame, resized to VL-Adapter's 64 tokens,
cached per clip as pictures are (read back exactly, a tampered entry recomputed, computed by the sweep's step)."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from peftbench.harness.config import TrialConfig
from peftbench.harness.features import extract_features
from peftbench.models import encoders, features
from peftbench.models.encoders import CLIP_VIT, TINY_CLIP_VIT, clip_tokens, sampled_frames, spec, to_tokens
from peftbench.models.features import features_for, item_key
from peftbench.tasks import get_task

TVQA = get_task("tvqa")


def gif(colors: list[tuple[int, int, int]], durations_ms: list[int]) -> bytes:
    frames = [Image.new("RGB", (8, 8), c) for c in colors]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations_ms, loop=0)
    return buf.getvalue()


def test_frames_are_the_ones_on_screen_every_1_5_seconds():
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    # frames start at 0, 1.0 and 3.0 s; the clip lasts 4.0 s: samples at 0, 1.5, 3.0 show red, green, blue
    frames = sampled_frames(gif([red, green, blue], [1000, 2000, 1000]), 1.5)
    assert [f.getpixel((0, 0)) for f in frames] == [red, green, blue]
    # a 9 s clip the GIF writer merged into one frame still gives six samples
    assert len(sampled_frames(gif([red, red], [4500, 4500]), 1.5)) == 6


def test_to_tokens_pads_few_frames_with_zeros_and_max_pools_many():
    few = torch.randn(6, 4)
    padded = to_tokens(few, 64)
    assert padded.shape == (64, 4) and torch.equal(padded[:6], few) and not padded[6:].any()
    many = torch.randn(128, 4)
    pooled = to_tokens(many, 64)  # 128 -> 64: each token the maximum of two consecutive frames
    assert torch.equal(pooled, torch.maximum(many[0::2], many[1::2]))
    assert torch.equal(to_tokens(many[:64], 64), many[:64])


def test_a_fixture_clip_is_64_tokens_of_its_six_frames():
    s = spec(TINY_CLIP_VIT)
    assert (s.cells, s.feat_dim, s.frame_interval) == (64, 64, 1.5)
    (clip,) = TVQA.images(TVQA.load_fixtures()["train"][0])
    tokens = clip_tokens(TINY_CLIP_VIT, [clip])
    assert tokens.shape == (1, 64, 64)
    assert tokens[0, :6].abs().sum(-1).gt(0).all() and not tokens[0, 6:].any()


def test_values_published_features_are_only_resized(monkeypatch):
    """VALUE's ``.npz`` of per-frame CLIP ViT-B/32 embeddings: no encoder is loaded for it."""
    monkeypatch.setattr(encoders, "load_encoder", lambda name: pytest.fail("an encoder was loaded for an .npz"))
    frames = np.random.default_rng(0).standard_normal((100, 512)).astype("float16")
    buf = io.BytesIO()
    np.savez(buf, features=frames)
    tokens = clip_tokens(CLIP_VIT, [buf.getvalue()])
    assert tokens.shape == (1, 64, 512)
    assert torch.equal(tokens[0], to_tokens(torch.from_numpy(frames.astype("float32")), 64))
    narrow = io.BytesIO()
    np.savez(narrow, features=frames[:, :100])
    with pytest.raises(ValueError, match=r"\(frames, 512\)"):
        clip_tokens(CLIP_VIT, [narrow.getvalue()])


@pytest.fixture(scope="module")
def clips():
    rows = TVQA.load_fixtures()["validation"][:10]
    return {item_key(c): c for c in (TVQA.images(r) for r in rows)}


def largest_file(root: Path) -> Path:
    """The entry's feature data, whatever the store's layout: its largest file outside the locks."""
    files = [p for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts]
    return max(files, key=lambda p: p.stat().st_size)


def test_clip_features_are_cached_read_back_and_a_tampered_entry_recomputed(tmp_path, clips):
    before = features.EXTRACTED[TINY_CLIP_VIT]
    feats, index = features_for(TINY_CLIP_VIT, clips, source="fixtures/tvqa", root=tmp_path)
    assert features.EXTRACTED[TINY_CLIP_VIT] - before == len(clips)
    assert feats.shape == (len(clips), 1, 64, 64)
    again, index2 = features_for(TINY_CLIP_VIT, clips, source="fixtures/tvqa", root=tmp_path)
    assert features.EXTRACTED[TINY_CLIP_VIT] - before == len(clips)  # read back, nothing encoded
    expected = rows(feats, index, clips)  # a copy: the rows are views of the shard tampered with below
    assert index2 == index and torch.equal(rows(again, index, clips), expected)

    data = largest_file(tmp_path)
    tampered = bytearray(data.read_bytes())
    tampered[-1] ^= 0xFF
    data.write_bytes(bytes(tampered))
    fixed, index3 = features_for(TINY_CLIP_VIT, clips, source="fixtures/tvqa", root=tmp_path)
    assert features.EXTRACTED[TINY_CLIP_VIT] - before == 2 * len(clips)  # every clip encoded again
    assert torch.equal(rows(fixed, index3, clips), expected)


def rows(feats, index: dict[str, int], keys) -> torch.Tensor:
    """The features of ``keys`` in that order, one tensor (the cache gives per-row views of its shards)."""
    return torch.stack([feats[index[k]] for k in keys])


def test_the_sweeps_feature_step_encodes_each_clip_once_for_every_trial(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(tmp_path))
    common = {"model": "tiny-bart", "method": "adapter", "learning_rate": 1e-3, "data": "fixtures"}
    trials = [TrialConfig(task="tvqa", **common), TrialConfig(task="tvqa", train_size=8, seed=2, **common)]
    before = features.EXTRACTED[TINY_CLIP_VIT]
    assert extract_features(trials, log=lambda _: None) == 1
    loaded = TVQA.load_with_source("fixtures", train_size=8, seed=2)
    # distinct clips: two videos of the same bytes are one entry (content-addressed)
    n_clips = len({item_key(TVQA.images(ex)) for rows in TVQA.load("fixtures").values() for ex in rows})
    assert features.EXTRACTED[TINY_CLIP_VIT] - before == n_clips
    inputs = TVQA.model_inputs(loaded.splits, model="tiny-bart+tiny-clip-vit", data_source=loaded.source)
    assert inputs["train"][0]["visual_features"].shape == (1, 64, 64)
    assert features.EXTRACTED[TINY_CLIP_VIT] - before == n_clips  # the trial read them all
