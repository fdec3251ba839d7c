"""Prompt tuning (Lester et al., 2021): trainable vectors prepended to the encoder input.

    encoder input = [p₁ … p_P ; embed(x₁) … embed(x_L)],   P = prompt_length,  mask = [1 … 1 ; mask(x)]

The whole model is frozen; only the P × d_model prompt trains. prompt-tuning-r draws it from
uniform(−0.5, 0.5); prompt-tuning-t copies the embeddings of tokens drawn from the vocabulary's first
``vocab_sample`` ids (Lester et al. sample the 5,000 most frequent; T5's ids are roughly by frequency).

In a mixture, ``sharing=per-task`` keeps a prompt per task and prepends the current task's
(VL-Adapter's "multiple prompts"); ``shared`` one prompt for all tasks.

The prompt enters through hooks on the encoder and decoder stacks, so ``model(**batch)`` and
``model.generate(...)`` (which calls the encoder on its own) both see it: the encoder gets the
prompt and an extended mask; the decoder's cross-attention mask gets the prompt positions too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from peftbench.methods.multitask import check_sharing, sharing_field, task_switch
from peftbench.methods.registry import register
from peftbench.methods.sublayers import layout


@dataclass(frozen=True)
class PromptTuningConfig:
    """Prompt tuning: trainable vectors before the encoder input, drawn uniform(-0.5, 0.5)."""

    prompt_length: int = field(default=100, metadata={"help": "prompt vectors prepended to the input"})
    sharing: str = sharing_field(("shared", "per-task"))

    def __post_init__(self):
        check_sharing(self)
        if not (isinstance(self.prompt_length, int) and self.prompt_length >= 1):
            raise ValueError(f"prompt_length must be a positive integer, got {self.prompt_length!r}")

    def initial_prompt(self, embedding: nn.Embedding) -> torch.Tensor:
        w = embedding.weight
        return torch.empty(self.prompt_length, w.shape[1], device=w.device, dtype=w.dtype).uniform_(-0.5, 0.5)


@dataclass(frozen=True)
class VocabPromptTuningConfig(PromptTuningConfig):
    """Prompt tuning: trainable vectors before the encoder input, copied from token embeddings."""

    vocab_sample: int = field(default=5000, metadata={"help": "the prompt copies embeddings of the first N token ids"})

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.vocab_sample, int) and self.vocab_sample >= 1):
            raise ValueError(f"vocab_sample must be a positive integer, got {self.vocab_sample!r}")

    def initial_prompt(self, embedding):
        w = embedding.weight
        ids = torch.randint(0, min(self.vocab_sample, w.shape[0]), (self.prompt_length,), device=w.device)
        return w.detach()[ids].clone()


class SoftPrompt(nn.Module):
    """The prompt, and the stack hooks that feed it to the model."""

    def __init__(self, prompt: torch.Tensor):
        super().__init__()
        self.embedding = nn.Parameter(prompt)

    def current(self) -> torch.Tensor:
        """The prompt the next forward prepends."""
        return self.embedding

    def prepend_to_encoder_input(self, encoder: nn.Module, args: tuple, kwargs: dict):
        if args:
            raise TypeError("prompt tuning needs the encoder called with keyword arguments")
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = encoder.embed_tokens(kwargs["input_ids"])
        prompt = self.current().to(embeds.dtype).expand(len(embeds), -1, -1)
        kwargs.update(input_ids=None, inputs_embeds=torch.cat([prompt, embeds], dim=1))
        if kwargs.get("attention_mask") is not None:
            kwargs["attention_mask"] = extend_mask(kwargs["attention_mask"], prompt.shape[1])
        return args, kwargs

    def extend_cross_attention_mask(self, decoder: nn.Module, args: tuple, kwargs: dict):
        states, mask = kwargs.get("encoder_hidden_states"), kwargs.get("encoder_attention_mask")
        if states is not None and mask is not None and mask.shape[-1] < states.shape[1]:
            kwargs["encoder_attention_mask"] = extend_mask(mask, states.shape[1] - mask.shape[-1])
        return args, kwargs


class PerTaskSoftPrompt(SoftPrompt):
    """A prompt per task of a mixture (parameters ``tasks.<task>``); the switch picks the current one."""

    def __init__(self, prompts: dict[str, torch.Tensor], switch):
        nn.Module.__init__(self)
        self.tasks = nn.ParameterDict({task: nn.Parameter(p) for task, p in prompts.items()})
        object.__setattr__(self, "_switch", switch)  # not a submodule

    def current(self):
        return self.tasks[self._switch.current]


def extend_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    """``mask`` (batch, L) with ``length`` attended positions in front."""
    return torch.cat([mask.new_ones(mask.shape[0], length), mask], dim=1)


def apply(model: nn.Module, cfg: PromptTuningConfig) -> list[str]:
    embedding, switch = model.get_input_embeddings(), task_switch(model)
    if switch is None or cfg.sharing == "shared":
        model.soft_prompt = SoftPrompt(cfg.initial_prompt(embedding))
    else:
        model.soft_prompt = PerTaskSoftPrompt({t: cfg.initial_prompt(embedding) for t in switch.tasks}, switch)
    stacks = layout(model).stacks(model)
    stacks["encoder"].register_forward_pre_hook(model.soft_prompt.prepend_to_encoder_input, with_kwargs=True)
    stacks["decoder"].register_forward_pre_hook(model.soft_prompt.extend_cross_attention_mask, with_kwargs=True)
    return ["soft_prompt." + name for name, _ in model.soft_prompt.named_parameters()]


register("prompt-tuning-r", PromptTuningConfig, apply, task_prefix=True)
register("prompt-tuning-t", VocabPromptTuningConfig, apply, task_prefix=True)
