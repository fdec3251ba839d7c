"""The feature cache: computed once, read back exactly, served from memory-mapped shards opened only
for the items asked for, and never trusted when its files disagree (a bad shard costs its own items)."""

import hashlib
import json
import os

import pytest
import torch
from safetensors.torch import load, save

from peftbench.models import features
from peftbench.models.features import FeatureStore, extract_shard, features_for, item_key
from peftbench.tasks import get_task

TASK = get_task("vqa")
ROW_BYTES = 1 * 16 * 64 * 4  # tiny-clip: one image, 16 cells of 64 float32


@pytest.fixture(scope="module")
def pictures():
    """The fixtures' distinct pictures (key -> its images), in row order."""
    return {item_key(imgs): imgs for imgs in (TASK.images(r) for r in TASK.load_fixtures()["validation"])}


@pytest.fixture(scope="module")
def items(pictures):
    return dict(list(pictures.items())[:12])


@pytest.fixture
def two_per_shard(monkeypatch):
    """Shards of two items each, so twelve items make six shards."""
    monkeypatch.setattr(features, "SHARD_BYTES", 2 * ROW_BYTES)


def extracted():
    return features.EXTRACTED["tiny-clip"]


def shard_files(root):
    (manifest,) = root.glob("*.json")
    return manifest, [manifest.with_suffix("") / s["file"] for s in json.loads(manifest.read_text())["shards"]]


def same_rows(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_features_are_encoded_once_and_read_back_exactly(tmp_path, items):
    before = extracted()
    feats, index = features_for("tiny-clip", items, source="fixtures/vqa", root=tmp_path)
    assert extracted() - before == len(items)
    assert feats.shape == (len(items), 1, 16, 64) and set(index) == set(items)
    again, index2 = features_for("tiny-clip", items, source="fixtures/vqa", root=tmp_path)
    assert extracted() - before == len(items)  # nothing encoded the second time
    assert index2 == index and same_rows(again, feats)
    # the same pictures under another dataset source are another entry
    features_for("tiny-clip", items, source="fixtures/other", root=tmp_path)
    assert extracted() - before == 2 * len(items)


def test_rows_read_back_from_the_shards_equal_the_rows_the_encoder_wrote(tmp_path, items, two_per_shard):
    features_for("tiny-clip", items, source="s", root=tmp_path)
    feats, index = features_for("tiny-clip", items, source="s", root=tmp_path)  # every row from the disk
    assert len(shard_files(tmp_path)[1]) == 6
    for key, images in items.items():
        assert torch.equal(feats[index[key]], extract_shard("tiny-clip", images).view(1, 16, 64))


def test_a_later_call_encodes_only_the_images_the_entry_lacks(tmp_path, items):
    keys = list(items)
    features_for("tiny-clip", {k: items[k] for k in keys[:5]}, source="s", root=tmp_path)
    before = extracted()
    feats, index = features_for("tiny-clip", items, source="s", root=tmp_path)
    assert extracted() - before == len(items) - 5
    alone, alone_index = features_for("tiny-clip", {keys[-1]: items[keys[-1]]}, source="fresh", root=tmp_path)
    torch.testing.assert_close(feats[index[keys[-1]]], alone[alone_index[keys[-1]]])


def test_new_items_are_appended_as_new_shards_and_the_old_ones_never_rewritten(tmp_path, items, two_per_shard):
    keys = list(items)
    features_for("tiny-clip", {k: items[k] for k in keys[:4]}, source="s", root=tmp_path)
    _, old = shard_files(tmp_path)
    before = [(p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in old]
    features_for("tiny-clip", items, source="s", root=tmp_path)
    _, now = shard_files(tmp_path)
    assert now[:2] == old and len(now) == 6
    assert [(p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in old] == before


def test_reading_one_row_of_a_many_shard_entry_opens_its_shard_alone(tmp_path, items, two_per_shard, monkeypatch):
    features_for("tiny-clip", items, source="s", root=tmp_path)
    _, files = shard_files(tmp_path)
    opened, real_open = [], os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    key = list(items)[7]  # the 8th item: the 4th shard's second
    feats, index = features_for("tiny-clip", {key: items[key]}, source="s", root=tmp_path)
    assert [p for p in opened if p.endswith(".safetensors")] == [str(files[3])]
    assert torch.equal(feats[index[key]], extract_shard("tiny-clip", items[key]).view(1, 16, 64))


def tamper_with(shard, how: str, other_entry) -> None:
    if how == "flip a byte":
        data = bytearray(shard.read_bytes())
        data[-1] ^= 0xFF
        shard.write_bytes(bytes(data))
    elif how == "truncate":
        shard.write_bytes(shard.read_bytes()[:100])
    elif how == "swapped with another entry's":
        shard.write_bytes(other_entry.read_bytes())
    elif how == "symlink to /dev/zero":
        shard.unlink()
        shard.symlink_to("/dev/zero")
    else:  # NaN features, the manifest's hash made to match: the values are checked too
        tensors = load(shard.read_bytes())
        tensors["features"][0, 0, 0, 0] = float("nan")
        data = save(tensors)
        shard.write_bytes(data)
        manifest_path = shard.parent.with_suffix(".json")
        manifest = json.loads(manifest_path.read_text())
        manifest["shards"][int(shard.stem)]["sha256"] = hashlib.sha256(data).hexdigest()
        manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("how", ["flip a byte", "truncate", "swapped with another entry's", "symlink to /dev/zero",
                                 "non-finite"])
def test_a_bad_shard_is_set_aside_and_only_its_items_recomputed(tmp_path, pictures, items, two_per_shard, how):
    feats, index = features_for("tiny-clip", items, source="s", root=tmp_path / "a")
    # copies: the rows are views of the files, which this test edits in place (the cache never does)
    expected = {k: feats[index[k]].clone() for k in items}
    others = dict(list(pictures.items())[12:16])
    features_for("tiny-clip", others, source="s", root=tmp_path / "b")
    _, files = shard_files(tmp_path / "a")
    untouched = {p: (p.stat().st_ino, p.read_bytes()) for p in files if p != files[2]}
    tamper_with(files[2], how, shard_files(tmp_path / "b")[1][0])
    before = extracted()
    again, index2 = features_for("tiny-clip", items, source="s", root=tmp_path / "a")
    assert extracted() - before == 2  # the bad shard's two items, nothing else
    for k in items:  # recomputed in a smaller batch: equal up to float rounding
        torch.testing.assert_close(again[index2[k]], expected[k])
    assert [p.name for p in (tmp_path / "a" / "set-aside").iterdir()] == [f"{files[2].parent.name}-0002.safetensors"]
    assert {p: (p.stat().st_ino, p.read_bytes()) for p in untouched} == untouched
    _, now = shard_files(tmp_path / "a")
    assert files[2] not in now and len(now) == 6  # dropped from the manifest, its items in a new shard


@pytest.mark.parametrize("tamper", ["flip a byte", "truncate", "other key", "other shape"])
def test_a_cache_entry_that_does_not_check_out_is_recomputed(tmp_path, items, tamper):
    feats, _ = features_for("tiny-clip", items, source="s", root=tmp_path)
    feats = [row.clone() for row in feats]  # the rows are views of the file this test edits in place
    manifest_path, (tensor_path,) = shard_files(tmp_path)
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
    else:  # a manifest that claims one image fewer: its shape no longer checks out
        manifest["shards"][0]["items"] = manifest["shards"][0]["items"][:-1]
        manifest_path.write_text(json.dumps(manifest))
    key = json.loads(manifest_path.read_text())["key"] if tamper != "other key" else manifest["key"]
    assert FeatureStore(tmp_path, {**key, "encoder": "tiny-clip"}).read() is None
    before = extracted()
    again, _ = features_for("tiny-clip", items, source="s", root=tmp_path)
    assert extracted() - before == len(items)  # recomputed, not read
    torch.testing.assert_close(again, feats)


def test_a_verified_shard_is_hashed_once_until_its_file_changes(tmp_path, items, monkeypatch):
    monkeypatch.setattr(features, "FRESH_S", -1.0)  # this test's files are seconds old; record them anyway
    hashed, check = [], features.check_stream
    monkeypatch.setattr(features, "check_stream", lambda fd, *a, **k: hashed.append(fd) or check(fd, *a, **k))
    features_for("tiny-clip", items, source="s", root=tmp_path)  # written, then read back: hashed
    assert len(hashed) == 1
    features_for("tiny-clip", items, source="s", root=tmp_path)
    assert len(hashed) == 1  # its stamp matched: mapped without hashing
    _, (shard,) = shard_files(tmp_path)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.with_name("x").write_bytes(bytes(data))
    os.rename(shard.with_name("x"), shard)  # another file: another inode and ctime
    before = extracted()
    features_for("tiny-clip", items, source="s", root=tmp_path)
    assert extracted() - before == len(items)  # hashed again and refused: recomputed
    assert len(hashed) == 3  # the changed shard, then the recomputed one read back


def test_a_shard_changed_within_fresh_s_is_not_recorded_as_verified(tmp_path, items, monkeypatch):
    hashed, check = [], features.check_stream
    monkeypatch.setattr(features, "check_stream", lambda fd, *a, **k: hashed.append(fd) or check(fd, *a, **k))
    features_for("tiny-clip", items, source="s", root=tmp_path)
    features_for("tiny-clip", items, source="s", root=tmp_path)
    _, (shard,) = shard_files(tmp_path)
    assert len(hashed) == 2 and not (shard.parent / "verified.json").exists()  # hashed on every read
