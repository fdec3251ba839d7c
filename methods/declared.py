"""Each method's option names and declared types, read from its family's source without importing it.

The config dataclasses in the method modules stay the one place an option is declared; importing them
imports torch (seconds, tens of seconds on a loaded machine), which a typo in a flag should not wait
for. So this reads the family modules as text (``ast``): each ``register("name", ConfigClass, ...)``
call, and that class's annotated fields with those of its bases (``ClassVar``s are no options). A
config that builds itself from its options (``from_options``: the peft bridge, whose options are
peft's fields) is not declared here: ``None``, and the caller asks the imported method instead.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from peftbench.methods.registry import FAMILIES, unknown_option

# annotation -> the YAML value types it accepts; other annotations are checked by the config itself
SIMPLE_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


@functools.lru_cache(maxsize=1)
def _declarations() -> dict[str, dict[str, str] | None]:
    """Method name -> {option: annotation text}, or None where the config builds itself."""
    classes: dict[str, tuple[list[str], dict[str, str], bool]] = {}
    registered: dict[str, str] = {}
    for family in FAMILIES:
        tree = ast.parse((Path(__file__).parent / f"{family}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                fields = {n.target.id: ast.unparse(n.annotation) for n in node.body
                          if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                          and "ClassVar" not in ast.unparse(n.annotation)}
                builds_itself = any(isinstance(n, ast.FunctionDef) and n.name == "from_options" for n in node.body)
                classes[node.name] = ([ast.unparse(b) for b in node.bases], fields, builds_itself)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "register"
                  and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[1], ast.Name)):
                registered[node.args[0].value] = node.args[1].id
    return {method: _fields(cls, classes) for method, cls in registered.items()}


def _fields(name: str, classes: dict) -> dict[str, str] | None:
    """The fields of class ``name``, its bases' first (as dataclasses order them); None when any class
    on the way builds itself or is not ours to read."""
    if name not in classes:
        return None
    bases, own, builds_itself = classes[name]
    if builds_itself:
        return None
    out: dict[str, str] = {}
    for base in bases:
        inherited = _fields(base, classes)
        if inherited is None:
            return None
        out.update(inherited)
    return {**out, **own}


def declared_options(method: str) -> dict[str, str] | None:
    """``method``'s options and their annotations, or None when only the imported method can tell."""
    return _declarations().get(method)


def option_problem(methods: list[str], options: dict) -> str | None:
    """One line for an option that none of ``methods`` declares, or of a simple declared type (int, float,
    bool, str) given another; None when every option may be right (some are only known on import)."""
    declared = [declared_options(m) for m in methods]
    if not methods or any(d is None for d in declared):
        return None
    for key, value in options.items():
        takers = [(m, d[key]) for m, d in zip(methods, declared, strict=True) if key in d]
        if not takers:
            if len(methods) == 1:
                return unknown_option(methods[0], key, declared[0])
            return f"option {key!r} is taken by none of: {', '.join(methods)}"
        for method, annotation in takers:
            accepted = SIMPLE_TYPES.get(annotation)
            if accepted and not (isinstance(value, accepted) and (bool in accepted or not isinstance(value, bool))):
                return f"method {method!r} option {key!r}: expected {annotation}, got {type(value).__name__}"
    return None

