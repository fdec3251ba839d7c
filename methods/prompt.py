"""Prompt tuning (Lester et al., 2021): trainable vectors prepended to the encoder input.

    encoder input = [p₁ … p_P ; embed(x₁) … embed(x_L)],   P = prompt_length,  mask = [1 … 1 ; mask(x)]

The whole model is frozen; only the P × d_model prompt trains. prompt-tuning-r draws it from
uniform(−0.5, 0.5); prompt-tuning-t copies the embeddings of tokens drawn from the vocabulary's first
``vocab_sample`` ids (Lester et al. sample the 5,000 most frequent; T5's ids are roughly by frequency).

In a mixture, ``sharing=per-task`` keeps a prompt per task and prepends the current task's
(VL-Adapter's "multiple prompts"); ``shared`` one prompt for all tasks.

``mid_dim=N`` reparametrises the prompt as VL-Adapter does (their ``InputPrompts``,
src/prompt/prompt_modeling.py:4-23; the scripts' ``--mid_dim 800``): the prompt is
``Linear(N, d)(tanh(Linear(d, N)(E)))`` of a trainable ``nn.Embedding(P, d)`` table E, all of it trained
(P·d + 2·d·N + N + d parameters a prompt) and computed afresh at every forward.

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
    mid_dim: int | None = field(default=None, metadata={"help": (
        "the prompt made by an embedding table and a d→N→d tanh MLP (VL-Adapter's prompts: 800); null: the "
        "vectors themselves")})

    def __post_init__(self):
        check_sharing(self)
        if not (isinstance(self.prompt_length, int) and self.prompt_length >= 1):
            raise ValueError(f"prompt_length must be a positive integer, got {self.prompt_length!r}")
        if self.mid_dim is not None and not (isinstance(self.mid_dim, int) and self.mid_dim >= 1):
            raise ValueError(f"mid_dim must be a positive integer or null, got {self.mid_dim!r}")

    def make_prompt(self, embedding: nn.Embedding) -> torch.Tensor | nn.Module:
        """A new prompt: its vectors (``initial_prompt``), or the module computing them (``mid_dim``)."""
        if self.mid_dim is None:
            return self.initial_prompt(embedding)
        w = embedding.weight
        return ReparametrisedPrompt(self.prompt_length, w.shape[1], self.mid_dim, device=w.device, dtype=w.dtype)

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
        if self.mid_dim is not None:
            raise ValueError("mid_dim computes the prompt from a new table: the copied embeddings would not be used "
                             "(use prompt-tuning-r)")

    def initial_prompt(self, embedding):
        w = embedding.weight
        ids = torch.randint(0, min(self.vocab_sample, w.shape[0]), (self.prompt_length,), device=w.device)
        return w.detach()[ids].clone()


class ReparametrisedPrompt(nn.Module):
    """A prompt computed from a table by a tanh MLP (VL-Adapter's ``InputPrompts``, prompt_modeling.py:4-23)."""

    def __init__(self, length: int, d_model: int, mid_dim: int, *, device=None, dtype=None):
        super().__init__()
        self.table = nn.Embedding(length, d_model, device=device, dtype=dtype)
        self.mlp = nn.Sequential(nn.Linear(d_model, mid_dim, device=device, dtype=dtype), nn.Tanh(),
                                 nn.Linear(mid_dim, d_model, device=device, dtype=dtype))

    def forward(self) -> torch.Tensor:
        return self.mlp(self.table.weight)


def _held(prompt: torch.Tensor | nn.Module) -> nn.Module | nn.Parameter:
    return prompt if isinstance(prompt, nn.Module) else nn.Parameter(prompt)


def _vectors(held: nn.Module | nn.Parameter) -> torch.Tensor:
    return held() if isinstance(held, nn.Module) else held


class SoftPrompt(nn.Module):
    """The prompt (its vectors, or a module computing them), and the stack hooks that feed it to the model."""

    def __init__(self, prompt: torch.Tensor | nn.Module):
        super().__init__()
        self.embedding = _held(prompt)

    def current(self) -> torch.Tensor:
        """The prompt the next forward prepends."""
        return _vectors(self.embedding)

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

    def __init__(self, prompts: dict[str, torch.Tensor | nn.Module], switch):
        nn.Module.__init__(self)
        held = {task: _held(p) for task, p in prompts.items()}
        self.tasks = nn.ModuleDict(held) if any(isinstance(p, nn.Module) for p in held.values()) else \
            nn.ParameterDict(held)
        object.__setattr__(self, "_switch", switch)  # not a submodule

    def current(self):
        return _vectors(self.tasks[self._switch.current])


def extend_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    """``mask`` (batch, L) with ``length`` attended positions in front."""
    return torch.cat([mask.new_ones(mask.shape[0], length), mask], dim=1)


def apply(model: nn.Module, cfg: PromptTuningConfig) -> list[str]:
    embedding, switch = model.get_input_embeddings(), task_switch(model)
    if switch is None or cfg.sharing == "shared":
        model.soft_prompt = SoftPrompt(cfg.make_prompt(embedding))
    else:
        model.soft_prompt = PerTaskSoftPrompt({t: cfg.make_prompt(embedding) for t in switch.tasks}, switch)
    stacks = layout(model).stacks(model)
    stacks["encoder"].register_forward_pre_hook(model.soft_prompt.prepend_to_encoder_input, with_kwargs=True)
    stacks["decoder"].register_forward_pre_hook(model.soft_prompt.extend_cross_attention_mask, with_kwargs=True)
    return ["soft_prompt." + name for name, _ in model.soft_prompt.named_parameters()]


register("prompt-tuning-r", PromptTuningConfig, apply, task_prefix=True)
register("prompt-tuning-t", VocabPromptTuningConfig, apply, task_prefix=True)
