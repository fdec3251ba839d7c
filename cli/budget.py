"""``peftbench budget``: the largest batch of each method under a memory budget, and its peak by category.

One method: its fit in full. Several (``--method`` repeated, every method by default, or a sweep
spec's with ``--config``): a table, a row as each method's search ends, every peak compared with
full fine-tuning's at one batch (budgets/compare.py): Table 3's memory column.
"""

from __future__ import annotations

import json
import sys

from peftbench.budgets.parse import (
    DEFAULT_BUDGET,
    DTYPE_NAMES,
    MARGIN,
    BudgetError,
    capacity,
    format_bytes,
    parse_budget,
)

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
    p.add_argument("--budget", help=f"GPU memory: 24GB (10^9 bytes, the default {DEFAULT_BUDGET}) or 24GiB (2^30)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--measure", dest="measure", action="store_true", default=None, help="probe on this GPU")
    how.add_argument("--estimate", dest="measure", action="store_false", help="fake tensors, no GPU needed")
    p.add_argument("--batch-size", type=int, help="the peak at this batch instead of the largest batch")
    p.add_argument("--dtype", choices=DTYPE_NAMES, default="float32")
    p.add_argument("--margin", type=float, default=MARGIN, help="share of the budget kept free (default %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")


def run(args, options: dict) -> int:
    """The subcommand's body; ``options`` are the parsed ``--option`` pairs."""
    import torch

    from peftbench.budgets.compare import compare_fits, fit_row

    try:
        budget, workloads = workloads_from(args, options)
        budget_bytes = parse_budget(budget)
        if args.measure and not torch.cuda.is_available():
            raise BudgetError("--measure needs a CUDA GPU; --estimate works without one")
        how = {"budget": budget, "budget_bytes": budget_bytes, "measure": args.measure,
               "batch_size": args.batch_size, "margin": args.margin}
        if len(workloads) == 1:
            row, _ = fit_row(workloads[0], **how)
            print(json.dumps(row, indent=2) if args.json else text(row, asked=args.batch_size is not None))
            return 0
    except (BudgetError, KeyError, ValueError) as exc:
        print(f"peftbench: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    say = ((lambda line: print(line, file=sys.stderr, flush=True)) if args.json
           else (lambda line: print(line, flush=True)))
    first = workloads[0]
    say(f"{first.model} · {first.source_len} source + {first.target_len} target tokens · {first.dtype} · "
        f"budget {budget}, {format_bytes(capacity(budget_bytes, args.margin))} usable after a {args.margin:.0%} margin")
    printer = TablePrinter(workloads, say)
    rows = compare_fits(workloads, on_row=printer, **how)
    how_found = next((r["how"] for r in rows if "how" in r), None)
    if how_found:
        say(f"all figures {how_found}")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 1 if any("error" in r for r in rows) else 0


class TablePrinter:
    """Prints each row of ``compare_fits`` as it ends, the header with the first that has a fit."""

    def __init__(self, workloads, say):
        from peftbench.methods import method_label

        self.label = lambda row: method_label(row["method"], row["options"])
        self.width = max(len(method_label(w.method, w.options)) for w in workloads)
        self.say, self.header = say, False

    def __call__(self, row: dict) -> None:
        w, at = self.width, row.get("reference_batch")
        if "error" in row:
            self.say(f"{self.label(row):<{w}} error: {row['error']}")
            return
        if not self.header:
            self.header = True
            self.say(f"{'method':<{w}} {'batch':>6} {'peak':>10} {'fixed':>10} {'per example':>12}"
                     + (f" {'at batch ' + str(at):>14} {'vs full':>8}" if at else "") + f" {'time':>7}")
        self.say(f"{self.label(row):<{w}} {row['batch_size']:>6} {format_bytes(row['peak_bytes']):>10} "
                 f"{format_bytes(row['fixed_bytes']):>10} {format_bytes(row['bytes_per_example']):>12}"
                 + (f" {format_bytes(row['peak_at_reference_bytes']):>14} {row['change_vs_full']:>+8.1%}" if at else "")
                 + f" {row['seconds']:>6.1f}s")


def workloads_from(args, options: dict):
    """The budget and a workload per method, from the flags over the spec of ``--config`` if given."""
    from peftbench.budgets.workload import Workload
    from peftbench.harness.spec import load_spec
    from peftbench.methods import check_options_used, method_names, options_for
    from peftbench.tasks import get_task

    spec = load_spec(args.config) if args.config else None
    base = spec.trials()[0] if spec else None
    model = args.model or (base.model if base else "tiny-t5")
    budget = args.budget or (base.budget if base else DEFAULT_BUDGET)
    task = args.task or (None if args.seq_len else base.task if base else None)
    if task is None and not args.seq_len:
        raise ValueError("say which lengths: --task TASK or --seq-len L (or --config SPEC)")
    if task:
        if args.target_len is not None:
            raise ValueError("--target-len goes with --seq-len; --task sets both lengths")
        source_len, target_len = get_task(task).max_source_length, get_task(task).max_target_length
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


def text(row: dict, *, asked: bool) -> str:
    from peftbench.methods import method_label

    kind = "estimated" if row["estimated"] else "measured"
    lines = [
        (f"{row['model']} · {method_label(row['method'], row['options'])} · {row['source_len']} source + "
         f"{row['target_len']} target tokens · {row['dtype']}"),
        (f"budget {row['budget']} ({row['budget_bytes']:,} bytes), {format_bytes(row['usable_bytes'])} usable "
         f"after a {row['margin']:.0%} margin"),
        f"{row['how']}; {row['probes']} probe steps, {row['seconds']:.1f} s",
        (f"batch {row['batch_size']}: {'fits' if row['fits'] else 'does NOT fit'}" if asked
         else f"largest batch that fits: {row['batch_size']} ({kind})"),
        f"peak memory at batch {row['batch_size']}: {format_bytes(row['peak_bytes'])} ({kind}), by category:",
    ]
    lines += [f"  {name.replace('_', ' '):<16} {format_bytes(n):>10}" for name, n in row["categories"].items() if n]
    lines.append(f"fixed {format_bytes(row['fixed_bytes'])} + {format_bytes(row['bytes_per_example'])} "
                 f"per example ({kind})")
    return "\n".join(lines)
