"""fastml.rbm.BernoulliRBM vs scikit-learn's: one training epoch on digits (one thread).

256 hidden units, batch size 10, learning rate 0.1, persistent CD-1 for both (scikit-
learn's algorithm); the data is the 1797 x 64 digits scaled to [0, 1].
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.load_digits().data / 16.0


@pytest.mark.parametrize("impl", ["fastml", "sklearn"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def bench_rbm_epoch_digits(benchmark, impl, dtype, digits):
    benchmark.group = f"rbm-epoch-digits-1797x64-256h-b10-{np.dtype(dtype).name}"
    x = digits.astype(dtype)
    if impl == "fastml":
        from fastml.rbm import BernoulliRBM
    else:
        from sklearn.neural_network import BernoulliRBM
    benchmark.extra_info.update(dtype=np.dtype(dtype).name, n_components=256)
    rbm = BernoulliRBM(n_components=256, batch_size=10, n_iter=1, random_state=0)
    benchmark(rbm.fit, x)
    assert rbm.components_.shape == (256, 64)
    assert np.isfinite(rbm.components_).all()
