"""Model loading: ``tiny-t5`` and ``tiny-bart`` built offline from a config, or any Hugging Face T5 or BART id or path.

Names are parsed once into a ``models.spec.ModelSpec``: ``NAME@REVISION`` pins a hub revision
(``google-t5/t5-base@<commit>``); ``T5+ENCODER`` is VL-T5 (models/vlt5.py): that T5 with a trainable
projection of ``ENCODER``'s frozen image features (``t5-base+clip-rn101``, VL-Adapter's;
``tiny-t5+tiny-clip`` offline); ``BART+ENCODER`` is VL-BART (models/vlbart.py: ``bart-base+clip-rn101``,
``tiny-bart+tiny-clip``). ``model_config`` knows a model's configuration without its weights,
so budgets and benchmarks download nothing (engine/build.py builds from it).
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    ByT5Tokenizer,
    PretrainedConfig,
    T5Config,
    T5ForConditionalGeneration,
)
from transformers.utils import logging as transformers_logging

from peftbench.models.encoders import spec as encoder_spec
from peftbench.models.names import (
    PACKAGED,
    T5_SIZES,
    TINY_BART,
    TINY_T5,
    is_bart_base,
    location,
    t5_size,
)
from peftbench.models.spec import ModelSpec
from peftbench.models.vlbart import ADDED_TOKENS, VLBart, vl_bart
from peftbench.models.vlt5 import VLT5, is_vl_config, vl_config, vl_t5

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def tiny_t5_config() -> T5Config:
    """A ~0.7M-parameter T5 whose vocabulary is ByT5's 384 byte ids: no files, no download."""
    return T5Config(
        vocab_size=384, d_model=128, d_ff=256, d_kv=32, num_heads=4, num_layers=2,
        num_decoder_layers=2, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
        eos_token_id=1, tie_word_embeddings=True,
    )


# The original T5 checkpoints' architectures (their config.json on the hub), so parameter accounting
# and step timing need no download. Shared by all: relu feed-forward, 32 relative-position buckets,
# tied input/output embeddings, vocabulary 32128.


def known_t5_config(name: str) -> T5Config | None:
    """The configuration of an original T5 size (``t5-base`` or ``google-t5/t5-base``), else None."""
    size = t5_size(name)
    if size is None:
        return None
    d_model, d_ff, d_kv, num_heads, num_layers = T5_SIZES[size]
    return T5Config(
        vocab_size=32128, d_model=d_model, d_ff=d_ff, d_kv=d_kv, num_heads=num_heads, num_layers=num_layers,
        num_decoder_layers=num_layers, dropout_rate=0.1, feed_forward_proj="relu", decoder_start_token_id=0,
        pad_token_id=0, eos_token_id=1, tie_word_embeddings=True,
    )


def tiny_bart_config() -> BartConfig:
    """A BART of tiny-t5's sizes on the same 384 byte ids (``ByT5Tokenizer``): no files, no download."""
    return BartConfig(
        vocab_size=384, d_model=128, encoder_ffn_dim=256, decoder_ffn_dim=256, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_layers=2, decoder_layers=2, max_position_embeddings=512, dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, pad_token_id=0, eos_token_id=1, bos_token_id=0,
        decoder_start_token_id=0, forced_eos_token_id=None, tie_word_embeddings=True,
    )


def known_bart_config(name: str) -> BartConfig | None:
    """facebook/bart-base's configuration (its config.json on the hub), else None: known offline."""
    if not is_bart_base(name):
        return None
    return BartConfig(
        vocab_size=50265, d_model=768, encoder_ffn_dim=3072, decoder_ffn_dim=3072, encoder_attention_heads=12,
        decoder_attention_heads=12, encoder_layers=6, decoder_layers=6, max_position_embeddings=1024,
        activation_function="gelu", dropout=0.1, attention_dropout=0.1, activation_dropout=0.1, scale_embedding=False,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=0,
        forced_eos_token_id=2, tie_word_embeddings=True,
    )


def known_config(name: str) -> PretrainedConfig | None:
    """The configuration of a model known without files: the tiny ones, the T5 sizes, bart-base."""
    tiny = {TINY_T5: tiny_t5_config, TINY_BART: tiny_bart_config}.get(name)
    return tiny() if tiny else known_t5_config(name) or known_bart_config(name)


def model_config(name: str | ModelSpec) -> PretrainedConfig:
    """The model's configuration alone (no weights); the original T5 sizes and bart-base are known offline.
    VL-BART's vocabulary counts the tokens VL-Adapter adds (``models.vlbart.ADDED_TOKENS``) beside a real
    BART tokenizer's; tiny-bart's byte vocabulary gets none."""
    spec = ModelSpec.parse(name)
    if spec.encoder:
        encoder, text = str(spec.encoder), model_config(spec.text)
        added = len(ADDED_TOKENS) if text.model_type == "bart" and str(spec.text) != TINY_BART else 0
        return vl_config(text, feat_dim=encoder_spec(encoder).feat_dim, encoder=encoder, added_tokens=added)
    if known := known_config(str(spec)):
        return known
    repo, revision = location(spec.backbone)
    return AutoConfig.from_pretrained(repo, revision=revision)


def load_model(name: str | ModelSpec, *, seed: int) -> tuple[T5ForConditionalGeneration, object, str]:
    """The model, its tokenizer, and where the weights came from (for the record).

    ``tiny-t5`` is initialised from ``seed`` deterministically: ``config:tiny-t5``; a hub model
    names the commit it resolved to, ``hub:<id>@<commit>``; a local folder ``path:<folder>``; a
    packaged one (``tiny-t5-pretrained``) ``package:<name>@sha256:<digest of its weights>``; VL-T5
    its T5's source and the encoder, ``config:tiny-t5+tiny-clip``.
    """
    spec = ModelSpec.parse(name)
    if spec.encoder:
        base, tokenizer, source = load_model(spec.text, seed=seed)
        config = model_config(spec)
        torch.manual_seed(seed)  # the projection's initial weights
        if isinstance(base, BartForConditionalGeneration):
            if config.vocab_size > base.config.vocab_size:
                tokenizer.add_special_tokens({"additional_special_tokens": list(ADDED_TOKENS)})
            return vl_bart(base, config), tokenizer, f"{source}+{spec.encoder}"
        return vl_t5(base, config), tokenizer, f"{source}+{spec.encoder}"
    if str(spec) in (TINY_T5, TINY_BART):
        torch.manual_seed(seed)
        return model_from_config(known_config(str(spec))), ByT5Tokenizer(), f"config:{spec}"
    repo, revision = location(spec.backbone)
    transformers_logging.disable_progress_bar()  # a bar per trial would flood a sweep's output
    # fp32 as the authors trained, whatever dtype the checkpoint was saved in (transformers' default
    # is the checkpoint's own, "auto")
    model_class = (BartForConditionalGeneration if model_config(spec).model_type == "bart"
                   else T5ForConditionalGeneration)
    model = model_class.from_pretrained(repo, revision=revision, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(repo, revision=revision)
    if spec.backbone.repo in PACKAGED:  # which weights: the digest of the file, as the package may be rebuilt
        digest = hashlib.sha256((Path(repo) / "model.safetensors").read_bytes()).hexdigest()[:12]
        return model, tokenizer, f"package:{spec.backbone.repo}@sha256:{digest}"
    if Path(repo).is_dir():
        return model, tokenizer, f"path:{Path(repo).resolve()}"
    return model, tokenizer, f"hub:{repo}@{resolved_commit(repo, revision)}"


def resolved_commit(repo: str, revision: str | None) -> str:
    """The commit a hub id (and branch, tag or commit) resolved to: the cache snapshot its files came
    from (transformers 5 no longer keeps it on the config)."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo, "config.json", revision=revision)
    return Path(path).parent.name if isinstance(path, str) else revision or "unknown"


def model_from_config(config: PretrainedConfig) -> T5ForConditionalGeneration | BartForConditionalGeneration:
    """A randomly initialised model of ``config``: T5 or BART, VL-T5 or VL-BART when it reads images."""
    if config.model_type == "bart":
        return VLBart(config) if is_vl_config(config) else BartForConditionalGeneration(config)
    return VLT5(config) if is_vl_config(config) else T5ForConditionalGeneration(config)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """Build in ``dtype`` directly: converting afterwards (``model.to``) fails on fake tensors."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)
