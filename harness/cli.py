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


def cmd_sweep(args) -> int:
    from harness.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        print(f"peftbench: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"{spec.name}: {len(spec.trials())} trials = {len(spec.methods)} methods × {len(spec.tasks)} "
              f"tasks × {len(spec.learning_rates)} learning rates × {len(spec.seeds)} seeds")
        return 0
    from harness.sweep import run_sweep
    from reports.summary import report

    records = run_sweep(spec, args.out, address=args.address)
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
        warmup_steps=args.warmup_steps, max_source_length=args.max_source_length, data=args.data,
    )
    record = run_trial(cfg, args.out)
    print(json.dumps({k: record[k] for k in ("trial_id", "status", "error", "val_score", "test_score",
                                             "trainable_pct", "peak_memory_bytes", "time_per_epoch_s")}, indent=2))
    return 0 if record["status"] == "ok" else 1


def cmd_report(args) -> int:
    from reports.summary import report

    try:
        print(report(args.dir, args.format))
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
    p.add_argument("--address", default=None, help="an existing Ray cluster (default: start a local Ray)")
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
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-steps", type=int, default=500)
    p.add_argument("--max-source-length", type=int, default=None)
    p.add_argument("--data", choices=("auto", "hub", "fixtures"), default="auto")
    p.add_argument("--out", default="runs/trial")
    p.set_defaults(func=cmd_trial)

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

    p = sub.add_parser("report", help="the comparison table of a sweep folder")
    p.add_argument("dir")
    p.add_argument("--format", choices=("md", "csv"), default="md")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
