"""``ID@REVISION`` loads that revision of a hub model and the record names it: two revisions of a model in
a local hub cache (offline, the way a pinned model is read on a cluster without internet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from transformers import ByT5Tokenizer, T5ForConditionalGeneration

from peftbench.models.load import tiny_t5_config

REPO = "peftbench-tests/tiny-t5"
COMMITS = {"a" * 40: 0, "b" * 40: 1}  # commit -> seed of its weights


def fake_hub_cache(root) -> None:
    """A hub cache holding two commits of REPO, ``main`` pointing at the second."""
    repo = root / ("models--" + REPO.replace("/", "--"))
    for commit, seed in COMMITS.items():
        torch.manual_seed(seed)
        T5ForConditionalGeneration(tiny_t5_config()).save_pretrained(repo / "snapshots" / commit)
        ByT5Tokenizer().save_pretrained(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("b" * 40)


LOAD = """
import json, sys
from peftbench.models.load import load_model
out = {}
for name in sys.argv[1:]:
    model, _, source = load_model(name, seed=0)
    out[name] = [source, model.shared.weight[0, :4].tolist()]
print(json.dumps(out))
"""


def test_a_pinned_revision_loads_those_weights_and_the_source_names_the_commit(tmp_path):
    fake_hub_cache(tmp_path)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    names = [f"{REPO}@{'a' * 40}", f"{REPO}@{'b' * 40}", REPO]
    proc = subprocess.run([sys.executable, "-c", LOAD, *names], env=env, capture_output=True, text=True, check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    for commit, seed in COMMITS.items():
        torch.manual_seed(seed)
        expected = T5ForConditionalGeneration(tiny_t5_config()).shared.weight[0, :4].tolist()
        source, weights = loaded[f"{REPO}@{commit}"]
        assert source == f"hub:{REPO}@{commit}"
        assert weights == expected
    assert loaded[REPO] == [f"hub:{REPO}@{'b' * 40}", loaded[f"{REPO}@{'b' * 40}"][1]]  # no pin: main's commit
