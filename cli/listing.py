"""``peftbench methods`` and ``peftbench compare``: what can be compared, and sweeps side by side."""

from __future__ import annotations

import json
import re


def one_line(text: str, width: int = 100) -> str:
    """A help text's first sentence on one line (peft's help texts run to paragraphs)."""
    text = re.sub(r"\s+", " ", text or "").strip()
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first if len(first) <= width else first[: width - 1] + "…"


def method_rows(names: list[str] | None = None) -> list[dict]:
    """Each method with its one-line help and its options (name, default, help), from the registry."""
    from methods import get_method, method_names

    rows = []
    for name in names or method_names():
        method = get_method(name)
        rows.append({"method": name, "help": method.help, "engine": method.engine,
                     "options": [{"name": o.name, "default": o.default, "help": one_line(o.help)}
                                 for o in method.options()]})
    return rows


def cmd_methods(args) -> int:
    from cli.main import fail

    try:
        rows = method_rows(args.name)
    except (KeyError, ValueError) as exc:
        return fail(exc.args[0] if isinstance(exc, KeyError) else exc)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        print(f"{row['method']:<18} {row['help']}")
        for o in row["options"]:
            print(f"    {o['name']:<24} {o['default']!s:<12} {o['help']}")
    return 0


def cmd_compare(args) -> int:
    from cli.main import fail
    from reports.compare import compare

    try:
        print(compare(args.dirs, args.format), end="")
    except (FileNotFoundError, ValueError) as exc:
        return fail(exc)
    return 0


def add_parsers(sub) -> None:
    """The ``methods`` and ``compare`` commands."""
    p = sub.add_parser("methods", help="the methods, with their options, defaults and help")
    p.add_argument("name", nargs="*", help="only these methods (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("compare", help="several sweep folders side by side, one column group per folder")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    p.add_argument("--format", choices=("md", "csv"), default="md")
    p.set_defaults(func=cmd_compare)
