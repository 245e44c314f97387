"""Threads in grid loopy BP and in Conv2d (issue 12): the same bits for every n_jobs,
the oracles (NumPy BP recursion, torch autograd) on problems cut into several blocks,
the cancel byte the kernels poll, and bad n_jobs.

Bit-identity is asserted with ``==`` for n_jobs = 1, 2, 3, 4: the blocks (row strips,
blocks of images) depend on the problem only and partial results are merged in block
order. Oracle tolerances: BP vs the NumPy recursion 1e-12 absolute (float64 rounding of
a few dozen operations per message); conv vs torch autograd 1e-10 relative (float64)
and 1e-4 relative (float32, accumulated over up to 500 images).
"""

import _thread
import threading
import time

import numpy as np
import pytest

from fastml import nn
from fastml.graphical import PairwiseMRF, _grid
from fastml.nn import _functional

N_JOBS = [1, 2, 3, 4]


# ------------------------------------------------------------------------ grid BP
def _bp_runs(mrf, **kw):
    return [mrf.loopy_belief_propagation(n_jobs=n, **kw) for n in N_JOBS]


@pytest.mark.parametrize("schedule", ["parallel", "checkerboard"])
@pytest.mark.parametrize("method", ["sum", "max"])
@pytest.mark.parametrize("strip", [None, 2, 3])
def test_grid_bp_identical_for_every_n_jobs(schedule, method, strip, monkeypatch):
    # several strips: the default 64 rows on a 130-row grid (a last strip of 2 rows),
    # and strips of 2 and 3 rows on small grids, narrower than the GRID_FUSE - 1 ghost
    # rows a fused flooding strip recomputes beyond its edges
    if strip is not None:
        monkeypatch.setattr(_grid, "_STRIP_ROWS", strip)
    H = 130 if strip is None else 11
    rng = np.random.default_rng(3)
    for pair in (0.7 * np.eye(3), rng.standard_normal((3, 3))):  # Potts and general
        mrf = PairwiseMRF(rng.standard_normal((H, 5, 3)), pair)
        for max_iter, tol, damping in [(7, 0.0, 0.3), (200, 1e-9, 0.0)]:
            runs = _bp_runs(
                mrf, max_iter=max_iter, tol=tol, damping=damping, method=method,
                schedule=schedule,
            )  # fmt: skip
            for r in runs[1:]:
                assert (r.beliefs == runs[0].beliefs).all()
                assert (r.n_iter, r.delta) == (runs[0].n_iter, runs[0].delta)


def test_grid_kernels_stop_on_the_cancel_byte():
    # a thread whose neighbour was interrupted stops within its polling budget
    K, H, W = 8, 16, 512
    mod = _grid._bp_grid
    hs = _grid._half_stride(W)
    unary = np.ones((H, K, 2, hs))
    pair = np.eye(K)
    start = np.empty((4, 4, K, 2, hs))
    mod.grid_init(start, W, False)
    msgs = np.zeros((H, 4, K, 2, hs))
    scratch = np.zeros((2 * K + 3 + 24 * mod.GRID_FUSE * K) * hs)
    model = (unary, W, pair, pair, 1.0, 0.0, True, False, 0.0)
    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        mod.grid_flood_strip(
            *model, msgs, msgs[:8].copy(), start, True, 0, H, 4, np.empty((H, W, K)),
            False, scratch, np.ones(1, np.uint8),
        )  # fmt: skip
    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        mod.grid_checkerboard_rows(
            *model, msgs, 0, H, 0, H, True, scratch, np.ones(1, np.uint8)
        )
    # the same calls run to the end with the byte clear
    mod.grid_checkerboard_rows(*model, msgs, 0, H, 0, H, True, scratch,
                               np.zeros(1, np.uint8))  # fmt: skip


def test_grid_bp_ctrl_c_stops_every_thread():
    # a Ctrl-C (interrupt_main) 0.2 s into a run of a million sweeps on 2 threads
    # raises KeyboardInterrupt within seconds, and the pool is then idle: a second run
    # works
    mrf = PairwiseMRF.potts(np.random.default_rng(8).standard_normal((256, 64, 4)), 0.5)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        mrf.loopy_belief_propagation(max_iter=10**6, tol=0.0, n_jobs=2)
    timer.join()
    assert time.perf_counter() - t0 < 10  # a million sweeps take hours
    kw = dict(max_iter=5, tol=0.0)
    two = mrf.loopy_belief_propagation(n_jobs=2, **kw).beliefs
    assert (two == mrf.loopy_belief_propagation(n_jobs=1, **kw).beliefs).all()


# ------------------------------------------------------------------------- Conv2d
# (batch, C, H, W, F, k, stride, padding): 500 small images make blocks of 388 (float32)
# or 194 (float64) images, 5 images of 16 x 32 x 32 one block per image; the layer runs
# the last two on the direct kernels where the CPU has AVX-512, the last one in blocks
# of 3 images
CONV_PROBLEMS = [
    (500, 3, 9, 9, 4, 3, 2, 1),
    (5, 16, 32, 32, 8, 3, 1, 1),
    (24, 16, 32, 32, 32, 3, 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("problem", CONV_PROBLEMS)
def test_conv2d_identical_for_every_n_jobs(dtype, problem):
    n, c, h, w, f, k, s, p = problem
    rng = np.random.default_rng(6)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    assert len(_functional.block_bounds(n, _functional._chunk_images(
        n, c * k * k * ((h + 2 * p - k) // s + 1) ** 2 * np.dtype(dtype).itemsize
    ))) > 1  # fmt: skip
    wt = rng.standard_normal((f, c, k, k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    outs = []
    for n_jobs in N_JOBS:
        y, cols = nn.conv2d_forward(x, wt, b, s, p, n_jobs=n_jobs)
        g = np.cos(y)  # any fixed upstream gradient
        grads = nn.conv2d_backward(g, x.shape, wt, cols, s, p, n_jobs=n_jobs)
        layer = nn.Conv2d(c, f, k, s, p, random_state=0, dtype=dtype, n_jobs=n_jobs)
        ly = layer.forward(x)
        lgx = layer.backward(np.cos(ly))
        outs.append((y, cols, *grads, ly, lgx, *layer.grads.values()))
    for other in outs[1:]:
        for a, b_ in zip(outs[0], other, strict=True):
            assert a.dtype == dtype and (a == b_).all()


@pytest.mark.parametrize("problem", CONV_PROBLEMS)
def test_conv2d_threads_match_torch_autograd(problem):
    # oracle: torch autograd (float64), gradients of sum(conv(x) * r), with 3 threads
    torch = pytest.importorskip("torch")
    n, c, h, w, f, k, s, p = problem
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, w))
    for dtype, tol in [(np.float64, 1e-10), (np.float32, 1e-4)]:
        layer = nn.Conv2d(c, f, k, s, p, random_state=1, dtype=dtype, n_jobs=3)
        layer.params["bias"][...] = rng.standard_normal(f)
        y = layer.forward(x.astype(dtype))
        r = rng.standard_normal(y.shape)
        gx = layer.backward(r.astype(dtype))
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(
            layer.params["weight"], dtype=torch.float64, requires_grad=True
        )
        bt = torch.tensor(layer.params["bias"], dtype=torch.float64, requires_grad=True)
        yt = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)
        (yt * torch.tensor(r)).sum().backward()
        for ours, ref in [
            (y, yt.detach()),
            (gx, xt.grad),
            (layer.grads["weight"], wt.grad),
            (layer.grads["bias"], bt.grad),
        ]:
            ref = ref.numpy()
            assert np.abs(ours - ref).max() <= tol * np.abs(ref).max()


def test_conv2d_n_jobs_2_keeps_two_busy_threads(monkeypatch):
    # every block's kernel call is recorded with its thread and the BLAS thread count
    # in force there: two threads (the caller and one pool thread), BLAS at one thread
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []
    real = _functional._conv

    class Recorder:
        def __getattr__(self, name):
            return getattr(real, name)

        def im2col(self, *args):
            blas = [i["num_threads"] for i in threadpoolctl.threadpool_info()
                    if i["user_api"] == "blas"]  # fmt: skip
            seen.append((threading.get_ident(), max(blas, default=1)))
            time.sleep(0.01)  # let the other thread take blocks too
            return real.im2col(*args)

    monkeypatch.setattr(_functional, "_conv", Recorder())
    x = np.ones((8, 16, 32, 32))  # a block per image
    nn.conv2d_forward(x, np.ones((4, 16, 3, 3)), padding=1, n_jobs=2)
    assert len(seen) == 8
    assert len({t for t, _ in seen}) <= 2 and {b for _, b in seen} == {1}


def test_conv_kernels_stop_on_the_cancel_byte():
    x = np.ones((32, 16, 32, 32), np.float32)
    cols = np.empty((32, 16 * 9, 32 * 32), np.float32)
    stop = np.ones(1, np.uint8)
    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        _functional._conv.im2col(x, 3, 3, 1, 1, cols, stop)
    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        _functional._conv.col2im(cols, 3, 3, 1, 1, np.empty_like(x), stop)
    if _functional._DIRECT:
        w = np.ones((8, 16, 3, 3), np.float32)
        y = np.empty((32, 8, 32, 32), np.float32)
        with pytest.raises(KeyboardInterrupt, match="cancelled"):
            _functional._conv.conv2d_direct_forward(x, w, None, 1, y, stop)
        with pytest.raises(KeyboardInterrupt, match="cancelled"):
            _functional._conv.conv2d_direct_backward(
                y, x, w, 1, np.empty_like(x), np.empty_like(w), stop
            )
    _functional._conv.im2col(x, 3, 3, 1, 1, cols, np.zeros(1, np.uint8))
    assert (cols[:, 4 * 9 + 4] == 1).all()  # the centre tap reads every pixel


# ------------------------------------------------------------------------ bad n_jobs
@pytest.mark.parametrize(
    "bad, err, msg",
    [(0, ValueError, "got 0"), (-2, ValueError, "got -2"), (1.5, TypeError, "float")],
)
def test_bad_n_jobs(bad, err, msg):
    x = np.ones((2, 1, 4, 4))
    wt = np.ones((1, 1, 3, 3))
    mrf = PairwiseMRF.potts(np.zeros((3, 3, 2)), 0.5)
    with pytest.raises(err, match=f"n_jobs.*{msg}"):
        mrf.loopy_belief_propagation(n_jobs=bad)
    with pytest.raises(err, match=f"n_jobs.*{msg}"):
        nn.conv2d_forward(x, wt, n_jobs=bad)
    with pytest.raises(err, match=f"n_jobs.*{msg}"):
        nn.conv2d_backward(np.ones((2, 1, 2, 2)), x.shape, wt, np.ones((2, 9, 4)),
                           n_jobs=bad)  # fmt: skip
    with pytest.raises(err, match=f"n_jobs.*{msg}"):
        nn.Conv2d(1, 1, 3, n_jobs=bad)


@pytest.mark.parametrize("stride", [1, 2])  # the direct kernels (AVX-512) and im2col
def test_conv2d_layer_finds_nan_in_any_block(stride):
    # the layer checks x and grad_out block by block on its threads: the error names
    # the index in the whole batch, and no backward runs on a half-copied cache
    layer = nn.Conv2d(16, 32, 3, stride, 1, random_state=0, dtype=np.float32, n_jobs=2)
    x = np.ones((40, 16, 32, 32), np.float32)
    y = layer.forward(x)
    x[37, 5, 3, 4] = np.inf
    with pytest.raises(
        ValueError, match=r"x must be finite .*inf at index \(37, 5, 3, 4\)"
    ):
        layer.forward(x)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones_like(y))
    x[37, 5, 3, 4] = 1
    y = layer.forward(x)
    g = np.ones_like(y)
    g[29, 1, 0, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"grad_out must be finite .*index \(29, 1, 0, 2\)"
    ):
        layer.backward(g)
