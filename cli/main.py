"""The ``peftbench`` command line: every command of every package, one parser.

Building the parser imports nothing heavy (no torch, Ray or pandas), so ``--help`` is instant; each
command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from peftbench.engine import PRECISIONS
from peftbench.harness.config import ConfigError, TrialConfig, check_known, default_of
from peftbench.methods.registry import PREFIX_SETTINGS
from peftbench.tasks.base import DATA_SOURCES, LABEL_STYLES
from peftbench.tasks.catalog import SPLITS


def fail(message: str) -> int:
    """A command's one-line error; exit status 2."""
    print(f"peftbench: {message}", file=sys.stderr)
    return 2


def usage_error(message: str):
    """Stop at a mistake in the flags: one line, exit status 2 (as argparse's own)."""
    raise SystemExit(fail(message))


# --option values are YAML parsed like a spec, with tighter bounds: a flag is a word or a short list
MAX_OPTION_BYTES = 64 * 1024
MAX_OPTION_NODES = 10_000


def parse_options(pairs: list[str] | None, *, methods: list[str] | None = None) -> dict:
    """``["phm_dim=8", "zero_stage=2"]`` -> ``{"phm_dim": 8, "zero_stage": 2}``: values parsed as YAML
    through the specs' bounded loader; ``key=a,b,c`` is a list where an option of ``methods`` is one."""
    from peftbench.harness.spec import check_yaml
    from peftbench.methods.declared import option_problem

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            usage_error(f"--option expects KEY=VALUE, got {pair[:80]!r}")
        if len(value.encode()) > MAX_OPTION_BYTES:
            usage_error(f"--option {key[:80]}: {len(value.encode())} bytes; a value is at most {MAX_OPTION_BYTES}")
        out[key] = check_yaml(value, lambda msg, key=key: usage_error(f"--option {key[:80]}: {msg}"),
                              max_nodes=MAX_OPTION_NODES)
    # a typo'd name or a wrong simple type, from the methods' declarations read as text: before torch loads
    if methods and (problem := option_problem(list(methods), out)):
        usage_error(f"--option: {problem}")
    for key, value in out.items():
        if isinstance(value, str) and "," in value and _list_option(key, methods):
            out[key] = [part.strip() for part in value.split(",") if part.strip()]
    return out


def _list_option(key: str, methods: list[str] | None) -> bool:
    """Whether option ``key`` of one of ``methods`` (default: every method) takes a list: its default
    is one, or, for a method through peft, peft's field is declared a list (``target_modules``)."""
    import dataclasses

    from peftbench.methods import get_method, method_names
    from peftbench.methods.peft_bridge import peft_config_classes

    peft_lists = {f.name for cls in peft_config_classes().values() for f in dataclasses.fields(cls)
                  if "list" in str(f.type)}
    for name in methods or method_names():
        try:
            method = get_method(name)
        except (KeyError, ValueError):
            continue
        if any(o.name == key and isinstance(o.default, (list, tuple)) for o in method.options()):
            return True
        if key in peft_lists and hasattr(method.config_cls, "peft_config") and method.config_cls.takes_option(key):
            return True
    return False


def model_error(name: str) -> str | None:
    """The one-line error of a model name that cannot load (no folder, no weights, not in the hub's
    cache while the hub is unreachable: found out by the hub probe in about a second); None: it can."""
    from peftbench.models.names import model_problem
    from peftbench.tasks.hub import hub_reachable

    problem = model_problem(name, probe=hub_reachable)
    return f"--model: {problem}" if problem else None


def parse_batch(value: str | None) -> int | str | None:
    """``--batch``: ``max``, a positive integer, or absent."""
    if value is None or value == "max":
        return value
    if not value.isdigit() or int(value) < 1:
        usage_error(f"--batch expects max or a positive integer, got {value[:80]!r}")
    return int(value)


def cmd_sweep(args) -> int:
    from peftbench.budgets.cache import PEAKS_FILE, PlannedPeaks
    from peftbench.harness.spec import SpecError, check_fixed_batches, load_spec

    peaks = PlannedPeaks(Path(args.out) / PEAKS_FILE)
    try:
        spec, narrow = load_spec(args.spec, include_paths=tuple(args.include_path or ())), narrowing(args)
        check_fixed_batches(spec, args.spec, peaks=peaks)
        spec = with_log_samples(with_loggers(spec, args.logger or []), args.log_samples)
        selected = len(narrow.points(spec))
    except (SpecError, ValueError) as exc:
        return fail(exc)
    if args.dry_run:
        total = len(spec.points())
        print(spec.describe() + (f"\n  narrowed to {selected} of {total} trials" if selected < total else ""))
        from peftbench.cli.dry_run import cost_lines
        from peftbench.harness.sweep import SweepError

        try:
            print("\n".join(cost_lines(spec, args.out, calibrate_first=args.calibrate, address=args.address)))
        except SweepError as exc:  # an --address no cluster answers at
            return fail(exc)
        peaks.save()  # into OUT once there is one (--calibrate makes it): the next dry run plans no peak again
        return 0
    from peftbench.cli.dry_run import write_prediction
    from peftbench.harness.folder import FolderError
    from peftbench.harness.sweep import SweepError, run_sweep
    from peftbench.reports.summary import report

    try:
        write_prediction(spec, args.out, args.address)
        outcome = run_sweep(spec, args.out, address=args.address, storage=args.storage, resume=args.resume,
                            retry_failed=not args.no_retry_failed, narrow=narrow)
    except (SweepError, FolderError) as exc:
        return fail(exc)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (harness.sweep.stop_on_signals names it)
        return interrupted(args, signal_name=str(stop) or "SIGINT")
    failed = sum(r["status"] != "ok" for r in outcome.records)
    print(f"{len(outcome.records) - failed} ok, {failed} failed, {len(outcome.missing)} missing of "
          f"{len(outcome.records) + len(outcome.missing)} grid points; records in {args.out}/results\n")
    if outcome.records:
        print(report(args.out))
    # success means every point of the grid ended ok
    return 0 if not failed and not outcome.missing else 1


def interrupted(args, *, signal_name: str = "SIGINT") -> int:
    """The line after Ctrl-C or SIGTERM: what is recorded, and the command that runs the rest; 128 + the
    signal's number, as a shell reports a command the signal stopped (SIGINT 130, SIGTERM 143)."""
    import shlex
    import signal

    from peftbench.harness.records import read_records

    out = Path(args.out)
    done = len(read_records(out, on_bad=lambda *_: None)) if (out / "results").is_dir() else 0
    flags = [f"--{name} {shlex.quote(value)}" for name, value in (("methods", args.methods), ("tasks", args.tasks),
                                                                   ("seeds", args.seeds), ("address", args.address),
                                                                   ("storage", args.storage)) if value]
    flags += [f"--include-path {shlex.quote(d)}" for d in args.include_path or ()]
    flags += ["--log-samples"] if args.log_samples else []
    command = " ".join(["peftbench sweep", shlex.quote(args.spec), "--out", shlex.quote(args.out), *flags,
                        "--resume", *(["--no-retry-failed"] if args.no_retry_failed else [])])
    print(f"\ninterrupted: {done} trials recorded in {out / 'results'}; the others are missing. "
          f"Run the rest with:\n  {command}", flush=True)
    return 128 + signal.Signals.__members__.get(signal_name, signal.SIGINT).value


def narrowing(args):
    """The part of the grid the sweep flags pick (``--methods a,b --tasks x --seeds 0``)."""
    import re

    from peftbench.harness.spec import Narrowing

    def items(text: str | None) -> tuple[str, ...]:  # commas inside a label's [options] do not split
        return tuple(s.strip() for s in re.split(r",(?![^\[]*\])", text) if s.strip()) if text else ()

    seeds = items(args.seeds)
    if not all(s.isdigit() for s in seeds):
        raise ValueError(f"--seeds expects comma-separated non-negative integers, got {args.seeds!r}")
    return Narrowing(methods=items(args.methods), tasks=items(args.tasks), seeds=tuple(map(int, seeds)))


def with_loggers(spec, names: list[str]):
    """The spec with the ``--logger`` names added to its own."""
    from peftbench.harness.loggers import check_loggers

    check_loggers(names)
    return dataclasses.replace(spec, loggers=tuple(dict.fromkeys([*spec.loggers, *names])))


def with_log_samples(spec, keep: bool):
    """The spec with ``--log-samples``: as its own ``log_samples: true``."""
    return dataclasses.replace(spec, settings={**spec.settings, "log_samples": True}) if keep else spec


def task_file_settings(task: str) -> dict:
    """``--task FILE.yaml[:NAME]``: the settings that run that task of a task file, its name and its
    declaration as a sweep's driver sends them (so the record names the data and the file's hash as a
    sweep's do); none for a task's name."""
    from peftbench.tasks.declared import task_in_file

    found = task_in_file(task)
    return {} if found is None else {"task": found.name, "declarations": (found.sent,)}


def cmd_trial(args) -> int:
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrialConfig) if hasattr(args, f.name)}
    settings["method_options"] = parse_options(getattr(args, "option", None), methods=[args.method])
    if "batch" in settings:
        settings["batch"] = parse_batch(settings["batch"])
    try:
        settings.update(task_file_settings(settings["task"]))
        cfg = TrialConfig(**settings)
        if problem := model_error(cfg.model):  # before the method's module brings torch
            return fail(problem)
        check_known(cfg)  # a typo fails here, in one line, before any model or data loads
    except ConfigError as exc:
        return fail(f"{flag_of(exc.key)}: {exc.message}")
    except ValueError as exc:  # TaskFileError: names the file and the key
        return fail(exc)
    from peftbench.harness.folder import FolderError, check_writable

    try:
        check_writable(Path(args.out).resolve())
    except FolderError as exc:
        return fail(exc)
    from peftbench.harness.features import feature_jobs
    from peftbench.models.features import check_cache

    if feature_jobs([cfg]) and (problem := check_cache()):  # a VL task: its features need the cache
        return fail(problem)
    from peftbench.budgets.measure import cap_address_space
    from peftbench.engine.devices import accelerator
    from peftbench.harness.trial import run_trial

    if accelerator() is None:  # this process runs the one trial: a runaway one fails alone
        cap_address_space(cfg.budget_bytes)
    record = run_trial(cfg, args.out)
    print(json.dumps({k: record[k] for k in ("trial_id", "status", "error", "val_score", "test_score",
                                             "trainable_pct", "peak_memory_bytes", "time_per_epoch_s")}, indent=2))
    return 0 if record["status"] == "ok" else 1


def cmd_tasks(args) -> int:
    from peftbench.tasks import catalog

    try:
        if args.action == "show":
            from peftbench.cli.listing import show_examples

            rows, text = show_examples(args.name, args.split, args.n, method=args.method, task_prefix=args.prefix,
                                       labels=args.labels)
        elif args.action == "validate":
            from peftbench.cli.listing import validate_task_file

            rows, text = validate_task_file(args.file)
        else:
            rows = catalog.list_tasks()
            text = catalog.table(rows)
    except (KeyError, ValueError, OSError) as exc:  # a task file's TaskFileError is a ValueError
        return fail(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
    print(json.dumps(rows, indent=2) if args.json else text)
    return 0


def cmd_budget(args) -> int:
    from peftbench.cli.budget import run

    if args.model and (problem := model_error(args.model)):
        return fail(problem)
    return run(args, parse_options(args.option, methods=args.method))


def cmd_report(args) -> int:
    from peftbench.reports.summary import report

    try:
        print(report(args.dir, args.format, out=args.out, baseline=args.baseline, min_effect=args.min_effect))
    except FileNotFoundError as exc:
        return fail(exc)
    except OSError as exc:  # an --out that is a file, or read-only
        return fail(f"{exc.filename or args.out}: {exc.strerror or exc}")
    return 0


def cmd_params(args) -> int:
    options = parse_options(args.option, methods=args.method)  # a flag's mistake answers before torch loads
    if problem := model_error(args.model):  # so does a model-name mistake
        return fail(problem)
    from peftbench.engine.accounting import param_table
    from peftbench.methods import method_label

    try:
        tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
        if tasks:
            from peftbench.tasks import get_task

            for task in tasks:  # a typo fails here, in one line, not as a count for a task that is not there
                get_task(task)
        rows = param_table(args.model, args.method, options, tasks=tasks)
    except (KeyError, ValueError) as exc:
        return fail(exc.args[0] if isinstance(exc, KeyError) else exc)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 1 if any("error" in r for r in rows) else 0
    print(f"{'method':<32} {'trainable':>13} {'total':>15} {'trainable %':>12} {'% of all':>9}")
    for r in rows:
        label = method_label(r["method"], r["options"])
        if "error" in r:
            print(f"{label:<32} cannot apply: {r['error']}")
        else:
            print(f"{label:<32} {r['trainable_params']:>13,} {r['total_params']:>15,} {r['trainable_pct']:>12.3f}"
                  f" {r['trainable_pct_of_overall']:>9.3f}")
    return 1 if any("error" in r for r in rows) else 0


def cmd_bench_step(args) -> int:
    if problem := model_error(args.model):  # before torch loads
        return fail(problem)
    import torch

    from peftbench.engine.bench import bench_step, parse_shapes, table

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        shapes = parse_shapes(args.shapes) if args.shapes else [(args.batch_size, args.seq_len)]
        rows = bench_step(args.model, args.methods.split(","), shapes=shapes, target_len=args.target_len,
                          options=parse_options(args.option), repeats=args.repeats, clock=args.clock,
                          precision=args.precision, tf32=args.tf32,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except (KeyError, ValueError) as exc:
        return fail(exc.args[0] if isinstance(exc, KeyError) else exc)
    print(f"precision: {json.dumps(rows[0]['precision'])}", file=sys.stderr)
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


def cmd_methods(args) -> int:
    from peftbench.cli.listing import method_rows

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


def cmd_plan_seeds(args) -> int:
    from peftbench.cli.plan_seeds import run
    from peftbench.harness.spec import SpecError

    try:
        print("\n".join(run(args)))
    except (OSError, ValueError, SpecError) as exc:
        return fail(exc)
    return 0


def cmd_compare(args) -> int:
    from peftbench.reports.compare import compare

    try:
        print(compare(args.dirs, args.format), end="")
    except (FileNotFoundError, ValueError) as exc:
        return fail(exc)
    return 0


def add_trial_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per ``TrialConfig`` field, its default and help read from the field; a flag not given
    leaves the field at its default."""
    special = {"method_options": {"action": "append", "metavar": "KEY=VALUE", "dest": "option"},
               "data": {"choices": DATA_SOURCES}, "task_prefix": {"choices": PREFIX_SETTINGS},
               "labels": {"choices": LABEL_STYLES},
               "task": {"help": "a task (peftbench tasks lists them), or a task file's: FILE.yaml[:NAME]"},
               "mixture": {"type": lambda text: tuple(t.strip() for t in text.split(",")), "metavar": "TASK,TASK,..."},
               "member_batch_sizes": {"type": task_numbers, "metavar": "TASK=N,TASK=N,..."}}
    for f in dataclasses.fields(TrialConfig):
        if f.metadata.get("flag", "") is None:  # set by a sweep's driver, never typed
            continue
        flag = flag_of(f.name)
        kwargs = {"dest": f.name, "help": f.metadata["help"], "default": argparse.SUPPRESS,
                  "type": _flag_type(f.type), **special.get(f.name, {})}
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs["required"] = True
        elif f.default not in (dataclasses.MISSING, None):
            kwargs["help"] += f" (default: {f.default})"
        if "action" in kwargs:
            del kwargs["type"]
        p.add_argument(flag, **kwargs)
    p.add_argument("--out", default="runs/trial", help="output folder (the record in OUT/results)")


def task_numbers(text: str) -> dict[str, int]:
    """``vqa=300,gqa=500`` as ``{"vqa": 300, "gqa": 500}`` (``--member-batch-sizes``)."""
    try:
        return {task.strip(): int(n) for task, n in (pair.split("=") for pair in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TASK=N,TASK=N,..., got {text!r}") from None


def flag_of(name: str) -> str:
    """The ``peftbench trial`` flag of a ``TrialConfig`` field."""
    field = next((f for f in dataclasses.fields(TrialConfig) if f.name == name), None)
    return field.metadata.get("flag", "--" + name.replace("_", "-")) if field else "--" + name.replace("_", "-")


def _flag_type(annotation: str):
    """The parser of a field's flag, from its annotation: ``float | None`` takes a number or none."""
    kinds = [k.strip() for k in annotation.split("|")]
    if kinds == ["bool"]:  # true or false; anything else reaches TrialConfig's check, which names it
        return lambda text: {"true": True, "false": False}.get(text.lower(), text)
    parse = {"int": int, "float": float}.get(kinds[0], str) if "str" not in kinds else str
    if "None" not in kinds or parse is str:
        return parse
    return lambda text: None if text.lower() in ("none", "null") else parse(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peftbench",
                                     description="Fair benchmarks of parameter-efficient fine-tuning on T5.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="run every trial of a sweep spec under Ray Tune")
    p.add_argument("spec", help="sweep spec (YAML), e.g. configs/smoke.yaml")
    p.add_argument("--out", default="runs/sweep", help="output folder (records in OUT/results)")
    p.add_argument("--address", default=None,
                   help="an existing Ray cluster (default: $RAY_ADDRESS, else start a local Ray)")
    p.add_argument("--storage", default=None,
                   help="where Ray keeps the experiment (a shared path or URI on multi-node clusters; default OUT/ray)")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed sweep in OUT: ok trials are kept, failed and missing ones run")
    p.add_argument("--no-retry-failed", action="store_true",
                   help="with --resume, keep failed trials' records instead of running them again")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the spec, print the grid and what it costs (from OUT/step-times.json); run nothing")
    p.add_argument("--calibrate", action="store_true",
                   help="with --dry-run: first measure what OUT/step-times.json lacks: each method's step "
                        "(bench-step) at the data's lengths, generation and start-up; on a GPU node with --address")
    p.add_argument("--methods", help="run only these methods (comma-separated names or labels); the folder "
                   "keeps the whole sweep, so another run fills in the rest")
    p.add_argument("--tasks", help="run only these tasks (comma-separated)")
    p.add_argument("--seeds", help="run only these seeds (comma-separated)")
    p.add_argument("--logger", action="append", metavar="NAME",
                   help="send results to a tracker too: tensorboard, wandb or mlflow "
                        "(repeatable; adds to the spec's loggers)")
    p.add_argument("--include-path", action="append", metavar="DIR",
                   help="a folder of task files whose tasks the spec may name (repeatable; as the spec's task_files)")
    p.add_argument("--log-samples", action="store_true",
                   help="keep each trial's test inputs, targets, outputs and scores in OUT/samples "
                        "(as the spec's log_samples: true)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("trial", help="run one trial in this process, without Ray (e.g. to measure on one GPU)")
    add_trial_arguments(p)
    p.set_defaults(func=cmd_trial)

    p = sub.add_parser("tasks", help="list the tasks (splits, metrics, lengths); 'show NAME' prints examples")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks, action="list")
    actions = p.add_subparsers(dest="action")
    show = actions.add_parser(
        "show", help="fixture examples as a trial of the default settings trains on them (source and target)")
    show.add_argument("name", help="a task's name, or a task file (.yaml): its tasks")
    show.add_argument("--split", default="validation", choices=SPLITS)
    show.add_argument("-n", type=int, default=3, help="how many examples")
    show.add_argument("--labels", choices=LABEL_STYLES, default=default_of("labels"),
                      help="targets as label digits or names (default: a trial's, %(default)s)")
    show.add_argument("--prefix", choices=PREFIX_SETTINGS, default=default_of("task_prefix"),
                      help="the task's name before each input (default: a trial's, %(default)s: by method)")
    show.add_argument("--method", help="the format this method's trials get (default: every method's, grouped)")
    show.add_argument("--json", action="store_true")
    check = actions.add_parser(
        "validate", help="check a task file (its data, fields, labels, metrics) and show three examples per task")
    check.add_argument("file")
    check.add_argument("--json", action="store_true")

    p = sub.add_parser("budget", help="the largest batch that fits a memory budget, and its peak memory")
    from peftbench.cli.budget import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_budget)

    p = sub.add_parser("params", help="trainable parameters of each method, from the model's configuration only")
    p.add_argument("--model", default=default_of("model"), help="tiny-t5, t5-small … t5-11b, a hub id or a local path")
    p.add_argument("--method", action="append", help="a method (repeatable; default: all)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="an option, for the methods that take it")
    p.add_argument("--tasks", metavar="A,B,…", help="count one model trained on this mixture of tasks "
                   "(per-task modules once per task, shared ones once; e.g. --option sharing=per-task)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("bench-step", help="median training-step time of methods, interleaved, on random weights, "
                                             "beside the frozen backbone's forward and backward")
    p.add_argument("--model", default=default_of("model"))
    p.add_argument("--methods", required=True, help="comma-separated; ratios are to the first")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="an option, for the methods that take it")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--shapes", default=None, metavar="BxL,…",
                   help="several batch × length pairs in one run, e.g. 2x32,8x128 (default: --batch-size x --seq-len)")
    p.add_argument("--target-len", type=int, default=None, help="label length (default: the sequence length)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--precision", choices=PRECISIONS, default=default_of("precision"),
                   help="fp32 or bf16 autocast (default: %(default)s, a trial's)")
    p.add_argument("--tf32", action="store_true", help="let fp32 matmuls use TF32 (Ampere and later GPUs)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: the process's CPU time, for a busy shared CPU machine with --threads 1")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_step)

    p = sub.add_parser("report", help="the comparison tables and figures of a sweep folder")
    p.add_argument("dir")
    p.add_argument("--format", choices=("md", "csv", "json", "latex", "html", "all"), default="md",
                   help="md prints to the terminal; the others write files (default folder: DIR)")
    p.add_argument("--out", default=None, help="output folder, or a file with the format's suffix")
    p.add_argument("--baseline", default="full", help="the method every other is compared with")
    p.add_argument("--min-effect", type=float, default=None,
                   help="the score difference the seeds must detect (power 0.8, α 0.05); default: the observed one")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("plan-seeds", help="the spec that adds the seeds a sweep's undecided comparisons need")
    p.add_argument("dir")
    p.add_argument("--min-effect", type=float, default=None,
                   help="the score difference the seeds must detect (power 0.8, α 0.05); default: the observed one")
    p.add_argument("--max-seeds", type=int, default=10, help="the most seeds a side the spec asks for")
    p.add_argument("--out", default=None, help="where to write the spec (default: DIR/plan-seeds.yaml)")
    p.add_argument("--baseline", default="full", help="the method every other is compared with")
    p.set_defaults(func=cmd_plan_seeds)

    from peftbench.cli.listing import add_parsers

    add_parsers(sub, methods=cmd_methods, compare=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
