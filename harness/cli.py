"""The ``peftbench`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import yaml


def parse_options(pairs: list[str]) -> dict:
    """``["phm_dim=8", "zero_stage=2"]`` -> ``{"phm_dim": 8, "zero_stage": 2}`` (values parsed as YAML)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"peftbench: --option expects KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def parse_batch(value: str | None) -> int | str | None:
    """``--batch``: ``max``, a positive integer, or absent."""
    if value is None or value == "max":
        return value
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"peftbench: --batch expects max or a positive integer, got {value!r}")
    return int(value)


def cmd_sweep(args) -> int:
    from harness.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        print(f"peftbench: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(spec.describe())
        return 0
    from harness.sweep import SweepError, run_sweep
    from reports.summary import report

    try:
        records = run_sweep(spec, args.out, address=args.address, storage=args.storage, resume=args.resume)
    except SweepError as exc:
        print(f"peftbench: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in records if r["status"] != "ok"]
    print(f"{len(records) - len(failed)} ok, {len(failed)} failed; records in {args.out}/results\n")
    print(report(args.out))
    return 0 if records and not failed else 1


def cmd_trial(args) -> int:
    from harness.config import TrialConfig
    from harness.trial import run_trial

    cfg = TrialConfig(
        model=args.model, method=args.method, method_options=parse_options(args.option), task=args.task,
        learning_rate=args.lr, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
        batch=parse_batch(args.batch), budget=args.budget, warmup_steps=args.warmup_steps,
        max_source_length=args.max_source_length, data=args.data, train_size=args.train_size,
    )
    record = run_trial(cfg, args.out)
    print(json.dumps({k: record[k] for k in ("trial_id", "status", "error", "val_score", "test_score",
                                             "trainable_pct", "peak_memory_bytes", "time_per_epoch_s")}, indent=2))
    return 0 if record["status"] == "ok" else 1


def cmd_tasks(args) -> int:
    from tasks import catalog

    try:
        if args.action == "show":
            rows = catalog.examples(args.name, args.split, args.n)
            text = "\n\n".join(f"source: {r['source']}\ntarget: {r['target']}" for r in rows)
        else:
            rows = catalog.list_tasks()
            text = catalog.table(rows)
    except (KeyError, ValueError) as exc:
        print(f"peftbench: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else text)
    return 0


def cmd_budget(args) -> int:
    from budgets.cli import run

    return run(args, parse_options(args.option))


def cmd_report(args) -> int:
    from reports.summary import report

    try:
        print(report(args.dir, args.format, out=args.out, baseline=args.baseline))
    except FileNotFoundError as exc:
        print(f"peftbench: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_params(args) -> int:
    from harness.accounting import format_table, param_table

    try:
        rows = param_table(args.model, args.method, parse_options(args.option))
    except (KeyError, ValueError) as exc:
        print(f"peftbench: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 1 if any("error" in r for r in rows) else 0


def cmd_bench_step(args) -> int:
    import torch

    from harness.bench import bench_step

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        rows = bench_step(args.model, args.methods.split(","), batch_size=args.batch_size, seq_len=args.seq_len,
                          target_len=args.target_len, options=parse_options(args.option), repeats=args.repeats,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except (KeyError, ValueError) as exc:
        print(f"peftbench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['method']:<20} median step {r['median_step_s']:8.3f} s   ×{r['ratio']:.3f} (paired median)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peftbench", description="Fair benchmarks of parameter-efficient fine-tuning on T5.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="run every trial of a sweep spec under Ray Tune")
    p.add_argument("spec", help="sweep spec (YAML), e.g. configs/smoke.yaml")
    p.add_argument("--out", default="runs/sweep", help="output folder (records in OUT/results)")
    p.add_argument("--address", default=None,
                   help="an existing Ray cluster (default: $RAY_ADDRESS, else start a local Ray)")
    p.add_argument("--storage", default=None,
                   help="where Ray keeps the experiment (a shared path or URI on multi-node clusters; default OUT/ray)")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed sweep in OUT: finished trials are kept, the rest run")
    p.add_argument("--dry-run", action="store_true", help="validate the spec and print the grid size only")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("trial", help="run one trial in this process, without Ray (e.g. to measure on one GPU)")
    p.add_argument("--model", default="tiny-t5", help="tiny-t5, a hub id (ID@REVISION pins) or a local path")
    p.add_argument("--method", required=True)
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method option (repeatable)")
    p.add_argument("--task", required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32, help="fixed micro-batch, when --batch is not given")
    p.add_argument("--batch", default=None, help="max, or examples per optimizer step (the budget sets the micro-batch)")
    p.add_argument("--budget", default="24GB", help="GPU memory per trial: 24GB or 24GiB")
    p.add_argument("--warmup-steps", type=int, default=500)
    p.add_argument("--max-source-length", type=int, default=None)
    p.add_argument("--data", choices=("auto", "hub", "fixtures"), default="auto")
    p.add_argument("--train-size", type=int, default=None, help="subsample training to N examples (per seed)")
    p.add_argument("--out", default="runs/trial")
    p.set_defaults(func=cmd_trial)

    p = sub.add_parser("tasks", help="list the tasks (splits, metrics, lengths); 'show NAME' prints examples")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks, action="list")
    show = p.add_subparsers(dest="action").add_parser("show", help="formatted source/target pairs from the fixtures")
    show.add_argument("name")
    show.add_argument("--split", default="validation", choices=("train", "validation", "test"))
    show.add_argument("-n", type=int, default=3, help="how many examples")
    show.add_argument("--json", action="store_true")

    p = sub.add_parser("budget", help="the largest batch that fits a memory budget, and its peak memory")
    from budgets.cli import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_budget)

    p = sub.add_parser("params", help="trainable parameters of each method, from the model's configuration only")
    p.add_argument("--model", default="tiny-t5", help="tiny-t5, t5-small … t5-11b, a hub id or a local path")
    p.add_argument("--method", action="append", help="a method (repeatable; default: all)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="an option, for the methods that take it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("bench-step", help="median training-step time of methods, interleaved, on random weights")
    p.add_argument("--model", default="tiny-t5")
    p.add_argument("--methods", required=True, help="comma-separated; ratios are to the first")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="an option, for the methods that take it")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--target-len", type=int, default=None, help="label length (default: --seq-len)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_step)

    p = sub.add_parser("report", help="the comparison tables and figures of a sweep folder")
    p.add_argument("dir")
    p.add_argument("--format", choices=("md", "csv", "latex", "html", "all"), default="md",
                   help="md prints to the terminal; the others write files (default folder: DIR)")
    p.add_argument("--out", default=None, help="output folder, or a file with the format's suffix")
    p.add_argument("--baseline", default="full", help="the method every other is compared with")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
