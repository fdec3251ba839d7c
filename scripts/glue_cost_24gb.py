"""Print what configs/glue-t5-base.yaml would cost on one 24 GB card, through the cost model
(harness/cost.py) fed with extrapolated figures, since no GPU was at hand to calibrate on and the dry run
never downloads GLUE to learn its sizes. Every figure below is an assumption or a published fact, none
measured; a calibrated dry run on the card (``sweep --dry-run --calibrate --address …``) replaces them.
    .venv/bin/python scripts/glue_cost_24gb.py
"""

from peftbench.harness import cost
from peftbench.harness.spec import load_spec
from peftbench.tasks.base import paper_split_sizes

# GLUE's hub sizes (train, validation): Wang et al. 2018, Table 1, as the pinned hub revision holds them
HUB = {"cola": (8551, 1043), "sst2": (67349, 872), "mrpc": (3668, 408), "qqp": (363846, 40430),
       "stsb": (5749, 1500), "qnli": (104743, 5463), "rte": (2490, 277)}
MNLI = (392702, 9832, 9815)  # the config's own splits: train, validation_mismatched, validation_matched
# T5-base (d_model 768, d_ff 3072, 12 + 12 layers, 32,128 tokens): the weights a token passes through, per
# source token (encoder 85.0M and the decoder's cross-attention keys and values 14.2M) and per target token
# (the rest of the decoder 98.9M and the tied output layer 24.7M)
PER_SOURCE, PER_TARGET = 85.0e6 + 14.2e6, 98.9e6 + 24.7e6
SOURCE, TARGET, PROMPT = 128, 5, 100  # max_source_length (an overestimate); a label and EOS; prompt tokens
PEAK, UTILISATION = 31.2e12, 0.40  # an NVIDIA A10's FP32 peak (its datasheet); the share of it assumed reached
GENERATION_S_PER_ROW = 0.003  # assumed: an encoder pass and 5 greedy steps in batches of 100 rows
STARTUP_S = {False: 15.0, True: 60.0}  # assumed: model load, data read and tokenised (True: over 10k rows)
FULL_BACKWARD = ("full", "intrinsic-said")  # methods whose every weight takes a gradient


def step_seconds(method: str, batch: int) -> float:
    """FLOPs of a step over the card's assumed throughput: a forward 2N a token (Kaplan et al. 2020), the
    backward 4N with the weights' gradients, 2N without them (a frozen backbone)."""
    source = SOURCE + (PROMPT if method.startswith("prompt-tuning") else 0)
    forward = 2 * (PER_SOURCE * source + PER_TARGET * TARGET)
    return batch * forward * (3 if method in FULL_BACKWARD else 2) / (PEAK * UTILISATION)


def groups(spec) -> list[cost.Group]:
    out = []
    for method in spec.methods:
        for task in spec.tasks:
            cfg = spec.trial(method.label, task, spec.learning_rates[0], spec.seeds[0])
            train, val, test = MNLI if task == "mnli" else paper_split_sizes(*HUB[task]).values()
            out.append(cost.Group(method=method.label, task=task, trials=len(spec.learning_rates) * len(spec.seeds),
                                  batch=cfg.batch_size, epochs=cfg.epochs, train_examples=train,
                                  validations=cfg.epochs, val_examples=val, test_examples=test))
    return out


def main() -> None:
    spec = load_spec("configs/glue-t5-base.yaml")
    found = {(g.method, g.task): cost.Parts(
        step=cost.Figure(step_seconds(g.method, g.batch), "extrapolated from FLOPs"),
        row=cost.Figure(GENERATION_S_PER_ROW, "assumed"),
        startup=cost.Figure(STARTUP_S[g.train_examples > 10_000], "assumed")) for g in groups(spec)}
    rows = cost.predict(groups(spec), found)
    print(f"{'method':<17} {'s/step':>7} {'steps a rate':>12} {'train h':>8} {'eval h':>7} {'GPU-hours':>10}")
    for method in spec.methods:
        mine = [r for r in rows if r.group.method == method.label]
        print(f"{method.label:<17} {mine[0].parts.step.seconds:7.2f} {sum(r.group.steps for r in mine):12d} "
              f"{sum(r.train_s for r in mine) / 3600:8.2f} {sum(r.eval_s for r in mine) / 3600:7.2f} "
              f"{sum(r.seconds * r.group.trials for r in mine) / 3600:10.1f}")
    for slots in (1, 8, 64):
        t = cost.totals(rows, slots, None)
        print(f"on {slots} card(s): {t['device_hours']:.0f} GPU-hours, {t['wall_hours']:.1f} h wall "
              f"({sum(r.group.trials for r in rows)} trials)")


if __name__ == "__main__":
    main()
