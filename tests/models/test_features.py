"""The feature cache: computed once, read back exactly, and never trusted when its files disagree."""

import json

import pytest
import torch

from peftbench.models import features
from peftbench.models.features import FeatureStore, features_for, item_key
from peftbench.tasks import get_task

TASK = get_task("vqa")


@pytest.fixture(scope="module")
def items():
    rows = TASK.load_fixtures()["validation"][:12]
    return {item_key(imgs): imgs for imgs in (TASK.images(r) for r in rows)}


def extracted():
    return features.EXTRACTED["tiny-clip"]


def test_features_are_encoded_once_and_read_back_exactly(tmp_path, items):
    before = extracted()
    feats, index = features_for("tiny-clip", items, source="fixtures/vqa", root=tmp_path)
    assert extracted() - before == len(items)
    assert feats.shape == (len(items), 1, 16, 64) and set(index) == set(items)
    again, index2 = features_for("tiny-clip", items, source="fixtures/vqa", root=tmp_path)
    assert extracted() - before == len(items)  # nothing encoded the second time
    assert index2 == index and torch.equal(again, feats)
    # the same pictures under another dataset source are another entry
    features_for("tiny-clip", items, source="fixtures/other", root=tmp_path)
    assert extracted() - before == 2 * len(items)


def test_a_later_call_encodes_only_the_images_the_entry_lacks(tmp_path, items):
    keys = list(items)
    features_for("tiny-clip", {k: items[k] for k in keys[:5]}, source="s", root=tmp_path)
    before = extracted()
    feats, index = features_for("tiny-clip", items, source="s", root=tmp_path)
    assert extracted() - before == len(items) - 5
    alone, alone_index = features_for("tiny-clip", {keys[-1]: items[keys[-1]]}, source="fresh", root=tmp_path)
    torch.testing.assert_close(feats[index[keys[-1]]], alone[alone_index[keys[-1]]])


@pytest.mark.parametrize("tamper", ["flip a byte", "truncate", "other key", "other shape"])
def test_a_cache_entry_that_does_not_check_out_is_recomputed(tmp_path, items, tamper):
    feats, _ = features_for("tiny-clip", items, source="s", root=tmp_path)
    (manifest_path,) = tmp_path.glob("*.json")
    tensor_path = manifest_path.with_suffix(".safetensors")
    manifest = json.loads(manifest_path.read_text())
    if tamper == "flip a byte":
        data = bytearray(tensor_path.read_bytes())
        data[-1] ^= 0xFF
        tensor_path.write_bytes(bytes(data))
    elif tamper == "truncate":
        tensor_path.write_bytes(tensor_path.read_bytes()[:100])
    elif tamper == "other key":
        manifest["key"]["encoder"] = "clip-rn101"
        manifest_path.write_text(json.dumps(manifest))
    else:  # a manifest that claims one image fewer, its hash recomputed: the shape check catches it
        manifest["images"] = manifest["images"][:-1]
        manifest_path.write_text(json.dumps(manifest))
    key = json.loads(manifest_path.read_text())["key"] if tamper != "other key" else manifest["key"]
    assert FeatureStore(tmp_path, {**key, "encoder": "tiny-clip"}).read() is None
    before = extracted()
    again, _ = features_for("tiny-clip", items, source="s", root=tmp_path)
    assert extracted() - before == len(items)  # recomputed, not read
    torch.testing.assert_close(again, feats)
