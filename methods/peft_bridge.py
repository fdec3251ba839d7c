"""Any method of the peft library (huggingface/peft), applied to T5 through peft's own tuners.

    peft       {peft_type: LORA, r: 8, target_modules: [q, v]}, or {config_file: adapter_config.json}
    lora, ia3  peft's LoRA and (IA)³ with peft's defaults for T5 (LoRA on q, v; (IA)³ on k, v, wo)

The tuner injects its layers into the model in place (as ``peft.inject_adapter_in_model`` does), so
the model stays a ``T5ForConditionalGeneration``: the registry freezes, counts and checkpoints it
like any other method, on real, meta or fake tensors. Tuners that keep state shared by all their
layers (VeRA's random projections) keep it on the layers, which hold references to it. Prompt
learning (prefix, prompt and p-tuning) needs peft's model wrapper around the forward pass; it is
rejected here (``prompt-tuning-r``/``-t`` are the registry's own prompt tuning).

In a mixture, ``sharing=per-task`` injects one peft adapter per task, named after the task
(``lora_A.rte.weight``), with peft's multi-adapter support; a pre-hook on each adapted layer makes the
current task's adapter its active one before every call (peft's own ``set_adapter`` would also flip
``requires_grad``, which the registry owns). ``shared`` is the one adapter, ``default``.

AdaLoRA runs as its SVD-form adapters at the initial rank: the rank reallocation needs peft's
``update_and_allocate`` called from the training loop, which the one loop here does not do.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from peftbench.methods.multitask import TaskSwitch, check_sharing, sharing_field, task_switch
from peftbench.methods.registry import Option, option_list, register

# Fields of peft's base config that describe a saved adapter, not the method: not options here.
_BOOKKEEPING = {"base_model_name_or_path", "revision", "peft_type", "task_type", "inference_mode",
                "auto_mapping", "peft_version", "runtime_config"}
# The bridge's own keys; every other option is a field of peft's config for the peft type.
_OWN = ("peft_type", "config_file", "sharing")
_OWN_EVEN_WITH_A_FIXED_TYPE = ("config_file", "sharing")
DEFAULT_TYPE = "LORA"


# Types that wrap the model's forward (peft's PeftModel or their own) rather than adapt its layers:
# adaption prompt (LLaMA attention), shadow, X-LoRA (a classifier over adapters).
_WRAPPERS = {"ADAPTION_PROMPT", "SHADOW", "XLORA"}


def peft_config_classes() -> dict:
    """peft's config class of each peft type that can adapt a T5 model in place, by type name."""
    from peft.config import PromptLearningConfig
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING

    return {str(t.value): cls for t, cls in PEFT_TYPE_TO_CONFIG_MAPPING.items()
            if t in PEFT_TYPE_TO_TUNER_MAPPING and str(t.value) not in _WRAPPERS
            and not issubclass(cls, PromptLearningConfig)}


def _config_class(peft_type: str):
    classes = peft_config_classes()
    if peft_type not in classes:
        raise ValueError(f"peft_type {peft_type!r} cannot adapt T5 in place (known: {', '.join(sorted(classes))}; "
                         "prompt learning: use prompt-tuning-r or prompt-tuning-t)")
    return classes[peft_type]


def _read_config_file(path: str) -> dict:
    """A saved peft config (``adapter_config.json``, or the folder holding one), as a dict: a regular
    file under the config files' size cap (peftbench/files.py), never a FIFO or a device."""
    from peftbench.files import read_json

    file = Path(path)
    file = file / "adapter_config.json" if file.is_dir() else file
    try:
        saved = read_json(file, kind="config", follow=True)  # the user named it in their spec
    except (OSError, ValueError) as exc:
        raise ValueError(f"config_file {path!r}: cannot read a peft config: {exc}") from None
    if not isinstance(saved, dict) or "peft_type" not in saved:
        raise ValueError(f"config_file {path!r}: not a peft config (no peft_type)")
    return saved


@dataclass(frozen=True)
class PeftBridgeConfig:
    """Any peft method: peft_type (LORA, IA3, LOHA, LOKR, ADALORA, VERA, …) and peft's options for it."""

    peft_type: str | None = field(default=None, metadata={
        "help": f"peft's method: LORA, IA3, LOHA, LOKR, ADALORA, VERA, BOFT, … "
                f"(default: config_file's, else {DEFAULT_TYPE})"})
    config_file: str | None = field(default=None, metadata={
        "help": "a saved adapter_config.json (or its folder); the other options override its values"})
    options: dict = field(default_factory=dict, metadata={
        "help": "any other key: a field of peft's config for peft_type (r, target_modules, …)"})
    sharing: str = sharing_field(("shared", "per-task"), note="per-task: one peft adapter per task, named after it")

    fixed_type: ClassVar[str | None] = None  # the named entries' peft type

    def __post_init__(self):
        check_sharing(self)

    @classmethod
    def from_options(cls, options: dict) -> PeftBridgeConfig:
        """The flat options of a spec (``{peft_type: LORA, r: 8}``) as a config, checked against peft's."""
        options = dict(options)
        own = {k: options.pop(k) for k in _OWN if k in options}
        if cls.fixed_type and own.get("peft_type", cls.fixed_type) != cls.fixed_type:
            raise ValueError(f"peft_type is {cls.fixed_type} for this method, got {own['peft_type']!r}")
        cfg = cls(**own, options=options)
        cfg.peft_config()  # every unknown type or option fails now, before a model loads
        return cfg

    @classmethod
    def takes_option(cls, key: str) -> bool:
        if key in _OWN:
            return cls.fixed_type is None or key in _OWN_EVEN_WITH_A_FIXED_TYPE
        if cls.fixed_type:
            return key in {o.name for o in cls.option_list()}
        return any(key in {o.name for o in peft_options(c)} for c in peft_config_classes().values())

    @classmethod
    def option_list(cls) -> list[Option]:
        """The bridge's own options, and for a named entry peft's options of its type, with peft's
        defaults and help."""
        own = [o for o in option_list(cls) if o.name != "options" and not (cls.fixed_type and o.name == "peft_type")]
        if cls.fixed_type is None:
            return own + [o for o in option_list(cls) if o.name == "options"]
        return own + [model_default(o, cls.fixed_type) for o in peft_options(_config_class(cls.fixed_type))]

    def peft_config(self):
        """peft's config object: the file's values, then the options (as a seq2seq LM task)."""
        values = _read_config_file(self.config_file) if self.config_file else {}
        peft_type = self.fixed_type or self.peft_type or values.get("peft_type") or DEFAULT_TYPE
        config_cls = _config_class(str(peft_type).upper())
        known = {f.name for f in dataclasses.fields(config_cls)} - _BOOKKEEPING
        unknown = sorted(set(self.options) - known)
        if unknown:
            raise ValueError(f"peft {config_cls.__name__} has no option {unknown[0]!r} "
                             f"(options: {', '.join(sorted(known))})")
        kept = {k: v for k, v in values.items() if k in known}  # a newer peft's extra keys, as peft drops them
        return config_cls(**{**kept, **self.options, "task_type": "SEQ_2_SEQ_LM"})


def peft_options(config_cls) -> list[Option]:
    """peft's own options of a config class: name, default and help from its dataclass fields."""
    return [o for o in option_list(config_cls) if o.name not in _BOOKKEEPING]


def model_default(option: Option, peft_type: str) -> Option:
    """``option`` with the default in effect: where peft's default is None and peft fills it in per model type
    (LoRA's ``target_modules``, (IA)³'s ``target_modules`` and ``feedforward_modules``), its T5 value, with
    BART's in the help: what ``methods NAME`` shows, not the None a reader cannot act on."""
    from peft.utils import constants

    kind = {"target_modules": "TARGET_MODULES", "feedforward_modules": "FEEDFORWARD_MODULES"}.get(option.name)
    mapping = getattr(constants, f"TRANSFORMERS_MODELS_TO_{peft_type}_{kind}_MAPPING", None) if kind else None
    if option.default is not None or not mapping or "t5" not in mapping:
        return option
    bart = f"; BART: {', '.join(mapping['bart'])}" if "bart" in mapping else ""
    return Option(option.name, list(mapping["t5"]),
                  f"unset: peft's choice for the model (T5: {', '.join(mapping['t5'])}{bart}). {option.help}")


@dataclass(frozen=True)
class LoraConfig(PeftBridgeConfig):
    """LoRA (Hu et al., 2021) through peft: low-rank updates of T5's q and v (peft's T5 defaults)."""

    fixed_type: ClassVar[str | None] = "LORA"


@dataclass(frozen=True)
class IA3Config(PeftBridgeConfig):
    """(IA)³ (Liu et al., 2022) through peft: learned scalings of T5's k, v and wo (peft's T5 defaults)."""

    fixed_type: ClassVar[str | None] = "IA3"


def apply(model: nn.Module, cfg: PeftBridgeConfig) -> list[str]:
    """Inject peft's layers into ``model`` in place; the adapters' parameters train."""
    from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING

    peft_config, switch = cfg.peft_config(), task_switch(model)
    names = list(switch.tasks) if switch is not None and cfg.sharing == "per-task" else ["default"]
    with _adapters_made_in_place(model):
        # The tuner marks only its adapters trainable; the model is kept, the tuner wrapper dropped.
        tuner = PEFT_TYPE_TO_TUNER_MAPPING[peft_config.peft_type](model, peft_config, adapter_name=names[0])
        trainable = [name for name, p in model.named_parameters() if p.requires_grad]
        for task in names[1:]:
            # biases (``bias: all``, VL-Adapter's LoRA) are the model's own, one set for every task: marked
            # trainable with the first adapter; peft refuses a second adapter that asks for them too
            no_bias = {"bias": "none"} if getattr(peft_config, "bias", "none") != "none" else {}
            tuner.peft_config[task] = dataclasses.replace(peft_config, **no_bias)
            tuner.inject_adapter(model, task)
    if len(names) == 1:
        return trainable
    follow_the_switch(model, switch)
    # what peft trains of the first task's adapter, for every task's (a bias, no task's own: once)
    return list(dict.fromkeys(".".join(task if part == names[0] else part for part in name.split("."))
                              for task in names for name in trainable))


def follow_the_switch(model: nn.Module, switch: TaskSwitch) -> None:
    """Before each call of an adapted layer, make the current task's adapter the layer's active one."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    def activate(layer, args):
        layer._active_adapter = switch.current

    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.register_forward_pre_hook(activate)


@contextlib.contextmanager
def _adapters_made_in_place(model: nn.Module):
    """On fake tensors (the memory estimate), make peft's moves of each new adapter to its base
    layer's device no-ops where nothing would change: ``Module.to`` swaps fake parameters even then,
    which fake tensors refuse. Adapters are made on the model's device and dtype already (models are
    built in place, never converted)."""
    from torch._subclasses.fake_tensor import is_fake

    if not any(is_fake(p) for p in model.parameters()):
        yield
        return
    to = nn.Module.to

    def to_unless_there(module, *args, **kwargs):
        device, dtype, *_ = torch._C._nn._parse_to(*args, **kwargs)
        there = all((device is None or t.device == device) and (dtype is None or t.dtype == dtype)
                    for t in [*module.parameters(), *module.buffers()])
        return module if there else to(module, *args, **kwargs)

    nn.Module.to = to_unless_there
    try:
        yield
    finally:
        nn.Module.to = to


register("peft", PeftBridgeConfig, apply, task_prefix=True)
register("lora", LoraConfig, apply, task_prefix=True)
register("ia3", IA3Config, apply, task_prefix=True)
