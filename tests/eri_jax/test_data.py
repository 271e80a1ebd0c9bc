"""eri_jax.inputs.dataset: metadata, whole-split loading, fixed-size seeded batches, device placement."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eri_jax.inputs.dataset import (
    Batch,
    SplitData,
    dataset_meta,
    iterate_batches,
    load_split,
    num_batches,
    put_on_device,
)
from tests.tfds_hume.tiny_export import EMOTIONS, SPLIT_OF, T, make_export, tiny_features
from tfds_hume.build import build

NAME = "hume_reaction/full"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _, expected = make_export(root / "export")
    build(root / "export", config="full", data_dir=root / "tfds")
    return root / "tfds", expected


def _synthetic(n: int, e: int = 3) -> SplitData:
    """An in-memory split whose feature values encode their row (row i is all i)."""
    rows = np.arange(n, dtype=np.float32)
    return SplitData(
        split="train", ids=np.array([f"{i:05d}" for i in range(n)]),
        labels=np.repeat(rows[:, None], e, 1), features={"f": np.repeat(rows[:, None, None], 2, 1)},
        frame_masks={"f": np.ones((n, 2), bool)}, missing={"f": np.zeros(n, bool)},
        emotions=[f"e{i}" for i in range(e)])


def test_dataset_meta(data_dir):
    meta = dataset_meta(NAME, data_dir=data_dir[0])
    assert meta.name == NAME and meta.emotions == EMOTIONS
    assert meta.features == tiny_features()
    assert meta.features["pixels"].dim == 6 and meta.features["vllava_emb"].model_id == "tiny/video-llava"
    assert meta.synthetic and meta.random_weights and meta.dataset == "synthetic-demo"
    assert meta.splits == {"train": 4, "dev": 2, "test": 2}


def test_load_split_matches_the_export(data_dir):
    root, expected = data_dir
    keys = ["pixels", "fau", "vllava_emb", "vllava_text", "llava_text"]
    dev = load_split("dev", keys, name=NAME, data_dir=root)
    assert dev.ids.tolist() == ["00001", "00005"] and dev.emotions == EMOTIONS
    assert dev.labels.dtype == np.float32 and dev.labels.shape == (2, 7)
    assert set(dev.features) == {"pixels", "fau", "vllava_emb"}  # numeric only
    assert dev.features["pixels"].shape == (2, T, 6) and dev.features["vllava_emb"].shape == (2, 5)
    assert dev.texts["vllava_text"].shape == (2,) and dev.texts["llava_text"].shape == (2, T)
    assert set(dev.frame_masks) == {"pixels", "fau", "llava_text"}
    for i, cid in enumerate(dev.ids):
        exp = expected[cid]
        np.testing.assert_array_equal(dev.labels[i], exp["labels"])
        np.testing.assert_array_equal(dev.features["pixels"][i], exp["pixels"])
        np.testing.assert_array_equal(dev.features["vllava_emb"][i], exp["vllava_emb"])
        assert dev.texts["vllava_text"][i] == str(exp["vllava_text"])  # UTF-8 decoded
        assert dev.texts["llava_text"][i].tolist() == exp["llava_text"].tolist()
    # 00001 lacks fau: flagged, zeros, no real frame.
    assert dev.missing["fau"].tolist() == [True, False]
    assert not dev.features["fau"][0].any() and not dev.frame_masks["fau"][0].any()
    assert dev.frame_masks["fau"][1].all()
    test = load_split("test", ["pixels"], name=NAME, data_dir=root)
    assert np.isnan(test.labels).all()
    train = load_split("train", ["pixels"], name=NAME, data_dir=root)
    row = train.ids.tolist().index("00002")
    assert train.frame_masks["pixels"][row].tolist() == [True, False, True, False]


def test_load_split_errors_list_what_exists(data_dir):
    root, _ = data_dir
    with pytest.raises(ValueError, match=r"no feature\(s\) \['vit'\].*pixels \(frame\[4, 6\]\).*vllava_text"):
        load_split("train", ["pixels", "vit"], name=NAME, data_dir=root)
    with pytest.raises(ValueError, match=r"no split 'devel'.*\['train', 'dev', 'test'\]"):
        load_split("devel", ["pixels"], name=NAME, data_dir=root)
    with pytest.raises(FileNotFoundError, match="hume_reaction/shipped"):
        load_split("train", ["pixels"], name="hume_reaction/shipped", data_dir=root)


def test_batches_have_fixed_shapes_masks_and_padding():
    data = _synthetic(10)
    batches = list(iterate_batches(data, 4))
    assert len(batches) == num_batches(10, 4) == 3
    for b in batches:
        assert b.inputs["f"].shape == (4, 2, 1) and b.labels.shape == (4, 3)
        assert b.frame_masks["f"].shape == (4, 2) and b.mask.shape == (4,) and b.index.dtype == np.int32
    last = batches[-1]
    assert last.index.tolist() == [8, 9, -1, -1] and last.mask.tolist() == [True, True, False, False]
    assert (last.labels[2:] == 0).all() and (last.inputs["f"][2:] == 0).all()
    assert not last.frame_masks["f"][2:].any() and last.missing["f"].tolist() == [False, False, True, True]
    # Values follow the index: row i holds i.
    for b in batches:
        np.testing.assert_array_equal(b.labels[b.mask, 0], b.index[b.mask])
    assert list(iterate_batches(_synthetic(0), 4)) == []
    with pytest.raises(ValueError, match="batch_size"):
        num_batches(3, 0)


def test_seeded_shuffle_is_deterministic_and_covers_each_row_once():
    data = _synthetic(23)

    def order(**kw):
        return np.concatenate([b.index[b.mask] for b in iterate_batches(data, 5, **kw)])

    assert order().tolist() == list(range(23))
    a = order(shuffle=True, seed=3, epoch=0)
    assert sorted(a.tolist()) == list(range(23))  # every example exactly once
    np.testing.assert_array_equal(a, order(shuffle=True, seed=3, epoch=0))
    assert not np.array_equal(a, order(shuffle=True, seed=3, epoch=1))
    assert not np.array_equal(a, order(shuffle=True, seed=4, epoch=0))


def test_batch_is_a_pytree_and_jit_compiles_once():
    traces = []

    @jax.jit
    def step(batch: Batch):
        traces.append(1)
        w = batch.mask.astype(jnp.float32)
        return jnp.sum(batch.inputs["f"][:, 0, 0] * w)

    data = _synthetic(11)
    total = sum(float(step(b)) for b in iterate_batches(data, 4, shuffle=True, seed=0))
    assert total == sum(range(11)) and len(traces) == 1  # padded last batch: no recompilation
    leaves = jax.tree_util.tree_leaves(next(iterate_batches(data, 4)))
    assert len(leaves) == 6  # inputs, frame_masks, labels, mask, index, missing


def test_put_on_device_gives_the_same_batches(data_dir):
    root, _ = data_dir
    host = load_split("train", ["pixels", "vllava_emb", "llava_text"], name=NAME, data_dir=root)
    dev = put_on_device(host, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    assert isinstance(dev.features["pixels"], jax.Array) and isinstance(dev.labels, jax.Array)
    assert isinstance(dev.missing["pixels"], jax.Array) and isinstance(dev.frame_masks["pixels"], jax.Array)
    assert isinstance(dev.texts["llava_text"], np.ndarray) and dev.ids is host.ids
    for hb, db in zip(iterate_batches(host, 3, shuffle=True, seed=1), iterate_batches(dev, 3, shuffle=True, seed=1)):
        assert isinstance(db.inputs["pixels"], jax.Array)
        for h, d in zip(jax.tree_util.tree_leaves(hb), jax.tree_util.tree_leaves(db)):
            np.testing.assert_array_equal(np.asarray(d), h)
    assert isinstance(put_on_device(host).labels, jax.Array)


def test_split_order_is_ascending_id(data_dir):
    root, _ = data_dir
    train = load_split("train", [], name=NAME, data_dir=root)
    assert train.ids.tolist() == sorted(c for c, s in SPLIT_OF.items() if s == "train")
    assert train.features == {} and train.labels.shape == (4, 7)
