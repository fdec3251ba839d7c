"""Parameter accounting against the paper's T5-base tables (Table 1 and Table 6)."""

from __future__ import annotations

import json

import pytest

from peftbench.cli.main import main
from peftbench.engine.accounting import count_params, param_table
from peftbench.models.load import model_config

# Trainable % of T5-base as printed in the paper (three decimals).
PAPER_T5_BASE = {
    ("adapter", None): 0.832, ("pfeiffer-adapter", None): 0.427, ("adapterdrop", None): 0.494,
    ("adapter-lowrank", None): 0.073, ("prompt-tuning-r", None): 0.034, ("prompt-tuning-t", None): 0.034,
    ("intrinsic-said", None): 0.009, ("bitfit", None): 0.126,
    ("phm-adapter", 4): 0.239, ("phm-adapter", 8): 0.160, ("phm-adapter", 12): 0.179,
    ("compacter", 4): 0.073, ("compacter", 8): 0.073, ("compacter", 12): 0.073,
    ("compacter++", 4): 0.047, ("compacter++", 8): 0.047, ("compacter++", 12): 0.048,
}
# 534,144 / 222,903,552 = 0.23963 %, printed 0.239 in the paper. No convention fits this row together with
# n = 8 and 12 (see methods/README.md, "Parameter accounting"): the printed value looks truncated.
KNOWN_MISMATCH = {("phm-adapter", 4): 0.240}


@pytest.fixture(scope="module")
def t5_base():
    return model_config("t5-base")


@pytest.mark.parametrize("method, n", list(PAPER_T5_BASE))
def test_t5_base_trainable_percent_matches_the_paper(t5_base, method, n):
    count = count_params(t5_base, method, {} if n is None else {"phm_dim": n})
    assert count.total == 222_903_552
    ours = round(count.pct, 3)
    if (method, n) in KNOWN_MISMATCH:
        assert ours == KNOWN_MISMATCH[method, n] and abs(ours - PAPER_T5_BASE[method, n]) < 0.0015
    else:
        assert ours == PAPER_T5_BASE[method, n]


def test_full_fine_tuning_counts_every_parameter_once(t5_base):
    count = count_params(t5_base, "full")
    assert count.trainable == count.total == 222_903_552


def test_params_cli_json_applies_options_only_where_they_fit(capsys):
    assert main(["params", "--model", "t5-base", "--method", "compacter", "--method", "bitfit",
                 "--option", "phm_dim=8", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in rows] == ["compacter", "bitfit"]
    assert set(rows[0]) == {"method", "options", "trainable_params", "total_params", "trainable_pct", "overall_params",
                            "trainable_pct_of_overall"}
    assert rows[0]["options"] == {"phm_dim": 8} and rows[1]["options"] == {}
    assert rows[0]["trainable_params"] == 162_176  # 8³ shared rule + 48 adapters × 2,376 + 47,616 layer norms


def test_params_refuses_an_option_no_method_takes(capsys):
    with pytest.raises(SystemExit) as stop:  # a usage error, as every flag mistake (exit 2)
        main(["params", "--model", "tiny-t5", "--method", "bitfit", "--option", "phm_dim=8"])
    assert stop.value.code == 2
    assert "phm_dim" in capsys.readouterr().err


def test_every_method_is_listed_by_default_and_misfits_are_named_in_their_row():
    rows = {r["method"]: r for r in param_table("tiny-t5")}
    assert len(rows) == 18  # the paper's twelve, hyperformer, hyperformer++, vl-hyperformer, peft, lora, ia3
    # tiny-t5 has 2 blocks (adapterdrop drops 5) and d_model 128 (phm_dim 12 does not divide it)
    assert {m for m, r in rows.items() if "error" in r} == {"adapterdrop", "phm-adapter"}
    assert all(0 < r["trainable_pct"] for r in rows.values() if "error" not in r)
    # Hyperformer's per-layer generators (55 % of T5-base) outgrow tiny-t5 itself; the others fit within it
    assert {m for m, r in rows.items() if "error" not in r and r["trainable_pct"] > 100} == {"hyperformer"}


def test_params_cli_counts_one_mixture_model_once_against_the_base_model(capsys):
    args = ["params", "--model", "t5-base", "--method", "adapter", "--tasks", "rte,sst2,mrpc", "--json"]
    assert main([*args, "--option", "sharing=per-task"]) == 0
    per_task = json.loads(capsys.readouterr().out)[0]
    assert main(args) == 0
    shared = json.loads(capsys.readouterr().out)[0]
    assert per_task["tasks"] == shared["tasks"] == ["rte", "sst2", "mrpc"]
    assert per_task["options"] == {"sharing": "per-task"}
    assert shared["trainable_params"] == 1_855_104  # the single-task adapter: one set of modules
    # three sets of the 48 adapters (37,656 each), T5's 47,616 layer-norm parameters once
    assert per_task["trainable_params"] == 3 * 48 * 37_656 + 47_616
    assert per_task["total_params"] == shared["total_params"] == 222_903_552
    assert per_task["trainable_pct"] == pytest.approx(100 * per_task["trainable_params"] / 222_903_552)


def test_params_cli_refuses_an_unknown_task_in_one_line(capsys):
    assert main(["params", "--method", "adapter", "--tasks", "rte,stsbb"]) == 2
    assert "unknown task 'stsbb'" in capsys.readouterr().err


VL4 = ["vqa", "gqa", "nlvr2", "coco-caption"]
# VL-Adapter's Table 1 (image-text, VL-BART), their convention: trainable ÷ every parameter with the method in.
# 4.18 % is the abstract's; the others the table's (../shared/reference/MULTITASK-VL-FACTS.md names the rows).
VL_ADAPTER_BART = [
    ("adapter", {"reduction_factor": 8, "sharing": "shared", "cross_attention": True}, 4.18),
    ("adapter", {"reduction_factor": 8, "sharing": "per-task", "cross_attention": True}, 12.22),
    ("adapter", {"reduction_factor": 8, "sharing": "shared-up", "cross_attention": True}, 8.36),
    ("vl-hyperformer", {"reduction_factor": 8, "projected_task_embedding_dim": 8}, 5.79),
    ("phm-adapter", {"reduction_factor": 8, "phm_dim": 2, "sharing": "per-task", "cross_attention": True}, 7.05),
    ("phm-adapter", {"reduction_factor": 8, "phm_dim": 2, "sharing": "shared", "cross_attention": True}, 2.70),
]


def test_bart_base_is_known_offline_with_the_authors_count():
    """139,420,416: bart-base as VL-Adapter's trainer_base.py:228 writes it down."""
    assert count_params(model_config("bart-base"), "full").total == 139_420_416


def test_vl_bart_adds_their_200_tokens_and_the_projection():
    """+200 vocabulary rows (<extra_id_i>, <vis_extra_id_i>: multitask.py:85-100) and the projection with
    nn.LayerNorm's biases: 2048·768 + 768 + 2·768 + 5·768 + 768 + 2·768 + 2·768 = 1,582,848."""
    vl, text = (count_params(model_config("bart-base+clip-rn101"), "full"),
                count_params(model_config("bart-base"), "full"))
    assert vl.total - text.total == 200 * 768 + 1_582_848


# Table 1's LoRA and prompt rows, with the options of their scripts (single_lora.sh, multiple_prompts.sh, …):
# figure -> (method, options, trainable by their code's rules). The figures were set down from the paper's
# table from memory, not read from its text here (the shared references hold no Table 1): see FIDELITY.md.
D, R, N, P = 768, 128, 800, 40  # bart-base's width, LoRA rank, the prompt MLP's width, prompt length
ATTENTIONS = 6 + 6 + 6  # encoder self, decoder self and cross-attention: q and v adapted in each
BIASES = 6 * (4 * D + 4 * D + D + 2 * D) + 6 * (2 * 4 * D + 4 * D + D + 3 * D) + 2 * D  # every "bias", LNs too
PROJECTION = 1_582_848  # the visual embedding, trained under every method
LORA = ATTENTIONS * 2 * (R * D + D * R)
PROMPT = P * D + (D * N + N) + (N * D + D)
VL_ADAPTER_BART_LORA_PROMPTS = {
    5.93: ("lora", {"r": R, "bias": "all", "sharing": "shared"}, LORA + BIASES + PROJECTION, LORA),
    17.72: ("lora", {"r": R, "bias": "all", "sharing": "per-task"}, 4 * LORA + BIASES + PROJECTION, 4 * LORA),
    2.00: ("prompt-tuning-r", {"prompt_length": P, "mid_dim": N, "sharing": "shared"}, PROMPT + PROJECTION, PROMPT),
    4.53: ("prompt-tuning-r", {"prompt_length": P, "mid_dim": N, "sharing": "per-task"}, 4 * PROMPT + PROJECTION,
           4 * PROMPT),
}


@pytest.mark.parametrize("paper", list(VL_ADAPTER_BART_LORA_PROMPTS))
def test_vl_bart_lora_and_prompt_shares_follow_their_code_and_the_table(paper):
    """Counted on the model (their rules written out above), then as a share of every parameter: within
    0.01 points of the table (multiple LoRA: 17.714 against 17.72)."""
    method, options, trainable, added = VL_ADAPTER_BART_LORA_PROMPTS[paper]
    count = count_params(model_config("bart-base+clip-rn101"), method, options, tasks=VL4)
    base = count_params(model_config("bart-base+clip-rn101"), "full").total
    assert (count.trainable, count.total, count.overall) == (trainable, base, base + added)
    assert abs(count.pct_of_overall - paper) < 0.01


@pytest.mark.parametrize("method, options, paper", VL_ADAPTER_BART, ids=lambda v: str(v))
def test_vl_bart_shares_match_vl_adapters_table_in_their_convention(method, options, paper):
    count = count_params(model_config("bart-base+clip-rn101"), method, options, tasks=VL4)
    assert round(count.pct_of_overall, 2) == paper
