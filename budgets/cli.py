"""``peftbench budget``: the largest batch of each method under a memory budget, and its peak by category.

One method: its fit in full. Several (``--method`` repeated, every method by default, or a sweep
spec's with ``--config``): a table, a row as each method's search ends, and every peak compared
with full fine-tuning's at one batch, full fine-tuning's largest: Table 3's memory column.
"""

from __future__ import annotations

import json
import sys
import time

from budgets.fit import Fit
from budgets.parse import BudgetError, format_bytes, parse_budget
from budgets.plan import MARGIN, capacity, find_fit
from budgets.workload import DTYPES, Workload
from harness.accounting import check_options_used, options_for
from harness.config import method_label
from harness.spec import load_spec
from methods import method_names

DEFAULT_TARGET_LEN = 16  # with --seq-len: room for a label of a few words


def add_arguments(p) -> None:
    p.add_argument("--model", help="tiny-t5 (default), t5-base, a hub id or a path (its config is used)")
    p.add_argument("--method", action="append", help="a method (repeatable; default: every method, or the spec's)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="an option, for the methods that take it")
    p.add_argument("--config", metavar="SPEC", help="a sweep spec: its model, budget, methods with their options, "
                                                   "first task (the flags above override)")
    lengths = p.add_mutually_exclusive_group()
    lengths.add_argument("--task", help="take the task's source and target lengths")
    lengths.add_argument("--seq-len", type=int, help="source length in tokens")
    p.add_argument("--target-len", type=int, help=f"target length with --seq-len (default {DEFAULT_TARGET_LEN})")
    p.add_argument("--budget", help="GPU memory: 24GB (10^9 bytes, the default) or 24GiB (2^30)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--measure", dest="measure", action="store_true", default=None, help="probe on this GPU")
    how.add_argument("--estimate", dest="measure", action="store_false", help="fake tensors, no GPU needed")
    p.add_argument("--batch-size", type=int, help="the peak at this batch instead of the largest batch")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--margin", type=float, default=MARGIN, help="share of the budget kept free (default %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")


def run(args, options: dict) -> int:
    """The subcommand's body; ``options`` are the parsed ``--option`` pairs."""
    import torch

    try:
        budget, workloads = workloads_from(args, options)
        budget_bytes = parse_budget(budget)
        if args.measure and not torch.cuda.is_available():
            raise BudgetError("--measure needs a CUDA GPU; --estimate works without one")
        if len(workloads) == 1:
            out, fit = answer(workloads[0], args, budget, budget_bytes)
            print(json.dumps(out, indent=2) if args.json else text(out, fit, asked=args.batch_size is not None))
            return 0
    except (BudgetError, KeyError, ValueError) as exc:
        print(f"peftbench: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    return compare(workloads, args, budget, budget_bytes)


def answer(workload: Workload, args, budget: str, budget_bytes: int) -> tuple[dict, Fit]:
    """One workload's fit, with everything a reader needs to know how it was found."""
    start = time.perf_counter()
    fit, _ = find_fit(workload, budget_bytes=budget_bytes, measure=args.measure, batch_size=args.batch_size,
                      margin=args.margin)
    usable = capacity(budget_bytes, args.margin)
    out = {**workload.describe(), "budget": budget, "budget_bytes": budget_bytes, "margin": args.margin,
           "usable_bytes": usable, **fit.to_dict(), "seconds": round(time.perf_counter() - start, 2),
           "fits": fit.peak_bytes <= usable}
    return out, fit


def compare(workloads: list[Workload], args, budget: str, budget_bytes: int) -> int:
    """Every workload's fit, a row printed as each ends; peaks compared with full fine-tuning's at its batch.

    "At the reference batch" is each method's line, fixed + batch × per example, at full fine-tuning's
    batch (``--batch-size`` if given): at the batch that fits, every peak fills the budget.
    """
    rows, reference, header = [], None, False
    width = max(len(method_label(w.method, w.options)) for w in workloads)
    first = workloads[0]
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else (lambda line: print(line, flush=True))
    say(f"{first.model} · {first.source_len} source + {first.target_len} target tokens · {first.dtype} · "
        f"budget {budget}, {format_bytes(capacity(budget_bytes, args.margin))} usable after a {args.margin:.0%} margin")
    # full fine-tuning first: its batch is where every other peak is compared
    for workload in sorted(workloads, key=lambda w: w.method != "full"):
        label = method_label(workload.method, workload.options)
        try:
            out, fit = answer(workload, args, budget, budget_bytes)
        except (BudgetError, ValueError) as exc:
            rows.append({**workload.describe(), "error": str(exc)})
            say(f"{label:<{width}} error: {exc}")
            continue
        if reference is None and workload.method == "full":
            reference = fit
        if reference is not None:
            at = fit.fixed_bytes + reference.batch_size * fit.bytes_per_example
            out |= {"reference_batch": reference.batch_size, "peak_at_reference_bytes": round(at),
                    "change_vs_full": at / reference.peak_bytes - 1}
        rows.append(out)
        if not header:
            header = True
            say(f"{'method':<{width}} {'batch':>6} {'peak':>10} {'fixed':>10} {'per example':>12}"
                + (f" {'at batch ' + str(reference.batch_size):>14} {'vs full':>8}" if reference else "") + f" {'time':>7}")
        say(f"{label:<{width}} {fit.batch_size:>6} {format_bytes(fit.peak_bytes):>10} {format_bytes(fit.fixed_bytes):>10} "
            f"{format_bytes(fit.bytes_per_example):>12}"
            + (f" {format_bytes(out['peak_at_reference_bytes']):>14} {out['change_vs_full']:>+8.1%}" if reference else "")
            + f" {out['seconds']:>6.1f}s")
    how = next((r["how"] for r in rows if "how" in r), None)
    if how:
        say(f"all figures {how}")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 1 if any("error" in r for r in rows) else 0


def workloads_from(args, options: dict) -> tuple[str, list[Workload]]:
    """The budget and a workload per method, from the flags over the spec of ``--config`` if given."""
    spec = load_spec(args.config) if args.config else None
    model = args.model or (spec.model if spec else "tiny-t5")
    budget = args.budget or (spec.budget if spec else "24GB")
    if args.task or args.seq_len:
        task = args.task
    elif spec:
        task = spec.tasks[0]
    else:
        raise ValueError("say which lengths: --task TASK or --seq-len L (or --config SPEC)")
    if task:
        if args.target_len is not None:
            raise ValueError("--target-len goes with --seq-len; --task sets both lengths")
        from tasks import get_task

        spec_of_task = get_task(task)
        source_len, target_len = spec_of_task.max_source_length, spec_of_task.max_target_length
    else:
        source_len, target_len = args.seq_len, args.target_len or DEFAULT_TARGET_LEN
    if spec:
        missing = sorted(set(args.method or ()) - {m.name for m in spec.methods})
        if missing:
            raise ValueError(f"{args.config} has no method {missing[0]!r}")
        methods = [(m.name, m.options) for m in spec.methods if not args.method or m.name in args.method]
    else:
        methods = [(name, {}) for name in (args.method or method_names())]
    if len(methods) > 1:
        check_options_used([name for name, _ in methods], options)
        methods = [(name, {**own, **options_for(name, options)}) for name, own in methods]
    else:
        methods = [(name, {**own, **options}) for name, own in methods]
    return budget, [Workload(model, name, own, source_len=source_len, target_len=target_len, dtype=args.dtype)
                    for name, own in methods]


def text(out: dict, fit: Fit, *, asked: bool) -> str:
    kind = "estimated" if fit.estimated else "measured"
    lines = [
        (f"{out['model']} · {method_label(out['method'], out['options'])} · {out['source_len']} source + "
         f"{out['target_len']} target tokens · {out['dtype']}"),
        (f"budget {out['budget']} ({out['budget_bytes']:,} bytes), {format_bytes(out['usable_bytes'])} usable "
         f"after a {out['margin']:.0%} margin"),
        f"{fit.how}; {fit.probes} probe steps, {out['seconds']:.1f} s",
        (f"batch {fit.batch_size}: {'fits' if out['fits'] else 'does NOT fit'}" if asked
         else f"largest batch that fits: {fit.batch_size} ({kind})"),
        f"peak memory at batch {fit.batch_size}: {format_bytes(fit.peak_bytes)} ({kind}), by category:",
    ]
    lines += [f"  {name.replace('_', ' '):<16} {format_bytes(n):>10}" for name, n in fit.categories.items() if n]
    lines.append(f"fixed {format_bytes(fit.fixed_bytes)} + {format_bytes(fit.bytes_per_example)} per example ({kind})")
    return "\n".join(lines)
