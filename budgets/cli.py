"""``peftbench budget``: the largest batch of a method under a memory budget, and its peak by category."""

from __future__ import annotations

import json
import sys
import time

from budgets.fit import Fit
from budgets.parse import BudgetError, format_bytes, parse_budget
from budgets.plan import MARGIN, capacity, find_fit
from budgets.workload import DTYPES, Workload
from harness.config import method_label

DEFAULT_TARGET_LEN = 16  # with --seq-len: room for a label of a few words


def add_arguments(p) -> None:
    p.add_argument("--model", default="tiny-t5", help="tiny-t5, t5-base, a hub id or a path (its config is used)")
    p.add_argument("--method", required=True)
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method option (repeatable)")
    lengths = p.add_mutually_exclusive_group(required=True)
    lengths.add_argument("--task", help="take the task's source and target lengths")
    lengths.add_argument("--seq-len", type=int, help="source length in tokens")
    p.add_argument("--target-len", type=int, help=f"target length with --seq-len (default {DEFAULT_TARGET_LEN})")
    p.add_argument("--budget", default="24GB", help="GPU memory: 24GB (10^9 bytes) or 24GiB (2^30)")
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
        budget_bytes = parse_budget(args.budget)
        workload = workload_from(args, options)
        if args.measure and not torch.cuda.is_available():
            raise BudgetError("--measure needs a CUDA GPU; --estimate works without one")
        start = time.perf_counter()
        fit, _ = find_fit(workload, budget_bytes=budget_bytes, measure=args.measure, batch_size=args.batch_size,
                          margin=args.margin)
    except (BudgetError, KeyError, ValueError) as exc:
        print(f"peftbench: {str(exc).strip(chr(39))}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    out = {**workload.describe(), "budget": args.budget, "budget_bytes": budget_bytes, "margin": args.margin,
           "usable_bytes": capacity(budget_bytes, args.margin), **fit.to_dict(), "seconds": round(seconds, 2),
           "fits": fit.peak_bytes <= capacity(budget_bytes, args.margin)}
    print(json.dumps(out, indent=2) if args.json else text(out, fit, asked=args.batch_size is not None))
    return 0


def workload_from(args, options: dict) -> Workload:
    if args.task:
        if args.target_len is not None:
            raise ValueError("--target-len goes with --seq-len; --task sets both lengths")
        from tasks import get_task

        task = get_task(args.task)
        source_len, target_len = task.max_source_length, task.max_target_length
    else:
        source_len, target_len = args.seq_len, args.target_len or DEFAULT_TARGET_LEN
    return Workload(args.model, args.method, options, source_len=source_len, target_len=target_len, dtype=args.dtype)


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
