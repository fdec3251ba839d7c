"""Issue 29: nothing written outside, nothing read that isn't a file, no sweep lost to one bad cache entry.

One test (or a parametrized few) per row of the issue's table: symlinks planted where the sweep writes
leave their victims byte-identical; FIFOs and /dev/zero answer in one line under a 1 GB address-space
limit; a bad feature-cache entry costs its own recomputation; flags are parsed like specs."""

import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from peftbench.cli.main import main
from peftbench.files import UnsafeFileError, open_lock, read_bytes, write_bytes, writing
from peftbench.harness.config import TrialConfig
from peftbench.harness.folder import FolderError, FolderLock, write_sweep_files
from peftbench.harness.records import new_record, write_record

ROOT = Path(__file__).resolve().parents[2]
VICTIM = b"the victim's own bytes\n" * 100


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim"
    path.write_bytes(VICTIM)
    return path


def sweep_folder(folder: Path) -> Path:
    """A folder of two methods' records (the reports' tests' own sample, tests/testkit/records.py)."""
    sys.path.insert(0, str(ROOT / "tests" / "reports"))
    from testkit.records import two_method_sweep, write_all

    return write_all(folder, two_method_sweep())


def write_spec(path: Path, **changes) -> Path:
    spec = {"name": "safety", "model": "tiny-t5", "data": "fixtures", "methods": ["bitfit"], "tasks": ["sst2"],
            "learning_rates": [1e-3], "seeds": [0], "epochs": 1, "batch_size": 8, **changes}
    path.write_text(yaml.safe_dump(spec))
    return path


def one_line(capsys, *argv) -> str:
    """Run the command: exit 2 (returned, or raised as argparse does) with exactly one line on stderr, returned."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, (code, err)
    return err[0]


# --- writes through symlinks ---------------------------------------------------------------------------

def test_the_writer_refuses_a_symlinked_target_and_never_follows_a_planted_temporary(tmp_path, victim):
    target = tmp_path / "out" / "grid.json"
    target.parent.mkdir()
    target.symlink_to(victim)
    with pytest.raises(UnsafeFileError, match=f"^{target}: is a symlink"):
        write_bytes(target, b"new")
    target.unlink()
    for n in range(3):  # the temporaries a writer of this pid would try first
        (target.parent / f".grid.json.{os.getpid()}.{n}.tmp").symlink_to(victim)
    (target.parent / ".grid.json.tmp").symlink_to(victim)
    write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and victim.read_bytes() == VICTIM


def test_the_writer_refuses_a_symlinked_folder_and_leaves_nothing_on_error(tmp_path, victim):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "results").symlink_to(elsewhere)
    with pytest.raises(UnsafeFileError, match="results: is a symlink, not a folder"):
        write_bytes(tmp_path / "results" / "x.json", b"{}")
    assert list(elsewhere.iterdir()) == []
    def killed_mid_write():
        with writing(tmp_path / "half.json") as f:
            f.write(b"half")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        killed_mid_write()
    assert list(tmp_path.glob("*half*")) == []  # neither the target nor a temporary


def test_new_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_sweep_resume_refuses_a_symlinked_lock_and_the_victim_is_untouched(tmp_path, capsys, victim):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    line = one_line(capsys, "sweep", str(write_spec(tmp_path / "s.yaml")), "--out", str(out), "--resume")
    assert f"{out / '.lock'}: is a symlink" in line
    assert victim.read_bytes() == VICTIM


def test_a_lock_is_never_truncated_nor_written(tmp_path, victim):
    os.link(victim, tmp_path / ".lock")  # a hard link: O_NOFOLLOW cannot see it, so the lock must not write
    lock = FolderLock(tmp_path).acquire()
    lock.release()
    assert victim.read_bytes() == VICTIM
    fd = open_lock(tmp_path / "other.lock")
    os.close(fd)
    assert (tmp_path / "other.lock").read_bytes() == b""


def test_a_symlinked_grid_or_spec_copy_is_refused_and_its_victim_untouched(tmp_path, victim):
    for name in ("grid.json", "spec.json"):
        out = tmp_path / name.split(".")[0]
        out.mkdir()
        (out / name).symlink_to(victim)
        with pytest.raises(FolderError, match=f"{name}: is a symlink"):
            write_sweep_files(out, "{}", ["a", "b"])
    assert victim.read_bytes() == VICTIM


def test_a_symlinked_record_is_refused(tmp_path, victim, tiny_trial_kwargs):
    cfg = TrialConfig(method="bitfit", task="sst2", learning_rate=1e-3, **tiny_trial_kwargs)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / f"{cfg.trial_id}.json").symlink_to(victim)
    with pytest.raises(UnsafeFileError, match="is a symlink"):
        write_record(tmp_path, new_record(cfg, status="failed", error="x"))
    assert victim.read_bytes() == VICTIM


def test_checkpoints_and_saved_modules_never_write_through_a_planted_link(tmp_path, victim):
    import torch

    from peftbench.engine.state import LOOP_STATE, save_checkpoint, save_tensors
    from peftbench.engine.step import Engine, Optimization
    from peftbench.methods import apply_method
    from peftbench.models.load import load_model

    model, _, _ = load_model("tiny-t5", seed=0)
    apply_method(model, "bitfit", {})
    engine = Engine(model, Optimization(learning_rate=1e-3, warmup_steps=1, total_steps=4, max_grad_norm=1.0),
                    micro_batch=2)
    folder = tmp_path / "checkpoints" / "t"
    folder.mkdir(parents=True)
    (folder / f".{LOOP_STATE}.tmp").symlink_to(victim)  # the temporary the old writer used
    save_checkpoint(folder, engine, {"epoch": 1}, rank=0)
    assert torch.load(folder / LOOP_STATE, weights_only=True)["epoch"] == 1
    (folder / LOOP_STATE).unlink()
    (folder / LOOP_STATE).symlink_to(victim)
    with pytest.raises(UnsafeFileError, match="is a symlink"):
        save_checkpoint(folder, engine, {"epoch": 2}, rank=0)
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "t.safetensors").symlink_to(victim)
    with pytest.raises(UnsafeFileError, match="is a symlink"):
        save_tensors(tmp_path / "modules" / "t.safetensors", {"w": torch.zeros(2)})
    assert victim.read_bytes() == VICTIM


@pytest.fixture(scope="module")
def vqa_items():
    from peftbench.models.features import item_key
    from peftbench.tasks import get_task

    task = get_task("vqa")
    rows = task.load_fixtures()["validation"][:6]
    return {item_key(imgs): imgs for imgs in (task.images(r) for r in rows)}


def test_a_symlink_at_a_feature_cache_lock_loses_nothing(tmp_path, victim, vqa_items):
    import torch

    from peftbench.models.features import features_for

    feats, _ = features_for("tiny-clip", vqa_items, source="s", root=tmp_path)
    (lock,) = (tmp_path / ".locks").glob("*.lock")
    lock.unlink()
    lock.symlink_to(victim)
    again, _ = features_for("tiny-clip", vqa_items, source="s", root=tmp_path)
    assert victim.read_bytes() == VICTIM
    torch.testing.assert_close(again, feats)  # computed without the cache's lock, the same numbers


def test_a_symlink_at_a_budget_cache_lock_loses_nothing(tmp_path, victim):
    from peftbench.budgets.cache import BudgetCache, cache_key
    from peftbench.budgets.fit import Fit

    cache = BudgetCache(tmp_path / "budget-cache.json")
    locks = tmp_path / ".budget-cache.json.locks"
    locks.mkdir()
    (locks / f"{cache_key({'k': 1})}.lock").symlink_to(victim)
    with pytest.raises(UnsafeFileError, match="is a symlink"):
        cache.get_or_compute({"k": 1}, lambda: Fit(batch_size=1, peak_bytes=1, fixed_bytes=1.0, bytes_per_example=1.0,
                                                   estimated=True, how="test"))
    assert victim.read_bytes() == VICTIM


# --- one cache entry never kills a sweep -------------------------------------------------------------------

@pytest.mark.parametrize("manifest", ["[1, 2]", '{"key": 3}', "not json", '{"images": "x"}'])
def test_a_manifest_that_is_not_one_is_set_aside_and_recomputed(tmp_path, vqa_items, manifest):
    from peftbench.models import features
    from peftbench.models.features import features_for

    feats, _ = features_for("tiny-clip", vqa_items, source="s", root=tmp_path)
    (path,) = tmp_path.glob("*.json")
    path.write_text(manifest)
    before = features.EXTRACTED["tiny-clip"]
    again, index = features_for("tiny-clip", vqa_items, source="s", root=tmp_path)
    assert features.EXTRACTED["tiny-clip"] - before == len(vqa_items)  # recomputed, not read
    assert set(index) == set(vqa_items) and again.shape == feats.shape
    assert [p.read_text() for p in (tmp_path / "set-aside").glob("*.json")] == [manifest]
    shards = json.loads(path.read_text())["shards"]  # the recomputed entry replaced it
    assert [k for shard in shards for k in shard["items"]] == list(index)


def test_an_unwritable_cache_still_serves_and_a_sweep_refuses_it_in_one_line(tmp_path, vqa_items, capsys,
                                                                               monkeypatch):
    from peftbench.models.features import check_cache, features_for

    unwritable = Path("/proc/peftbench-test/features")  # unwritable even for root
    feats, index = features_for("tiny-clip", vqa_items, source="s", root=unwritable)
    assert set(index) == set(vqa_items) and feats.shape[0] == len(vqa_items)
    assert check_cache(unwritable).startswith(f"features cache {unwritable}: cannot write it")
    monkeypatch.setenv("PEFTBENCH_FEATURES", str(unwritable))
    spec = write_spec(tmp_path / "vl.yaml", tasks=["vqa"])
    line = one_line(capsys, "sweep", str(spec), "--out", str(tmp_path / "out"))
    assert f"features cache {unwritable}: cannot write it" in line
    assert not (tmp_path / "out").exists()


def test_a_features_file_linked_to_dev_zero_is_recomputed(tmp_path, vqa_items):
    from peftbench.models import features
    from peftbench.models.features import features_for

    features_for("tiny-clip", vqa_items, source="s", root=tmp_path)
    (tensor,) = tmp_path.glob("*/*.safetensors")  # the entry's one shard
    tensor.unlink()
    tensor.symlink_to("/dev/zero")
    before = features.EXTRACTED["tiny-clip"]
    features_for("tiny-clip", vqa_items, source="s", root=tmp_path)
    assert features.EXTRACTED["tiny-clip"] - before == len(vqa_items)


# --- reads of non-files, under a 1 GB address-space limit --------------------------------------------------

def run_limited(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """``peftbench ARGV`` in a process whose address space is capped at 1 GB; ``timeout`` only guards
    against a hang (the answer must not depend on it)."""
    probe = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
             "from peftbench.cli.main import main\nsys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def errors(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("peftbench:")]


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "sparse"])
def test_a_peft_config_file_that_is_no_file_answers_in_one_line(tmp_path, source):
    if source == "fifo":
        os.mkfifo(tmp_path / "fifo")
        source = str(tmp_path / "fifo")
    elif source == "sparse":
        with open(tmp_path / "sparse", "wb") as f:
            f.truncate(1 << 30)
        source = str(tmp_path / "sparse")
    spec = write_spec(tmp_path / "s.yaml", methods=[{"name": "peft", "options": {"config_file": source}}])
    done = run_limited("sweep", str(spec), "--dry-run", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
    assert f"config_file {source!r}: cannot read a peft config: {source}: " in done.stderr
    assert ("bytes; a config is at most" if "sparse" in source else "is not a regular file") in done.stderr


@pytest.mark.parametrize("plant", ["fifo", "dev-zero"])
def test_a_results_file_that_is_no_file_is_skipped_by_report_in_one_line(tmp_path, plant):
    folder = sweep_folder(tmp_path / "sweep")
    bad = folder / "results" / "x.json"
    os.mkfifo(bad) if plant == "fifo" else bad.symlink_to("/dev/zero")
    done = run_limited("report", str(folder), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    skipped = [line for line in done.stdout.splitlines() if "x.json" in line]
    assert len(skipped) == 1 and ("is not a regular file" in skipped[0] or "is a symlink" in skipped[0])


def test_sweep_resume_sets_a_fifo_in_results_aside(tmp_path):
    from peftbench.harness.spec import load_spec
    from peftbench.harness.sweep import points_to_run

    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    (tmp_path / "out" / "results").mkdir(parents=True)
    os.mkfifo(tmp_path / "out" / "results" / "x.json")
    points, bad = points_to_run(spec, spec.points(), tmp_path / "out", retry_failed=True)
    assert len(points) == 1 and [p.name for p in bad] == ["x.json"]


def test_reads_are_capped_while_reading(tmp_path):
    path = tmp_path / "grows"
    path.write_bytes(b"x" * 100)
    with pytest.raises(UnsafeFileError, match="100 bytes; a record is at most 10"):
        read_bytes(path, kind="record", cap=10)
    assert read_bytes(path, kind="record", cap=100) == b"x" * 100
    (tmp_path / "link").symlink_to(path)
    with pytest.raises(UnsafeFileError, match="is a symlink"):
        read_bytes(tmp_path / "link", kind="record")
    assert read_bytes(tmp_path / "link", kind="record", follow=True) == b"x" * 100  # the user named it


# --- flags parsed like specs ------------------------------------------------------------------------------

BOMB = "[&a0 [1,1,1,1,1,1,1,1,1,1]," + ",".join(
    f"&a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)) + "]"


@pytest.mark.parametrize("command", [["params"], ["trial", "--method", "adapter", "--task", "sst2", "--lr", "1e-3"]])
def test_an_alias_bomb_in_an_option_answers_in_one_line_without_the_value(capsys, command):
    assert len(BOMB) < 600
    line = one_line(capsys, *command, "--option", f"sharing={BOMB}")
    assert line == "peftbench: --option sharing: its aliases expand to more than 10000 YAML nodes"


@pytest.mark.parametrize("option, says", [
    ("reduction_factor=[1", "--option reduction_factor: while parsing a flow sequence"),
    ("garbage", "--option expects KEY=VALUE, got 'garbage'"),
])
def test_a_malformed_option_is_a_usage_error(capsys, option, says):
    with pytest.raises(SystemExit) as exit_:
        main(["params", "--option", option])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


def test_a_comma_list_is_a_list_where_the_option_is_one():
    from peftbench.cli.main import parse_options

    assert parse_options(["target_modules=q,v"], methods=["peft"]) == {"target_modules": ["q", "v"]}
    assert parse_options(["sharing=per-task"], methods=["adapter"]) == {"sharing": "per-task"}


# --- accepted, fails only when run: now refused by --dry-run ----------------------------------------------

@pytest.mark.parametrize("changes, key, says", [
    ({"mixtures": {"m": ["rte", "vqa"]}}, "mixtures.m", "text tasks and image-text tasks cannot be trained as one"),
    ({"methods": [{"name": "lora", "options": {"r": -4}}]}, "methods[0].options", "`r` should be a positive integer"),
    ({"methods": [{"name": "lora", "options": {"r": "eight"}}]}, "methods[0].options", "TypeError"),
    ({"methods": [{"name": "lora", "options": {"target_modules": ["nothing"]}}]}, "methods[0].options",
     "not found in the base model"),
    ({"loggers": [["tensorboard"]]}, "loggers[0]", "expected a tracker's name"),
    ({"methods": [{"name": "lora", "options": {"r": 100000}}], "budget": "1GB"}, "methods[0].options",
     "before its first batch (weights, gradients, AdamW's moments), over its budget of 1GB"),
])
def test_dry_run_refuses_what_every_trial_would_fail_on(tmp_path, capsys, changes, key, says):
    line = one_line(capsys, "sweep", str(write_spec(tmp_path / "s.yaml", **changes)), "--dry-run")
    assert f"s.yaml: {key}: " in line and says in line


def test_a_model_folder_without_weights_is_refused_before_any_trial(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    line = one_line(capsys, "sweep", str(write_spec(tmp_path / "s.yaml", model=str(tmp_path / "m"))), "--dry-run")
    assert line.endswith(f"model: {tmp_path / 'm'} has no weights (model.safetensors or pytorch_model.bin)")


@pytest.mark.parametrize("model, says", [
    ("google/flan-t5-base",
     "google/flan-t5-base is not in the local hub cache, and the hub is offline (HF_HUB_OFFLINE)"),
    ("./nonexistent", "./nonexistent is neither a folder nor a hub id"),
])
def test_model_name_mistakes_are_one_line_in_params(capsys, monkeypatch, model, says):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert one_line(capsys, "params", "--model", model) == f"peftbench: --model: {says}"


@pytest.mark.parametrize("command", [
    ["params", "--method", "adapter"],
    ["trial", "--method", "adapter", "--task", "rte", "--lr", "1e-3"],
    ["bench-step", "--methods", "adapter"],
    ["budget", "--method", "adapter"],
])
def test_a_model_name_mistake_answers_in_one_line_before_torch_loads(command, tmp_path):
    """Every command checks the model's name first, from models/names.py, which imports no torch: an uncached
    hub id offline is refused in the hub probe's time, not after seconds of torch and transformers imports."""
    probe = ("import sys\nfrom peftbench.cli.main import main\ncode = main(sys.argv[1:])\n"
             "print('EXIT', code, 'torch' in sys.modules)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", probe, *command, "--model", "google/flan-t5-base"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.stdout.strip() == "EXIT 2 False"
    assert done.stderr.strip() == ("peftbench: --model: google/flan-t5-base is not in the local hub cache, "
                                   "and the hub is offline (HF_HUB_OFFLINE)")


def test_a_tiny_temperature_gives_a_distribution_not_nan():
    from peftbench.tasks.mixture import sampling_probabilities

    assert sampling_probabilities([10, 100, 100], sampling="temperature", temperature=1e-310) == [0.0, 0.5, 0.5]
    assert sampling_probabilities([1, 1], sampling="temperature", temperature=1e-310) == [0.5, 0.5]


# --- budgets enforced -------------------------------------------------------------------------------------

def test_a_trial_over_its_budget_is_refused_before_it_allocates():
    from peftbench.budgets.parse import BudgetError
    from peftbench.budgets.plan import plan_batch
    from peftbench.budgets.workload import Workload

    with pytest.raises(BudgetError, match=r"lora on tiny-t5 holds .* before its first batch"):
        plan_batch(Workload("tiny-t5", "lora", {"r": 100000}), batch=None, fixed_batch=8, budget_bytes=10**9)


BIG_LORA = [{"name": "lora", "options": {"r": 100000}}]  # the case: held bytes ~4.9 GB, far under 24 GB


@pytest.mark.parametrize("dry_run", [["--dry-run"], []])
def test_a_fixed_batch_whose_activations_exceed_the_budget_is_refused_before_any_trial(tmp_path, capsys, dry_run):
    out = tmp_path / "out"
    line = one_line(capsys, "sweep", str(write_spec(tmp_path / "s.yaml", methods=BIG_LORA, batch_size=64)),
                    "--out", str(out), *dry_run)
    assert 'methods[0].options: lora {"r": 100000} on tiny-t5 at a fixed batch of 64' in line
    planned = float(line.split("planned peak ")[1].split(" GB")[0])
    assert planned > 24 and line.endswith("over its budget of 24.00 GB")
    assert not out.exists()  # nothing started


def test_a_fixed_batch_just_under_its_budget_passes(tmp_path, capsys):
    from peftbench.budgets.plan import planned_peak
    from peftbench.budgets.workload import Workload
    from peftbench.tasks import get_task

    sst2 = get_task("sst2")
    peak = planned_peak(Workload("tiny-t5", "lora", {"r": 100000}, source_len=sst2.max_source_length,
                                 target_len=sst2.max_target_length), 32)
    budget = f"{math.ceil(peak / 1e7) / 100:.2f}GB"  # the planned peak rounded up to the next 10 MB
    spec = write_spec(tmp_path / "s.yaml", methods=BIG_LORA, batch_size=32, budget=budget)
    assert main(["sweep", str(spec), "--dry-run"]) == 0, capsys.readouterr().err


def test_a_runaway_process_fails_alone_under_its_address_space_cap():
    before = resource.getrlimit(resource.RLIMIT_AS)
    code = ("from peftbench.budgets.measure import cap_address_space\n"
            "cap_address_space(200 * 2**20)\n"
            "try:\n    bytearray(2**31)\nexcept MemoryError:\n    print('MemoryError')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.stdout.strip() == "MemoryError"
    assert resource.getrlimit(resource.RLIMIT_AS) == before  # the cap was the child's alone


# --- report and compare --------------------------------------------------------------------------------

def test_report_and_compare_set_aside_a_record_of_the_wrong_type_alike(tmp_path, capsys):
    folders = [sweep_folder(tmp_path / name) for name in ("a", "b")]
    good = json.loads(next((folders[0] / "results").glob("*.json")).read_text())
    (folders[0] / "results" / "zz-high.json").write_text(json.dumps({**good, "trial_id": "zz", "test_score": "high"}))
    assert main(["report", str(folders[0])]) == 0
    out = capsys.readouterr().out
    assert "zz-high.json: record 'zz': test_score is a str, expected int or float" in out
    assert main(["compare", str(folders[0]), str(folders[1])]) == 0
    assert "zz-high.json: record 'zz': test_score is a str" in capsys.readouterr().out


def test_many_junk_files_are_summarised(tmp_path, capsys):
    folder = sweep_folder(tmp_path / "sweep")
    for i in range(50):
        (folder / "results" / f"junk{i:03}.json").write_text("{")
    assert main(["report", str(folder)]) == 0
    skipped = [line for line in capsys.readouterr().out.splitlines() if "skipped" in line]
    assert len(skipped) == 4 and "skipped 47 more files under" in skipped[-1]


@pytest.mark.parametrize("changes, says", [
    ({"learning_rates": [-1]}, "learning_rates[0]: expected a positive finite number"),
    ({"tasks": ["sst3"]}, "tasks[0]: unknown task 'sst3'"),
    ({"budget": "lots"}, "budget: budget 'lots'"),
    ({"methods": ["adaptr"]}, "methods[0].name: unknown method"),
])
def test_spec_errors_that_need_no_torch_answer_without_importing_it(tmp_path, changes, says):
    spec = write_spec(tmp_path / "s.yaml", **changes)
    probe = ("import sys\nfrom peftbench.cli.main import main\ncode = main(sys.argv[1:])\n"
             "print('TORCH', 'torch' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", probe, "sweep", str(spec), "--dry-run"], capture_output=True,
                          text=True, timeout=600)
    assert done.stdout.strip().splitlines()[-1] == "TORCH False 2"
    assert says in done.stderr


def test_a_vl_trial_refuses_an_unwritable_cache_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PEFTBENCH_FEATURES", "/proc/peftbench-test/features")
    line = one_line(capsys, "trial", "--method", "bitfit", "--task", "vqa", "--lr", "1e-3", "--data", "fixtures",
                    "--out", str(tmp_path / "out"))
    assert "features cache /proc/peftbench-test/features: cannot write it" in line


def test_an_alias_bomb_in_params_answers_before_torch_loads():
    probe = ("import sys\nfrom peftbench.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit as exc:\n    print('EXIT', exc.code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe, "params", "--option", f"sharing={BOMB}"], capture_output=True,
                          text=True, timeout=600)
    assert done.stdout.strip() == "EXIT 2 False"
    assert done.stderr.strip() == "peftbench: --option sharing: its aliases expand to more than 10000 YAML nodes"


@pytest.mark.parametrize("command, option, says", [
    (["trial", "--method", "adapter", "--task", "sst2", "--lr", "1e-3"], "reductoin_factor=8",
     "peftbench: --option: method 'adapter' has no option 'reductoin_factor' "
     "(options: cross_attention, reduction_factor, sharing)"),
    (["trial", "--method", "adapter", "--task", "sst2", "--lr", "1e-3"], "reduction_factor=eight",
     "peftbench: --option: method 'adapter' option 'reduction_factor': expected int, got str"),
    (["params", "--method", "bitfit", "--method", "compacter"], "phm_dims=4",
     "peftbench: --option: option 'phm_dims' is taken by none of: bitfit, compacter"),
])
def test_a_typod_option_answers_in_one_line_before_torch_loads(command, option, says):
    probe = ("import sys\nfrom peftbench.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit as exc:\n    print('EXIT', exc.code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe, *command, "--option", option], capture_output=True,
                          text=True, timeout=600)
    assert done.stdout.strip() == "EXIT 2 False"
    assert done.stderr.strip() == says


def test_the_options_read_from_the_method_sources_are_their_configs_fields():
    import dataclasses

    from peftbench.methods import get_method, method_names
    from peftbench.methods.declared import declared_options

    for name in method_names():
        config_cls = get_method(name).config_cls
        if hasattr(config_cls, "from_options"):  # the peft bridge: peft's fields, known on import only
            assert declared_options(name) is None
        else:
            assert declared_options(name) == {f.name: f.type for f in dataclasses.fields(config_cls)}, name
