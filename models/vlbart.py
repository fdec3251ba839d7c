"""VL-BART (Cho et al., 2021) as VL-Adapter uses it, the default backbone of its scripts: BART reading image features.

    encoder input = [LN_emb(embed(x) + pos(x)) ; v₁ … v_{I·V}],   mask = [mask(x) ; 1 … 1]

as VL-Adapter's ``JointEncoder`` (``VL-T5/src/modeling_bart.py:553-690``): the text gets BART's learned
positions and embedding layer norm, the visual tokens (models/vlt5.py's ``VisualEmbedding`` with BART's
``nn.LayerNorm``, its object-order embedding read from the end of BART's vocabulary) follow the text
without either. The model stays a ``BartForConditionalGeneration``; methods find its sublayers through
methods/sublayers.py.

VL-Adapter adds 200 tokens to BART's tokenizer (``<extra_id_i>``, ``<vis_extra_id_i>``, i < 100) and
resizes the embedding to match (``multitask.py:85-100``): the object-order embedding reads those rows,
and the parameter shares of its Table 1 count them (``ADDED_TOKENS``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BartConfig, BartForConditionalGeneration
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.bart.modeling_bart import BartEncoder

from peftbench.models.vlt5 import N_IMAGES, VisualEmbedding, append_visual_mask

ADDED_TOKENS = (tuple(f"<extra_id_{i}>" for i in range(99, -1, -1))
                + tuple(f"<vis_extra_id_{i}>" for i in range(99, -1, -1)))


class VLBartEncoder(BartEncoder):
    """BART's encoder with the visual tokens after the text's (``visual_length`` of them at the last call)."""

    def __init__(self, config: BartConfig):
        super().__init__(config)
        visual = config.visual
        self.visual_embedding = VisualEmbedding(feat_dim=visual["feat_dim"], d_model=config.d_model,
                                                n_images=visual.get("n_images", N_IMAGES), eps=1e-5, norm=nn.LayerNorm)
        self.visual_length = 0

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, visual_features=None,
                visual_boxes=None, **kwargs) -> BaseModelOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("VL-BART's encoder needs exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        positions = self.embed_positions(inputs_embeds[:, :, -1]).to(inputs_embeds.device)
        hidden = self.layernorm_embedding(inputs_embeds + positions)
        self.visual_length = 0
        if visual_features is not None:
            visual = self.visual_embedding(visual_features, visual_boxes, self.embed_tokens).to(hidden.dtype)
            hidden, self.visual_length = torch.cat([hidden, visual], dim=1), visual.shape[1]
        if attention_mask is not None:
            attention_mask = append_visual_mask(attention_mask, hidden.shape[1], self.visual_length)
        hidden = nn.functional.dropout(hidden, p=self.dropout, training=self.training)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)
        for layer in self.layers:  # bart-base has no layer drop
            hidden = layer(hidden, mask)
        return BaseModelOutput(last_hidden_state=hidden)


class VLBart(BartForConditionalGeneration):
    """BART with ``config.visual = {"feat_dim": D, "n_images": 2, "encoder": name}``: visual tokens
    after the text; without ``visual_features`` it is the text model it was made from."""

    trained_by_every_method = ("model.encoder.visual_embedding",)

    def __init__(self, config: BartConfig):
        super().__init__(config)
        self.model.encoder = VLBartEncoder(config)
        self.model.encoder.embed_tokens = self.model.shared  # tied, as BART's own encoder is

    def forward(self, input_ids=None, attention_mask=None, visual_features=None, visual_boxes=None,
                encoder_outputs=None, **kwargs):
        if encoder_outputs is None:
            encoder_outputs = self.model.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                                 inputs_embeds=kwargs.pop("inputs_embeds", None),
                                                 visual_features=visual_features, visual_boxes=visual_boxes)
        if attention_mask is not None:
            attention_mask = append_visual_mask(attention_mask, encoder_outputs[0].shape[1],
                                                self.model.encoder.visual_length)
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, encoder_outputs=encoder_outputs,
                               **kwargs)


def vl_bart(base: BartForConditionalGeneration, config: BartConfig) -> VLBart:
    """``base``'s weights in a VL-BART of ``config`` (from ``vl_config``), its vocabulary grown to
    ``config.vocab_size`` first (the added tokens' rows as transformers initialises them); the projection is
    drawn from the global RNG (a trial seeds it)."""
    if base.config.vocab_size != config.vocab_size:
        base.resize_token_embeddings(config.vocab_size)
    model = VLBart(config)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith("model.encoder.visual_embedding.") for k in missing):
        raise RuntimeError(f"VL-BART from {type(base).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.generation_config = base_decoding(base)
    return model.to(dtype=next(base.parameters()).dtype)


def base_decoding(base: BartForConditionalGeneration):
    """The generation defaults VL-Adapter's VL-BART decodes with: its BART's (bart-base's config.json on the hub:
    no_repeat_ngram_size 3, early_stopping true, num_beams 4, which every generate() call here overrides), read
    by transformers 4.2.1's generate(), as transformers 5 reads them from the hub into ``base.generation_config``;
    the first token not forced (4.2.1 forces BOS only with ``force_bos_token_to_be_generated``, false in bart-base;
    the EOS at the last step is forced in both, ``my_transformers/modeling_bart.py:1549-1554``)."""
    decoding = base.generation_config.__class__.from_dict(base.generation_config.to_dict())
    decoding.forced_bos_token_id = None
    return decoding
