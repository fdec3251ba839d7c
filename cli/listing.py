"""``peftbench methods`` and ``peftbench compare``: their parsers and the method listing."""

from __future__ import annotations

import re


def one_line(text: str, width: int = 100) -> str:
    """A help text's first sentence on one line (peft's help texts run to paragraphs)."""
    text = re.sub(r"\s+", " ", text or "").strip()
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first if len(first) <= width else first[: width - 1] + "…"


def method_rows(names: list[str] | None = None) -> list[dict]:
    """Each method with its one-line help and its options (name, default, help), from the registry."""
    from peftbench.methods import get_method, method_names

    rows = []
    for name in names or method_names():
        method = get_method(name)
        rows.append({"method": name, "help": method.help, "engine": method.engine,
                     "options": [{"name": o.name, "default": o.default, "help": one_line(o.help)}
                                 for o in method.options()]})
    return rows


def add_parsers(sub, *, methods, compare) -> None:
    """The ``methods`` and ``compare`` commands, run by the given functions."""
    p = sub.add_parser("methods", help="the methods, with their options, defaults and help")
    p.add_argument("name", nargs="*", help="only these methods (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=methods)

    p = sub.add_parser("compare", help="several sweep folders side by side, one column group per folder")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--format", choices=("md", "csv"), default="md")
    p.set_defaults(func=compare)
