"""Parameter-efficient fine-tuning methods; each module registers itself on import."""

from methods import adapter, full  # noqa: F401  (registration)
from methods.registry import ParamCount, apply_method, get_method, method_names, register

__all__ = ["ParamCount", "apply_method", "get_method", "method_names", "register"]
