"""The provenance at the foot of every report: where the records came from, gathered from the
records themselves (the reporter's own machine is named only as the one that made the report)."""

from __future__ import annotations

import importlib.metadata
from collections import Counter

REPORT_PACKAGES = ("peftbench", "pandas", "scipy", "matplotlib")


def distinct(values) -> str:
    """``a`` when every record agrees; ``a (12), b (4)`` when they do not."""
    counts = Counter("unknown" if v is None else str(v) for v in values)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{v} ({n})" for v, n in counts.most_common())


def budget_of(record: dict):
    return record.get("budget", (record.get("config") or {}).get("budget"))


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def provenance_lines(records: list[dict], source: str) -> list[str]:
    """One line per fact; values that differ between records are listed with their counts."""
    provs = [r.get("provenance") or {} for r in records]
    packages = sorted({p for prov in provs for p in (prov.get("versions") or {})})
    n_ok = sum(r["status"] == "ok" for r in records)
    lines = [
        f"Records: {len(records)} ({n_ok} ok, {len(records) - n_ok} failed) from {source}.",
        f"Models: {distinct(r.get('model') for r in records)}.",
        "Versions: " + "; ".join(f"{p} {distinct((prov.get('versions') or {}).get(p) for prov in provs)}"
                                  for p in packages) + ".",
        f"Commit: {distinct(prov.get('git_commit') for prov in provs)}.",
        (f"Hardware: {distinct(prov.get('device') for prov in provs)}; "
        f"hosts: {distinct(prov.get('host') for prov in provs)}; "
        f"python {distinct(prov.get('python') for prov in provs)}."),
    ]
    budgets = [budget_of(r) for r in records]
    if any(b is not None for b in budgets):
        lines.append(f"Memory budget: {distinct(budgets)}.")
    lines.append("Report made with " + ", ".join(f"{p} {version(p)}" for p in REPORT_PACKAGES) + ".")
    return lines
