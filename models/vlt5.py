"""VL-T5 (Cho et al., 2021) as VL-Adapter uses it: a T5 whose encoder reads image features too.

    encoder input = [embed(x₁) … embed(x_L) ; v₁ … v_{I·V}],   mask = [mask(x) ; 1 … 1]
    vᵢ = LN(W_f fᵢ + b_f) + LN(W_p [boxᵢ; areaᵢ] + b_p) + E_img[image of i] + E_tok[vocab − 1 − object i]

fᵢ are frozen image features (I images of V grid cells, ``feat_dim`` each; models/features.py), LN
is T5's layer norm, E_img an embedding per image (NLVR2 has two) and E_tok T5's own vocabulary
embedding read from its end (VL-T5's object-order embedding, so it adds no parameters). Boxes are
zeros when the features carry none, as in VL-Adapter's CLIP grid features.

The model stays a ``T5ForConditionalGeneration`` (``.encoder``, ``.decoder``, ``.shared``,
``generate``), so every method of the registry applies unchanged. The visual tokens enter through
a pre-hook on the encoder, the way prompt tuning's prompt does (methods/prompt.py), so
``model(**batch)`` and ``model.generate(...)`` (which calls the encoder on its own) both see them;
a prompt, hooked in later, goes in front of both. Text first, as VL-Adapter's ``JointEncoder``
(``VL-T5/src/modeling_t5.py:260``: ``torch.cat([inputs_embeds, vis_embeds], dim=1)``).
``trained_by_every_method`` names the projection:
``methods.apply_method`` keeps it out of every method's reach and trains it (VL-Adapter trains it
under every method), so it counts in the trainable share.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import T5Config, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5LayerNorm

VISUAL_KEYS = ("visual_features", "visual_boxes")  # the batch keys this model reads beside the text
N_IMAGES = 2  # VL-T5's image-order embedding: NLVR2's two images


class VisualEmbedding(nn.Module):
    """Image features (and boxes) to T5 embeddings: VL-T5's ``VisualEmbedding`` with
    ``individual_vis_layer_norm`` and ``use_vis_order_embedding``, the VL-Adapter setting."""

    def __init__(self, *, feat_dim: int, d_model: int, n_images: int = N_IMAGES, eps: float = 1e-6,
                 norm: type[nn.Module] = T5LayerNorm):
        super().__init__()
        self.feat = nn.Linear(feat_dim, d_model)
        self.feat_norm = norm(d_model, eps=eps)  # the backbone's own kind: T5LayerNorm, BART's nn.LayerNorm
        self.box = nn.Linear(5, d_model)  # (x1, x2, y1, y2, area)
        self.box_norm = norm(d_model, eps=eps)
        self.image_order = nn.Embedding(n_images, d_model)

    def forward(self, feats: torch.Tensor, boxes: torch.Tensor | None, token_embedding: nn.Embedding) -> torch.Tensor:
        """``feats`` (B, I, V, feat_dim), ``boxes`` (B, I, V, 4) or None -> (B, I·V, d_model)."""
        batch, images, cells, _ = feats.shape
        feats = feats.to(self.feat.weight.dtype)
        if boxes is None:
            boxes = feats.new_zeros(batch, images, cells, 4)
        area = (boxes[..., 1] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 2])
        x = self.feat_norm(self.feat(feats)) + self.box_norm(self.box(torch.cat([boxes, area[..., None]], dim=-1)))
        x = x + self.image_order(torch.arange(images, device=feats.device))[None, :, None]
        objects = token_embedding.num_embeddings - 1 - torch.arange(cells, device=feats.device)
        x = x + token_embedding(objects).to(x.dtype)[None, None]
        return x.reshape(batch, images * cells, -1)


class VLT5(T5ForConditionalGeneration):
    """T5 with ``config.visual = {"feat_dim": D, "n_images": 2, "encoder": name}``: visual tokens
    after the text; without ``visual_features`` it is the text model it was made from."""

    trained_by_every_method = ("encoder.visual_embedding",)

    def __init__(self, config: T5Config):
        super().__init__(config)
        visual = config.visual
        self.encoder.visual_embedding = VisualEmbedding(
            feat_dim=visual["feat_dim"], d_model=config.d_model, n_images=visual.get("n_images", N_IMAGES),
            eps=config.layer_norm_epsilon)
        self.encoder.visual_length = 0  # visual tokens of the last encoder call: the decoder's mask needs them
        self.encoder.register_forward_pre_hook(append_visual_tokens, with_kwargs=True)

    def forward(self, input_ids=None, attention_mask=None, visual_features=None, visual_boxes=None,
                encoder_outputs=None, **kwargs):
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=kwargs.pop("inputs_embeds", None),
                                           visual_features=visual_features, visual_boxes=visual_boxes, return_dict=True)
        if attention_mask is not None:  # the decoder attends to the visual positions too
            attention_mask = append_visual_mask(attention_mask, encoder_outputs[0].shape[1], self.encoder.visual_length)
        return super().forward(attention_mask=attention_mask, encoder_outputs=encoder_outputs, **kwargs)


def append_visual_tokens(encoder: nn.Module, args: tuple, kwargs: dict):
    """Encoder pre-hook: ``visual_features`` (B, I, V, D) become I·V tokens after the text's embeddings."""
    feats, boxes = kwargs.pop("visual_features", None), kwargs.pop("visual_boxes", None)
    encoder.visual_length = 0
    if feats is None:
        return args, kwargs
    if args:
        raise TypeError("VL-T5 needs its encoder called with keyword arguments")
    embeds = kwargs.get("inputs_embeds")
    if embeds is None:
        embeds = encoder.embed_tokens(kwargs["input_ids"])
    visual = encoder.visual_embedding(feats, boxes, encoder.embed_tokens).to(embeds.dtype)
    encoder.visual_length = visual.shape[1]
    kwargs.update(input_ids=None, inputs_embeds=torch.cat([embeds, visual], dim=1))
    if kwargs.get("attention_mask") is not None:
        mask = kwargs["attention_mask"]
        kwargs["attention_mask"] = append_visual_mask(mask, mask.shape[-1] + visual.shape[1], visual.shape[1])
    return args, kwargs


def append_visual_mask(mask: torch.Tensor, length: int, visual_length: int) -> torch.Tensor:
    """``mask`` (batch, L) with ``visual_length`` attended positions after it, when the states it masks
    (``length`` long) hold more than it covers. A prompt's positions, in front, are its own hook's."""
    if mask.shape[-1] >= length or not visual_length:
        return mask
    return torch.cat([mask, mask.new_ones(mask.shape[0], visual_length)], dim=1)


def vl_config(config, *, feat_dim: int, encoder: str, n_images: int = N_IMAGES, added_tokens: int = 0):
    """A copy of a T5 (or BART) configuration that makes a ``VLT5`` (``VLBart``) reading ``feat_dim``-dim
    features of ``encoder``, its vocabulary ``added_tokens`` longer."""
    out = type(config).from_dict(config.to_dict())
    out.visual = {"feat_dim": feat_dim, "n_images": n_images, "encoder": encoder}
    out.vocab_size = config.vocab_size + added_tokens
    return out


def is_vl_config(config) -> bool:
    return isinstance(getattr(config, "visual", None), dict)


def vl_t5(base: T5ForConditionalGeneration, config: T5Config) -> VLT5:
    """``base``'s weights in a VL-T5 of ``config`` (from ``vl_config``); the projection is drawn
    from the global RNG (a trial seeds it), the base's weights are copied unchanged."""
    model = VLT5(config)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith("encoder.visual_embedding.") for k in missing):
        raise RuntimeError(f"VL-T5 from {type(base).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model.to(dtype=next(base.parameters()).dtype)
