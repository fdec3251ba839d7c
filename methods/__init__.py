"""Parameter-efficient fine-tuning methods; each family's module registers its methods when first
looked up (methods/registry.py)."""

from peftbench.methods.registry import (
    ParamCount,
    apply_method,
    check_method_name,
    check_options_used,
    get_method,
    method_label,
    method_names,
    options_for,
    register,
    resolve_prefix,
)

__all__ = ["ParamCount", "apply_method", "check_method_name", "check_options_used", "get_method", "method_label",
           "method_names", "options_for", "register", "resolve_prefix"]
