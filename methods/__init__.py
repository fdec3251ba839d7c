"""Parameter-efficient fine-tuning methods; each module registers itself on import."""

from methods.registry import ParamCount, apply_method, get_method, method_names, register, resolve_prefix  # noqa: I001
# Registration order is the listing order: the paper's Table 1.
from methods import full, adapter, prompt, said, bitfit, compacter  # noqa: F401

__all__ = ["ParamCount", "apply_method", "get_method", "method_names", "register", "resolve_prefix"]
