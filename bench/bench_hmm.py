"""fastml.hmm vs hmmlearn (scaling and log implementations), one thread.

Problems: CategoricalHMM K=8, M=32 and GaussianHMM K=8, D=4 ("diag"), one sequence
of T=200,000 steps sampled from a random model. Each group times one operation for
every implementation on the same model and data.
"""

import numpy as np
import pytest

from fastml import hmm as fhmm

hmmlearn = pytest.importorskip("hmmlearn.hmm")

T, K, M, D = 200_000, 8, 32, 4


def _params(kind, rng, k=K):
    p = {
        "startprob_": rng.dirichlet(np.ones(k)),
        "transmat_": rng.dirichlet(np.ones(k), size=k) * 0.2 + 0.8 * np.eye(k),
    }
    if kind == "categorical":
        p["emissionprob_"] = rng.dirichlet(np.ones(M) * 0.5, size=k)
    else:
        p["means_"] = rng.normal(size=(k, D)) * 3
        p["covars_"] = rng.uniform(0.5, 2.0, size=(k, D))
    return p


def _make(lib, kind, impl, params):
    if lib == "fastml":
        mod, impl = fhmm, "scaling"
    else:
        mod = hmmlearn
    if kind == "categorical":
        m = mod.CategoricalHMM(
            K, n_features=M, init_params="", implementation=impl, n_iter=1, tol=0.0
        )
    else:
        m = mod.GaussianHMM(
            K,
            covariance_type="diag",
            init_params="",
            implementation=impl,
            n_iter=1,
            tol=0.0,
        )
    for name, v in params.items():
        setattr(m, name, v.copy())
    return m


@pytest.fixture(scope="module", params=["categorical", "gaussian"])
def problem(request):
    kind = request.param
    rng = np.random.default_rng(42)
    params = _params(kind, rng)
    gen = _make("fastml", kind, "scaling", params)
    X, _ = gen.sample(T, random_state=1)
    return kind, params, X


IMPLS = ["fastml", "hmmlearn-scaling", "hmmlearn-log"]


def _model(impl, problem):
    kind, params, _ = problem
    lib, _, variant = impl.partition("-")
    return _make(lib, kind, variant or "scaling", params)


@pytest.mark.parametrize("impl", IMPLS)
def bench_score(benchmark, impl, problem):
    kind, _, X = problem
    benchmark.group = f"hmm-score-{kind}-K8-T200k"
    benchmark.extra_info.update(K=K, T=T, dtype="float64")
    m = _model(impl, problem)
    lp = benchmark(m.score, X)
    assert np.isclose(lp, _model("fastml", problem).score(X), rtol=1e-8)


@pytest.mark.parametrize("impl", IMPLS)
def bench_posteriors(benchmark, impl, problem):
    kind, _, X = problem
    benchmark.group = f"hmm-posteriors-{kind}-K8-T200k"
    benchmark.extra_info.update(K=K, T=T, dtype="float64")
    m = _model(impl, problem)
    post = benchmark(m.predict_proba, X)
    assert post.shape == (T, K)


@pytest.mark.parametrize("impl", ["fastml", "hmmlearn-scaling"])
def bench_viterbi(benchmark, impl, problem):
    kind, _, X = problem
    benchmark.group = f"hmm-viterbi-{kind}-K8-T200k"
    benchmark.extra_info.update(K=K, T=T, dtype="float64")
    m = _model(impl, problem)
    _, path = benchmark(m.decode, X)
    assert path.shape == (T,)


@pytest.mark.parametrize("impl", ["fastml", "hmmlearn-scaling", "hmmlearn-log"])
def bench_baum_welch_iter(benchmark, impl, problem):
    kind, _, X = problem
    benchmark.group = f"hmm-baum-welch-1iter-{kind}-K8-T200k"
    benchmark.extra_info.update(K=K, T=T, dtype="float64")

    def setup():
        return (_model(impl, problem), X), {}

    benchmark.pedantic(lambda m, x: m.fit(x), setup=setup, rounds=5)


# GMMHMM (issue floor: one EM iteration >= 3x hmmlearn's GMMHMM at K=8, 3 mixture
# components, D=4, T=1e5). hmmlearn's fit always runs k-means in its _init, even with
# init_params=""; the peer's _init is skipped here (its parameters are set), so both
# sides time exactly one E-step + M-step.
T_GMM, N_MIX = 100_000, 3


@pytest.fixture(scope="module", params=["diag", "full"])
def gmm_problem(request):
    ct = request.param
    rng = np.random.default_rng(7)
    p = {
        "startprob_": rng.dirichlet(np.ones(K)),
        "transmat_": rng.dirichlet(np.ones(K), size=K) * 0.2 + 0.8 * np.eye(K),
        "weights_": rng.dirichlet(np.ones(N_MIX), size=K),
        "means_": rng.normal(size=(K, N_MIX, D)) * 3,
    }
    if ct == "diag":
        p["covars_"] = rng.uniform(0.5, 2.0, size=(K, N_MIX, D))
    else:
        a = rng.normal(size=(K, N_MIX, D, D)) * 0.5
        p["covars_"] = a @ np.swapaxes(a, -1, -2) + np.eye(D)
    gen = fhmm.GMMHMM(K, N_MIX, covariance_type=ct)
    for name, v in p.items():
        setattr(gen, name, v)
    X, _ = gen.sample(T_GMM, random_state=1)
    return ct, p, X


def _gmm_model(impl, ct, p):
    lib = fhmm if impl == "fastml" else hmmlearn
    m = lib.GMMHMM(
        K, N_MIX, covariance_type=ct, init_params="", n_iter=1, tol=0.0,
        implementation="scaling",
    )  # fmt: skip
    for name, v in p.items():
        setattr(m, name, v.copy())
    if impl != "fastml":
        m._init = lambda X, lengths=None: None  # parameters are set: skip its k-means
    return m


@pytest.mark.parametrize("impl", ["fastml", "hmmlearn"])
def bench_gmmhmm_em_iter(benchmark, impl, gmm_problem):
    ct, p, X = gmm_problem
    benchmark.group = f"hmm-gmmhmm-1iter-{ct}-K8-M3-D4-T100k"
    benchmark.extra_info.update(K=K, n_mix=N_MIX, D=D, T=T_GMM, dtype="float64")

    def setup():
        return (_gmm_model(impl, ct, p), X), {}

    benchmark.pedantic(lambda m, x: m.fit(x), setup=setup, rounds=3)


@pytest.mark.parametrize("impl", ["fastml", "hmmlearn"])
def bench_gmmhmm_score(benchmark, impl, gmm_problem):
    ct, p, X = gmm_problem
    benchmark.group = f"hmm-gmmhmm-score-{ct}-K8-M3-D4-T100k"
    benchmark.extra_info.update(K=K, n_mix=N_MIX, D=D, T=T_GMM, dtype="float64")
    m = _gmm_model(impl, ct, p)
    lp = benchmark(m.score, X)
    assert np.isclose(lp, _gmm_model("fastml", ct, p).score(X), rtol=1e-8)


# ---- Issue 14: state-count sweep (vectorised recursions), one thread -----------------
# Floors: Viterbi, score and posteriors >= 3x hmmlearn (implementation="scaling") at
# K = 4, 16, 64 (T = 1e5, or 2e4 at K = 64), categorical (M = 32) and diagonal Gaussian
# (D = 4) emissions.
SWEEP_K = [4, 16, 64]


def _sweep_model(lib, kind, k, p, **kw):
    mod = fhmm if lib == "fastml" else hmmlearn
    if kind == "categorical":
        m = mod.CategoricalHMM(
            k, n_features=M, init_params="", implementation="scaling", **kw
        )
    else:
        m = mod.GaussianHMM(
            k, covariance_type="diag", init_params="", implementation="scaling", **kw
        )
    for name, v in p.items():
        setattr(m, name, v.copy())
    return m


@pytest.fixture(
    scope="module",
    params=[(kind, k) for kind in ("categorical", "gaussian") for k in SWEEP_K],
    ids=lambda p: f"{p[0]}-K{p[1]}",
)
def sweep_problem(request):
    kind, k = request.param
    t = 20_000 if k == 64 else 100_000
    p = _params(kind, np.random.default_rng(42), k)
    X, _ = _sweep_model("fastml", kind, k, p).sample(t, random_state=1)
    return kind, k, t, p, X


SWEEP_OPS = {
    "score": lambda m, X: m.score(X),
    "posteriors": lambda m, X: m.predict_proba(X),
    "viterbi": lambda m, X: m.decode(X),
}


@pytest.mark.parametrize("op", list(SWEEP_OPS))
@pytest.mark.parametrize("impl", ["fastml", "hmmlearn"])
def bench_state_sweep(benchmark, impl, op, sweep_problem):
    kind, k, t, p, X = sweep_problem
    benchmark.group = f"hmm-{op}-{kind}-K{k}-T{t // 1000}k"
    benchmark.extra_info.update(K=k, T=t, dtype="float64", op=op)
    m = _sweep_model(impl, kind, k, p)
    out = benchmark(SWEEP_OPS[op], m, X)
    ref = SWEEP_OPS[op](_sweep_model("fastml", kind, k, p), X)
    if op == "score":
        assert np.isclose(out, ref, rtol=1e-8)
    elif op == "posteriors":
        assert np.allclose(out, ref, atol=1e-6)
    else:
        assert np.isclose(out[0], ref[0], rtol=1e-8)


# ---- Issue 14: many sequences on threads -----------------------------------------------
# Floor: 64 sequences of 5,000 steps, K = 16, diagonal Gaussian (D = 4): fit (10
# iterations) with n_jobs=2 >= 1.8x n_jobs=1.
N_SEQ, SEQ_LEN, K_SEQ = 64, 5_000, 16


@pytest.fixture(scope="module")
def many_sequences():
    p = _params("gaussian", np.random.default_rng(3), K_SEQ)
    X, _ = _sweep_model("fastml", "gaussian", K_SEQ, p).sample(
        N_SEQ * SEQ_LEN, random_state=2
    )
    return p, X, [SEQ_LEN] * N_SEQ


def _fit10(lib, p, n_jobs=None):
    kw = {"n_jobs": n_jobs} if lib == "fastml" else {}
    return _sweep_model(lib, "gaussian", K_SEQ, p, n_iter=10, tol=0.0, **kw)


@pytest.mark.parametrize("n_jobs", [1, 2])
def bench_fit_sequences_threads(benchmark, n_jobs, many_sequences, request):
    p, X, lengths = many_sequences
    if n_jobs > 1:
        request.getfixturevalue("all_cores")
    benchmark.group = "hmm-fit10-gaussian-K16-64x5000-n_jobs"
    benchmark.extra_info.update(K=K_SEQ, n_seq=N_SEQ, T=SEQ_LEN, n_jobs=n_jobs)

    def setup():
        return (_fit10("fastml", p, n_jobs),), {}

    benchmark.pedantic(lambda m: m.fit(X, lengths), setup=setup, rounds=3)


@pytest.mark.parametrize("impl", ["fastml-n_jobs2", "hmmlearn"])
def bench_score_sequences_all_cores(benchmark, impl, many_sequences, all_cores):
    p, X, lengths = many_sequences
    benchmark.group = "hmm-score-gaussian-K16-64x5000-all-cores"
    benchmark.extra_info.update(K=K_SEQ, n_seq=N_SEQ, T=SEQ_LEN)
    lib = impl.split("-")[0]
    m = _sweep_model(
        lib, "gaussian", K_SEQ, p, **({"n_jobs": 2} if lib == "fastml" else {})
    )
    lp = benchmark(m.score, X, lengths)
    assert np.isclose(lp, _fit10("fastml", p, 1).score(X, lengths), rtol=1e-8)
