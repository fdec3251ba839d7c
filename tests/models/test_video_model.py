"""VL-BART and VL-T5 reading CLIP ViT frame features, VL-Adapter's video setting: one parser for the names,
a projection sized for 512-d frame features, 64 frame tokens after the text."""

import pytest
import torch

from peftbench.engine.accounting import count_params
from peftbench.models.encoders import CLIP_VIT, TINY_CLIP_VIT, VIDEO_TOKENS
from peftbench.models.encoders import spec as encoder_spec
from peftbench.models.load import load_model, model_config
from peftbench.models.names import model_problem
from peftbench.models.spec import ModelSpec


@pytest.mark.parametrize("name", ["bart-base+clip-vit", "t5-base+clip-vit"])
def test_the_video_models_are_backbone_plus_clip_vit_through_the_one_parser(name):
    spec = ModelSpec.parse(name)
    assert str(spec.encoder) == CLIP_VIT and str(spec) == name
    assert model_problem(name) is None  # known offline: no hub id to look up
    config = model_config(name)
    # args.feat_dim = 512 (multitask_video.py:646): the projection reads 512-d frame features
    assert config.visual["feat_dim"] == 512 and config.visual["encoder"] == CLIP_VIT


def test_the_video_projection_is_the_image_ones_with_512_inputs():
    """Linear(512 → 768) where the image setting has Linear(2048 → 768); nothing else of the model differs."""
    video, image = (count_params(model_config(f"bart-base+{e}"), "full").total for e in (CLIP_VIT, "clip-rn101"))
    assert image - video == (2048 - 512) * 768


@pytest.mark.parametrize("backbone", ["tiny-t5", "tiny-bart"])
def test_a_clip_is_64_frame_tokens_after_the_text(backbone):
    """--n_boxes 64: one clip of 64 frame features becomes 64 encoder positions after the text's, and the
    decoder attends to them (other frames, another loss)."""
    model, tokenizer, source = load_model(f"{backbone}+{TINY_CLIP_VIT}", seed=0)
    assert source == f"config:{backbone}+{TINY_CLIP_VIT}"
    dim = encoder_spec(TINY_CLIP_VIT).feat_dim
    text = tokenizer(["tvqa: what moves?", "yc2c:"], return_tensors="pt", padding=True)
    labels = tokenizer(["left", "a cut"], return_tensors="pt", padding=True).input_ids
    frames = torch.randn(2, 1, VIDEO_TOKENS, dim, generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": text.input_ids, "attention_mask": text.attention_mask, "labels": labels}
    out = model(**batch, visual_features=frames, output_hidden_states=True)
    states = out.encoder_last_hidden_state
    assert states.shape[1] == text.input_ids.shape[1] + VIDEO_TOKENS
    other = model(**batch, visual_features=torch.randn_like(frames)).loss
    assert torch.isfinite(out.loss) and not torch.allclose(out.loss, other)
