"""HMM fits on Dask arrays (``fit(X, lengths)`` with X a dask array, lengths numpy), on a
real 2-process ``LocalCluster``. Oracle: the in-memory fit of the same data from the
same start. With at most ``INIT_SAMPLE`` rows the dask initialisation sees every row
in order and draws the same random numbers, so the default initialisation is the same
start: every fitted parameter and the whole log-likelihood history must agree to 1e-10
relative (the statistics are summed per chunk, then over the chunks: rounding only).
Skipped without dask.distributed.
"""

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

from fastml.hmm import (  # noqa: E402
    GMMHMM,
    CategoricalHMM,
    GaussianHMM,
    MultinomialHMM,
    PoissonHMM,
)
from fastml.hmm._dask import INIT_SAMPLE, whole_sequences  # noqa: E402

COV_TYPES = ["diag", "spherical", "full", "tied"]
RTOL = 1e-10


# ``cluster`` / ``client``: conftest.py (one 2-process LocalCluster for this module).
pytestmark = pytest.mark.usefixtures("restore_environ")


RNG = np.random.default_rng(7)
LENGTHS = RNG.integers(15, 70, size=40)  # 40 sequences, ~1700 rows
N = int(LENGTHS.sum())
STATES = (np.arange(N) // 150) % 3


def _data(kind):
    rng = np.random.default_rng(11)
    if kind == "categorical":
        X = rng.integers(0, 3, size=(N, 1)) + 2 * (STATES[:, None] == 1)
        X[10] = -1  # a missing symbol
        return X
    if kind == "poisson":
        return rng.poisson(1.0 + 4.0 * STATES[:, None], size=(N, 2))
    if kind == "multinomial":
        p = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
        return np.stack([rng.multinomial(4, p[s]) for s in STATES])
    X = rng.normal(size=(N, 2)) + 3.0 * STATES[:, None]
    if kind == "gaussian-diag":
        X[5] = np.nan  # a missing row
        X[77, 1] = np.nan  # a partially observed row
    return X


def _model(kind, **kw):
    kw = dict(n_iter=2, random_state=0, tol=-1e300, **kw)
    if kind == "categorical":
        return CategoricalHMM(3, **kw)
    if kind == "poisson":
        return PoissonHMM(3, **kw)
    if kind == "multinomial":
        return MultinomialHMM(3, **kw)
    family, ct = kind.split("-")
    if family == "gaussian":
        return GaussianHMM(3, covariance_type=ct, **kw)
    return GMMHMM(2, n_mix=2, covariance_type=ct, **kw)


PARAMS = {
    "categorical": ["emissionprob_"],
    "poisson": ["lambdas_"],
    "multinomial": ["emissionprob_"],
    "gaussian": ["means_", "_covars_"],
    "gmm": ["weights_", "means_", "covars_"],
}
KINDS = ["categorical", "poisson", "multinomial"] + [
    f"{fam}-{ct}" for fam in ("gaussian", "gmm") for ct in COV_TYPES
]


def _fit(model, X, lengths=LENGTHS):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, lengths)


def _assert_same_fit(got, ref, kind):
    # oracle: the in-memory fit from the same start
    np.testing.assert_allclose(got.monitor_.history, ref.monitor_.history, rtol=RTOL)
    for name in ["startprob_", "transmat_"] + PARAMS[kind.split("-")[0]]:
        np.testing.assert_allclose(
            getattr(got, name), getattr(ref, name), rtol=RTOL, atol=1e-13, err_msg=name
        )


@pytest.mark.parametrize("kind", KINDS)
def test_dask_fit_equals_in_memory_fit(client, kind):
    X = _data(kind)
    ref = _fit(_model(kind), X)
    dX = da.from_array(X, chunks=(500, 1))  # rows cut inside sequences, features too
    got = _fit(_model(kind), dX)
    assert len(ref.monitor_.history) == 2
    _assert_same_fit(got, ref, kind)
    if kind == "multinomial":  # set from the data: every row sums to 4
        assert got.n_trials == 4 and (ref.n_trials == 4).all()
    if kind == "categorical":
        assert got.n_features == ref.n_features == 5


def test_dask_fit_does_not_depend_on_the_chunking(client):
    kind = "gmm-full"
    X = _data(kind)
    a, b = (_fit(_model(kind), da.from_array(X, chunks=(r, 2))) for r in (300, 1111))
    assert len(b.monitor_.history) == 2
    _assert_same_fit(a, b, kind)


def test_dask_fit_from_given_parameters(client):
    """``init_params=""``: the dask fit starts from the parameters set."""
    X = _data("gaussian-full")
    start = dict(
        startprob_=np.array([0.2, 0.3, 0.5]),
        transmat_=np.full((3, 3), 1 / 3),
        means_=np.array([[0.0, 0.0], [3.0, 3.0], [6.0, 6.0]]) + 0.3,
        covars_=np.stack([np.eye(2)] * 3),
    )
    models = []
    for data in (X, da.from_array(X, chunks=(400, 2))):
        m = _model("gaussian-full", init_params="")
        for name, value in start.items():
            setattr(m, name, value.copy())
        models.append(_fit(m, data))
    _assert_same_fit(models[1], models[0], "gaussian-full")


def test_dask_init_on_a_sample_is_deterministic(client):
    """Above INIT_SAMPLE rows the emission initialisation sees a sample drawn by
    random_state: the same seed gives the same start, another seed another one."""
    rng = np.random.default_rng(3)
    lengths = np.full(INIT_SAMPLE // 500 + 4, 500)
    X = rng.normal(size=(int(lengths.sum()), 1))
    X[::2] += 4
    dX = da.from_array(X, chunks=(5000, 1))

    def fit(seed):
        return _fit(GaussianHMM(2, n_iter=0, random_state=seed), dX, lengths)

    a, b, c = fit(5), fit(5), fit(6)  # n_iter=0: the initialisation only
    assert np.array_equal(a.means_, b.means_) and np.array_equal(a._covars_, b._covars_)
    assert not np.array_equal(a.means_, c.means_)


def test_dask_multinomial_trials_per_row(client):
    """Rows with different sums: n_trials set from the data is the row sums, as in
    memory (and the fit is the same); given per-row n_trials are checked per chunk."""
    rng = np.random.default_rng(2)
    trials = rng.integers(3, 6, size=N)
    X = np.stack([rng.multinomial(t, [0.5, 0.3, 0.2]) for t in trials])
    ref = _fit(_model("multinomial"), X)
    got = _fit(_model("multinomial"), da.from_array(X, chunks=(500, 3)))
    assert np.array_equal(got.n_trials, trials) and np.array_equal(ref.n_trials, trials)
    _assert_same_fit(got, ref, "multinomial")
    wrong = trials.copy()
    wrong[1300] += 1
    dX = da.from_array(X, chunks=(500, 3))
    ends = np.cumsum(whole_sequences(dX, LENGTHS)[0].chunks[0])
    i = int(np.searchsorted(ends, 1300, side="right"))
    with pytest.raises(ValueError, match=rf"X chunk \({i}, 0\).*must sum to n_trials"):
        _model("multinomial", n_trials=wrong).fit(dX, LENGTHS)


def test_whole_sequence_chunks():
    """Chunk boundaries fall at sequence boundaries; each sequence is in the chunk its
    first row was in; aligned chunks are kept."""
    lengths = np.array([5, 30, 2, 2, 9, 40, 1, 11])
    X = da.zeros((int(lengths.sum()), 2), chunks=(10, 2))
    Xr, parts = whole_sequences(X, lengths)
    ends = set(np.cumsum(lengths).tolist())
    bounds = np.cumsum(Xr.chunks[0])
    assert set(bounds.tolist()) <= ends  # whole sequences only
    assert np.concatenate([p[0] for p in parts]).tolist() == lengths.tolist()
    assert [int(p[0].sum()) for p in parts] == list(Xr.chunks[0])
    # by hand: starts 0, 5, 35, 37, 39, 48, 88, 89 -> chunks of rows 0-9, 30-39, 40-49,
    # 80-89 own them
    assert [p[0].tolist() for p in parts] == [[5, 30], [2, 2, 9], [40], [1, 11]]
    Xa, parts_a = whole_sequences(Xr, lengths)
    assert Xa is Xr and [p[0].tolist() for p in parts_a] == [
        p[0].tolist() for p in parts
    ]


def test_dask_bad_input(client):
    X = _data("poisson").astype(float)
    dX = da.from_array(X, chunks=(500, 2))
    with pytest.raises(ValueError, match=r"lengths must sum to the number of samples"):
        PoissonHMM(2).fit(dX, LENGTHS[:-1])
    bad = LENGTHS.copy()
    bad[3], bad[4] = 0, bad[3] + bad[4]
    with pytest.raises(ValueError, match=r"zero-length.*lengths\[3\] = 0"):
        PoissonHMM(2).fit(dX, bad)
    Xn = X.copy()
    Xn[1200, 0] = np.nan
    ends = np.cumsum(whole_sequences(dX, LENGTHS)[0].chunks[0])
    i = int(np.searchsorted(ends, 1200, side="right"))  # the chunk holding row 1200
    where = rf"X chunk \({i}, 0\) \(\[{ends[i - 1]}:{ends[i]}, 0:2\]\)"
    with pytest.raises(ValueError, match=where + ".*finite"):
        PoissonHMM(2).fit(da.from_array(Xn, chunks=(500, 2)), LENGTHS)
    Xg = _data("gaussian-full")
    Xg[1200, 0] = np.nan  # partially missing: not allowed with full covariances
    with pytest.raises(ValueError, match=where + ".*partially NaN"):
        _model("gaussian-full").fit(da.from_array(Xg, chunks=(500, 2)), LENGTHS)
    unknown = dX[dX[:, 0] > -1]
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        PoissonHMM(2).fit(unknown, LENGTHS)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        PoissonHMM(2).fit(da.ones(10, chunks=5), [10])
    with pytest.raises(ValueError, match="n_jobs"):
        PoissonHMM(2, n_jobs=0).fit(dX, LENGTHS)
    m = _fit(PoissonHMM(2, n_iter=1, random_state=0), X, LENGTHS)
    for method in ("score_samples", "decode"):
        with pytest.raises(TypeError, match=r"dask array; compute it first"):
            getattr(m, method)(dX, LENGTHS)


def test_dask_score_and_lazy_predictions(client):
    """score (reduced on the workers) and the lazy predict / predict_proba (one task
    per chunk of whole sequences) equal the in-memory results: the same kernels on
    the same sequences, so the per-row results have the same bits."""
    X = _data("gaussian-diag")  # with missing values
    m = _fit(_model("gaussian-diag"), X)
    dX = da.from_array(X, chunks=(500, 1))
    proba, path = m.predict_proba(dX, LENGTHS), m.predict(dX, LENGTHS)
    assert isinstance(proba, da.Array) and isinstance(path, da.Array)
    assert proba.shape == (N, 3) and proba.chunks[0] == path.chunks[0]
    proba, path = proba.compute(), path.compute()
    # oracle: the in-memory methods
    np.testing.assert_array_equal(proba, m.predict_proba(X, LENGTHS))
    np.testing.assert_array_equal(path, m.predict(X, LENGTHS))
    assert m.score(dX, LENGTHS) == pytest.approx(m.score(X, LENGTHS), rel=1e-12)
    assert m.bic(dX, LENGTHS) == pytest.approx(m.bic(X, LENGTHS), rel=1e-12)


def test_client_closed_mid_fit(close_client_mid_fit):
    rng = np.random.default_rng(4)
    lengths = np.full(200, 1000)
    X = da.from_array(rng.normal(size=(200_000, 2)), chunks=(10_000, 2))
    close_client_mid_fit(
        lambda: _fit(GaussianHMM(3, n_iter=500, random_state=0), X, lengths), 2.0
    )
