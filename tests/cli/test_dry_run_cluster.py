"""sweep --dry-run --address: the wall time on the cluster's slots (from Ray's resources), and the
calibration as a Ray task on a GPU node when the cluster has one (here a local Ray that declares one GPU;
the task runs on this machine's CPU, as any task given that GPU would)."""

from __future__ import annotations

from peftbench.cli import dry_run
from peftbench.files import read_json
from peftbench.harness import cost
from peftbench.harness.provenance import device_name
from peftbench.harness.spec import parse_spec

SPEC = {"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": ["bitfit"], "tasks": ["rte"],
        "learning_rates": [1e-3], "seeds": [0, 1, 2], "epochs": 1, "batch_size": 4, "gpu_memory": "80GB"}


def test_slots_are_the_clusters_cpus_over_a_trials_and_no_more_than_its_cards_hold():
    spec = parse_spec({**SPEC, "cpus_per_trial": 2})
    assert dry_run.cluster_slots(spec, {"CPU": 16.0}, "cpu").count == 8
    # a 24 GB budget takes 24.5 GB of an 80 GB card (its CUDA context): three trials a card
    gpu = dry_run.cluster_slots(spec, {"CPU": 64.0, "GPU": 4.0}, "NVIDIA A100")
    assert gpu.count == 12 and gpu.clock == "wall" and "3 trials a card" in gpu.how
    assert dry_run.cluster_slots(spec, {"CPU": 8.0, "GPU": 4.0}, "NVIDIA A100").count == 4  # the CPUs bind first
    exclusive = parse_spec({**SPEC, "cpus_per_trial": 2, "exclusive_gpu": True})
    assert dry_run.cluster_slots(exclusive, {"CPU": 64.0, "GPU": 4.0}, "NVIDIA A100").count == 4


def test_calibration_runs_as_a_ray_task_on_the_gpu_and_the_wall_time_uses_the_clusters_slots(tmp_path):
    import ray

    spec = parse_spec(SPEC)
    # the worker's process start is known already: the test measures only the group, in the Ray task
    process = dry_run.keys(spec, None, device_name(), "cpu")["process"]
    cost.StepTimes(tmp_path / cost.FILENAME).put(process, 2.0)
    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False)  # more CPUs than this machine's
    said = []
    try:
        address = ray.get_runtime_context().gcs_address
        text = "\n".join(dry_run.cost_lines(spec, str(tmp_path), calibrate_first=True, address=address,
                                            log=said.append))
        saved = dry_run.write_prediction(spec, str(tmp_path), address)
    finally:
        ray.shutdown()
    assert any("as a Ray task" in line and "holding 1 GPU" in line for line in said), said
    kinds = {e["key"]["kind"] for e in cost.StepTimes(tmp_path / cost.FILENAME).entries().values()}
    assert kinds == {"process", "step", "generation", "startup"}
    # the card holds 3 trials of 24 GB; 4 CPUs, 1 a trial, would run 4: 3 slots
    assert "slots: cluster: 1 GPUs, 3 trials a card (3); 4 CPUs, 1 a trial (4)" in text
    (row,) = [line for line in text.splitlines() if line.startswith("bitfit ")]
    assert "—" not in row  # every part measured in the task is found again for the cluster's device
    # the sweep's own prediction is on the cluster's slots too, not this machine's 2 CPUs
    assert read_json(saved, kind="cache")["slots"] == 3
