"""fastml.nn: gradients vs central finite differences and torch autograd, kernel identities,
learning on digits and a memory task, and bad input.

Tolerances: finite differences (h = 1e-6, float64) agree to a relative error (norm of the
difference over the larger norm) <= 1e-7; torch float64 autograd to <= 1e-10; float32 runs
are compared with float64 to 1e-4.
"""

import numpy as np
import pytest

from fastml import nn
from fastml._kernels import builds

FD_TOL = 1e-7
TORCH_TOL = 1e-10


def rel_err(a, b, floor=1e-300):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b), floor)
    return np.linalg.norm(a - b) / scale


def fd_check(loss, arrays, max_coords=250, h=1e-6, seed=0):
    """Central differences of the scalar ``loss()`` w.r.t. entries of each array in
    ``arrays`` (a dict name -> (array, analytic gradient)), changed in place. At most
    ``max_coords`` randomly chosen entries per array."""
    rng = np.random.default_rng(seed)
    worst = {}
    for name, (a, g) in arrays.items():
        flat = a.reshape(-1)
        idx = np.arange(flat.size)
        if flat.size > max_coords:
            idx = rng.choice(flat.size, max_coords, replace=False)
        num = np.empty(idx.size)
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + h
            lp = loss()
            flat[i] = old - h
            lm = loss()
            flat[i] = old
            num[j] = (lp - lm) / (2 * h)
        worst[name] = rel_err(np.asarray(g).reshape(-1)[idx], num)
    return worst


def layer_fd(layer, x, seed=1, **kw):
    """Check input and parameter gradients of a single-input layer at ``x``."""
    rng = np.random.default_rng(seed)
    y = layer.forward(x)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r)
    grads = {k: g.copy() for k, g in layer.grads.items()}

    def loss():
        return float(np.sum(layer.forward(x) * r))

    arrays = {"x": (x, dx)}
    arrays.update({k: (layer.params[k], grads[k]) for k in layer.params})
    worst = fd_check(loss, arrays, **kw)
    assert max(worst.values()) <= FD_TOL, worst  # oracle: central differences


def torch_grads(module_fn, x, r):
    """Input and parameter gradients of sum(module(x) * r) in torch float64."""
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    out, params = module_fn(xt)
    (out * torch.tensor(r)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), {k: p.grad.numpy() for k, p in params}


RNG = np.random.default_rng(2024)

# ------------------------------------------------------------------ im2col / col2im


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_im2col_col2im_adjoint(stride, padding, dtype):
    x = RNG.standard_normal((2, 3, 7, 9)).astype(dtype)
    cols = nn.im2col(x, (3, 2), stride, padding)
    y = RNG.standard_normal(cols.shape).astype(dtype)
    back = nn.col2im(y, x.shape, (3, 2), stride, padding)
    lhs = np.vdot(cols.astype(np.float64), y.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), back.astype(np.float64))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert abs(lhs - rhs) <= tol * np.abs(cols).sum() * np.abs(y).max()  # adjoint


def test_im2col_matches_torch_unfold():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 3, 7, 8))
    for s, p, k in [(1, 0, 3), (2, 1, (3, 2)), (3, 2, 4)]:
        ref = torch.nn.functional.unfold(
            torch.tensor(x), k, padding=p, stride=s
        ).numpy()
        np.testing.assert_array_equal(nn.im2col(x, k, s, p), ref)  # oracle: unfold


def _im2col_reference(x, k, s, p):
    """im2col by zero padding and slicing (independent of the kernel)."""
    N, C, H, W = x.shape
    kh, kw = k
    OH, OW = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    blocks = [
        xp[:, :, i : i + s * OH : s, j : j + s * OW : s].reshape(N, C, 1, OH * OW)
        for i in range(kh)
        for j in range(kw)
    ]
    return np.concatenate(blocks, axis=2).reshape(N, C * kh * kw, OH * OW)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_im2col_every_width_equals_slicing(dtype):
    # the stride-2 SIMD gather: vector bodies, overlapping tails and scalar short rows,
    # for every width 1..40 and every padding/kernel column offset (oracle: slicing)
    x = np.random.default_rng(31).standard_normal((2, 2, 5, 40)).astype(dtype)
    for mod in builds("_conv"):
        for W in range(1, 41):
            for s, p, k in [
                (2, 0, (1, 1)),
                (2, 1, (3, 3)),
                (2, 2, (2, 4)),
                (3, 1, (3, 3)),
            ]:
                xs = np.ascontiguousarray(x[..., :W])
                if W + 2 * p < k[1]:
                    continue
                ref = _im2col_reference(xs, k, s, p)
                out = np.empty_like(ref)
                mod.im2col(xs, k[0], k[1], s, p, out)
                np.testing.assert_array_equal(out, ref)


def test_im2col_reads_nothing_past_the_image():
    # the image ends right before a page the process may not read (PROT_NONE): a
    # gather that over-reads by one element crashes here instead of passing silently
    import ctypes
    import mmap
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("uses mprotect")
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    buf = mmap.mmap(-1, 3 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    assert libc.mprotect(ctypes.c_void_p(base + 2 * page), page, 0) == 0  # PROT_NONE
    try:
        for dtype in (np.float32, np.float64):
            shape = (1, 1, 4, 32)  # 2 kernel columns, stride 2: reads x[..., 31]
            size = int(np.prod(shape)) * np.dtype(dtype).itemsize
            x = np.frombuffer(buf, dtype, count=int(np.prod(shape)),
                              offset=2 * page - size).reshape(shape)  # fmt: skip
            x[...] = np.random.default_rng(32).standard_normal(shape)
            ref = _im2col_reference(x, (2, 2), 2, 0)
            for mod in builds("_conv"):
                out = np.empty_like(ref)
                mod.im2col(x, 2, 2, 2, 0, out)
                np.testing.assert_array_equal(out, ref)
            del x
    finally:
        libc.mprotect(ctypes.c_void_p(base + 2 * page), page, 3)  # read | write
    buf.close()


# ---------------------------------------------------------------------------- Conv2d
CONV_CASES = [
    # (N, C, F, H, W, kernel)
    (2, 1, 2, 7, 9, 3),
    (2, 3, 4, 5, 7, (3, 2)),
    (1, 2, 5, 9, 6, (1, 3)),
]


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradients(case, stride, padding):
    n, c, f, h, w, k = case
    layer = nn.Conv2d(c, f, k, stride, padding, random_state=0)
    layer.params["bias"][...] = RNG.standard_normal(f)
    x = RNG.standard_normal((n, c, h, w))
    layer_fd(layer, x)
    # torch oracle, float64
    torch = pytest.importorskip("torch")
    y = layer.forward(x)
    r = RNG.standard_normal(y.shape)
    dx = layer.backward(r)
    wt = torch.tensor(layer.params["weight"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    yt, dxt, pg = torch_grads(
        lambda xt: (
            torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding),
            [("weight", wt), ("bias", bt)],
        ),
        x,
        r,
    )
    assert rel_err(y, yt) <= TORCH_TOL
    assert rel_err(dx, dxt) <= TORCH_TOL
    for k_ in ("weight", "bias"):
        assert rel_err(layer.grads[k_], pg[k_]) <= TORCH_TOL, k_


def test_conv2d_float32_matches_float64():
    layer = nn.Conv2d(3, 4, 3, 2, 1, random_state=0)
    x = RNG.standard_normal((2, 3, 9, 9))
    y64 = layer.forward(x)
    g64 = layer.backward(np.ones_like(y64))
    gw64 = layer.grads["weight"].copy()
    layer.astype(np.float32)
    y32 = layer.forward(x.astype(np.float32))
    g32 = layer.backward(np.ones_like(y32))
    assert y32.dtype == g32.dtype == layer.grads["weight"].dtype == np.float32
    assert rel_err(y32, y64) < 1e-5 and rel_err(g32, g64) < 1e-5
    assert rel_err(layer.grads["weight"], gw64) < 1e-5


def test_conv2d_functional_matches_layer():
    layer = nn.Conv2d(2, 3, 3, 2, 1, random_state=3)
    x = RNG.standard_normal((2, 2, 6, 5))
    y, cols = nn.conv2d_forward(
        x, layer.params["weight"], layer.params["bias"], stride=2, padding=1
    )
    np.testing.assert_allclose(y, layer.forward(x), rtol=1e-14)
    r = RNG.standard_normal(y.shape)
    gx, gw, gb = nn.conv2d_backward(r, x.shape, layer.params["weight"], cols, 2, 1)
    np.testing.assert_allclose(gx, layer.backward(r), rtol=1e-14)
    np.testing.assert_allclose(gw, layer.grads["weight"], rtol=1e-14)
    np.testing.assert_allclose(gb, layer.grads["bias"], rtol=1e-14)


# ------------------------------------------------- direct stride-1 convolution (AVX-512)
# (N, C, H, W, F, kh, kw, padding): output widths below, at and above the 32-float /
# 16-double row tiles, filter counts around the 8-filter tiles and the 4 x 6 weight-
# gradient tiles, every padding below the kernel size, non-square kernels, 1 x 1 images
DIRECT_CASES = [
    (3, 2, 7, 9, 5, 3, 3, 1),
    (2, 3, 5, 5, 9, 2, 3, 0),
    (2, 1, 1, 1, 1, 1, 1, 0),
    (2, 16, 32, 32, 32, 3, 3, 1),
    (2, 3, 6, 40, 17, 5, 3, 2),
    (1, 2, 3, 3, 3, 3, 3, 2),
    (2, 4, 4, 33, 8, 3, 3, 0),
    (1, 5, 9, 17, 12, 4, 4, 3),
    (1, 7, 2, 70, 3, 1, 5, 0),
]
direct_kernels = pytest.mark.skipif(
    not builds("_conv")[0].direct_available(), reason="needs AVX-512 (F, VL)"
)


@direct_kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", DIRECT_CASES)
def test_direct_conv_kernels_match_im2col_gemm(case, dtype):
    # oracle: the im2col + GEMM functional path (itself checked against torch and
    # finite differences above), in every build of _conv; outputs start as NaN so an
    # element the kernels skip shows
    n, c, h, w, f, kh, kw, p = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    y_ref, cols = nn.conv2d_forward(x, wt, b, 1, p, n_jobs=1)
    g = rng.standard_normal(y_ref.shape).astype(dtype)
    gx_ref, gw_ref, _ = nn.conv2d_backward(g, x.shape, wt, cols, 1, p, n_jobs=1)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for mod in builds("_conv"):
        y = np.full_like(y_ref, np.nan)
        mod.conv2d_direct_forward(x, wt, b, p, y)
        gx, gw = np.full_like(x, np.nan), np.full_like(wt, np.nan)
        mod.conv2d_direct_backward(g, x, wt, p, gx, gw)
        for ours, ref in [(y, y_ref), (gx, gx_ref), (gw, gw_ref)]:
            assert rel_err(ours, ref) <= tol, mod.__name__


@direct_kernels
def test_direct_conv_kernels_refuse_what_they_cannot_do():
    from fastml.nn._functional import _conv, _use_direct

    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    with pytest.raises(ValueError, match="padding"):  # p >= k: not a padded convolution
        _conv.conv2d_direct_forward(x, w, None, 3, np.empty((1, 3, 9, 9)))
    with pytest.raises(ValueError, match="shapes"):
        _conv.conv2d_direct_forward(x, w, None, 1, np.empty((1, 3, 4, 5)))
    assert _use_direct(1, 2, 3, 3) and not _use_direct(2, 1, 3, 3)
    assert not _use_direct(1, 3, 3, 3) and not _use_direct(1, 1, 1, 3)


def test_direct_conv_off_with_fastml_disable_simd():
    import subprocess
    import sys

    code = "from fastml.nn import _functional as f; print(f._DIRECT)"
    env = dict(__import__("os").environ, FASTML_DISABLE_SIMD="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "False"


# -------------------------------------------------------------- dense / activations
@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Linear(5, 4, random_state=0),
        nn.Sigmoid,
        nn.Tanh,
        nn.ReLU,
        nn.Softmax,
        nn.Flatten,
    ],
    ids=["Linear", "Sigmoid", "Tanh", "ReLU", "Softmax", "Flatten"],
)
def test_dense_layer_gradients(make):
    layer = make()
    if isinstance(layer, nn.Linear):
        layer.params["bias"][...] = RNG.standard_normal(4)
    x = RNG.standard_normal((6, 5))
    layer_fd(layer, x)


def test_dense_layers_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = RNG.standard_normal((6, 5))
    r = RNG.standard_normal((6, 5))
    for layer, fn in [
        (nn.Sigmoid(), torch.sigmoid),
        (nn.Tanh(), torch.tanh),
        (nn.ReLU(), F.relu),
        (nn.Softmax(), lambda t: F.softmax(t, -1)),
    ]:
        y = layer.forward(x)
        dx = layer.backward(r)
        yt, dxt, _ = torch_grads(lambda xt, fn=fn: (fn(xt), []), x, r)
        assert rel_err(y, yt) <= TORCH_TOL and rel_err(dx, dxt) <= TORCH_TOL
    lin = nn.Linear(5, 3, random_state=1)
    y = lin.forward(x)
    r3 = RNG.standard_normal(y.shape)
    dx = lin.backward(r3)
    wt = torch.tensor(lin.params["weight"], requires_grad=True)
    bt = torch.tensor(lin.params["bias"], requires_grad=True)
    yt, dxt, pg = torch_grads(
        lambda xt: (F.linear(xt, wt, bt), [("weight", wt), ("bias", bt)]), x, r3
    )
    assert rel_err(dx, dxt) <= TORCH_TOL
    assert rel_err(lin.grads["weight"], pg["weight"]) <= TORCH_TOL
    assert rel_err(lin.grads["bias"], pg["bias"]) <= TORCH_TOL


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), ((2, 3), 1)])
def test_maxpool_gradients(kernel, stride):
    layer = nn.MaxPool2d(kernel, stride)
    x = RNG.standard_normal((2, 3, 7, 8))  # continuous: no ties, FD steps keep argmax
    layer_fd(layer, x)
    torch = pytest.importorskip("torch")
    y = layer.forward(x)
    r = RNG.standard_normal(y.shape)
    dx = layer.backward(r)
    yt, dxt, _ = torch_grads(
        lambda xt: (torch.nn.functional.max_pool2d(xt, kernel, stride), []), x, r
    )
    assert rel_err(y, yt) == 0 and rel_err(dx, dxt) <= TORCH_TOL


def test_sequential_cnn_gradients():
    net = nn.Sequential(
        [
            nn.Conv2d(1, 3, 3, padding=1, random_state=0),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(12, 4, random_state=1),
            nn.Sigmoid(),
        ]
    )
    layer_fd(net, RNG.standard_normal((2, 1, 4, 4)))


# ------------------------------------------------------------------------ recurrent
def torch_rnn(kind, layer, bidirectional=None):
    """A torch float64 RNN/LSTM carrying the fastml layer's weights (b_hh = 0)."""
    torch = pytest.importorskip("torch")
    cls = torch.nn.RNN if kind == "rnn" else torch.nn.LSTM
    fw = layer if bidirectional is None else bidirectional.forward_layer
    mod = cls(
        fw.input_size,
        fw.hidden_size,
        batch_first=True,
        bidirectional=bidirectional is not None,
    ).double()
    with torch.no_grad():
        sides = [("", fw)]
        if bidirectional is not None:
            sides.append(("_reverse", bidirectional.backward_layer))
        for suf, lyr in sides:
            getattr(mod, "weight_ih_l0" + suf).copy_(
                torch.tensor(lyr.params["weight_ih"])
            )
            getattr(mod, "weight_hh_l0" + suf).copy_(
                torch.tensor(lyr.params["weight_hh"])
            )
            getattr(mod, "bias_ih_l0" + suf).copy_(torch.tensor(lyr.params["bias"]))
            getattr(mod, "bias_hh_l0" + suf).zero_()
    return mod


def check_recurrent_vs_torch(layer, mod, x, bidirectional=False):
    torch = pytest.importorskip("torch")
    y = layer.forward(x)
    r = RNG.standard_normal(y.shape)
    dx = layer.backward(r)
    xt = torch.tensor(x, requires_grad=True)
    out = mod(xt)[0]
    if y.ndim == 2:
        out = out[:, -1]
    (out * torch.tensor(r)).sum().backward()
    assert rel_err(y, out.detach().numpy()) <= TORCH_TOL
    assert rel_err(dx, xt.grad.numpy()) <= TORCH_TOL
    sides = [("", "")] if not bidirectional else [("fw_", ""), ("bw_", "_reverse")]
    for pre, suf in sides:
        for k in ("weight_ih", "weight_hh"):
            ref = getattr(mod, f"{k}_l0{suf}").grad.numpy()
            assert rel_err(layer.grads[pre + k], ref) <= TORCH_TOL, pre + k
        ref = getattr(mod, f"bias_ih_l0{suf}").grad.numpy()
        assert rel_err(layer.grads[pre + "bias"], ref) <= TORCH_TOL


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_recurrent_gradients_length_50(kind, return_sequences):
    cls = nn.RNN if kind == "rnn" else nn.LSTM
    layer = cls(3, 4, return_sequences=return_sequences, random_state=0)
    layer.params["bias"][...] = 0.3 * RNG.standard_normal(layer.params["bias"].shape)
    x = RNG.standard_normal((2, 50, 3))
    layer_fd(layer, x, max_coords=120)
    check_recurrent_vs_torch(layer, torch_rnn(kind, layer), x)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_bidirectional_gradients_length_50(kind):
    cls = nn.RNN if kind == "rnn" else nn.LSTM
    layer = nn.Bidirectional(cls(3, 4, random_state=0), random_state=1)
    x = RNG.standard_normal((2, 50, 3))
    layer_fd(layer, x, max_coords=80)
    check_recurrent_vs_torch(layer, torch_rnn(kind, None, layer), x, True)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_truncated_bptt_matches_detached_torch(kind):
    torch = pytest.importorskip("torch")
    cls = nn.RNN if kind == "rnn" else nn.LSTM
    layer = cls(3, 4, truncate=7, random_state=0)
    mod = torch_rnn(kind, layer)
    x = RNG.standard_normal((2, 30, 3))
    y = layer.forward(x)
    r = RNG.standard_normal(y.shape)
    dx = layer.backward(r)
    xt = torch.tensor(x, requires_grad=True)
    state, outs = None, []
    for s in range(0, 30, 7):  # torch oracle: detach the state every 7 steps
        if state is not None:
            state = (
                state.detach() if kind == "rnn" else tuple(t.detach() for t in state)
            )
        o, state = mod(xt[:, s : s + 7], state)
        outs.append(o)
    (torch.cat(outs, 1) * torch.tensor(r)).sum().backward()
    assert rel_err(dx, xt.grad.numpy()) <= TORCH_TOL
    assert rel_err(layer.grads["weight_hh"], mod.weight_hh_l0.grad.numpy()) <= TORCH_TOL
    full = cls(3, 4, random_state=0)
    full.forward(x)
    assert rel_err(full.backward(r), dx) > 1e-6  # truncation changes the gradient


# ------------------------------------------------------------------------ attention
def test_additive_attention_gradients():
    torch = pytest.importorskip("torch")
    att = nn.AdditiveAttention(4, 6, 5, random_state=0)
    att.params["bias"][...] = RNG.standard_normal(5)
    q = RNG.standard_normal((3, 4))
    keys = RNG.standard_normal((3, 7, 6))
    mask = np.ones((3, 7), dtype=bool)
    mask[1, 5:] = False
    for m in (None, mask):
        c = att.forward(q, keys, m)
        r = RNG.standard_normal(c.shape)
        dq, dk = att.backward(r)
        grads = {k: g.copy() for k, g in att.grads.items()}

        def loss(m=m, r=r):
            return float(np.sum(att.forward(q, keys, m) * r))

        arrays = {"query": (q, dq), "keys": (keys, dk)}
        arrays.update({k: (att.params[k], grads[k]) for k in att.params})
        worst = fd_check(loss, arrays)
        assert max(worst.values()) <= FD_TOL, worst  # central differences
        # torch oracle: the same formula under autograd
        p = {k: torch.tensor(v, requires_grad=True) for k, v in att.params.items()}
        qt = torch.tensor(q, requires_grad=True)
        kt = torch.tensor(keys, requires_grad=True)
        u = torch.tanh(
            kt @ p["weight_key"].T + (qt @ p["weight_query"].T + p["bias"])[:, None]
        )
        e = u @ p["v"]
        if m is not None:
            e = e.masked_fill(~torch.tensor(m), float("-inf"))
        ct = (torch.softmax(e, 1)[:, :, None] * kt).sum(1)
        (ct * torch.tensor(r)).sum().backward()
        assert rel_err(c, ct.detach().numpy()) <= TORCH_TOL
        assert rel_err(dq, qt.grad.numpy()) <= TORCH_TOL
        assert rel_err(dk, kt.grad.numpy()) <= TORCH_TOL
        for k in p:
            assert rel_err(grads[k], p[k].grad.numpy()) <= TORCH_TOL, k
        if m is not None:
            assert np.all(att.weights_[1, 5:] == 0)


def test_attention_over_bidirectional_encoder():
    enc = nn.Bidirectional(nn.RNN(3, 4, random_state=0), random_state=1)
    att = nn.AdditiveAttention(5, 8, 6, random_state=2)
    x = RNG.standard_normal((2, 9, 3))
    s = RNG.standard_normal((2, 5))
    r = RNG.standard_normal((2, 8))

    def loss():
        return float(np.sum(att.forward(s, enc.forward(x)) * r))

    loss()
    dq, dk = att.backward(r)
    dx = enc.backward(dk)
    worst = fd_check(loss, {"x": (x, dx), "s": (s, dq)})
    assert max(worst.values()) <= FD_TOL, worst


MHA_MASKS = ["none", "causal", "attn_mask", "padding", "all"]


@pytest.mark.parametrize("masks", MHA_MASKS)
@pytest.mark.parametrize("self_attention", [True, False])
def test_multihead_attention_gradients(masks, self_attention):
    torch = pytest.importorskip("torch")
    n, t, e, h = 2, 5, 6, 3
    mha = nn.MultiHeadAttention(e, h, random_state=0)
    for k in mha.params:
        if k.startswith("bias"):
            mha.params[k][...] = 0.5 * RNG.standard_normal(e)
    q = RNG.standard_normal((n, t, e))
    kv = None if self_attention else RNG.standard_normal((n, t, e))
    v = None if self_attention else RNG.standard_normal((n, t, e))
    kw = {}
    allowed = np.ones((n, t, t), dtype=bool)
    if masks in ("causal", "all"):
        kw["causal"] = True
        allowed &= np.tril(np.ones((t, t), dtype=bool))
    if masks in ("attn_mask", "all"):
        am = RNG.uniform(size=(t, t)) < 0.7
        np.fill_diagonal(am, True)
        am[:, 0] = True  # key 0: never padded, never in the future, so no row is empty
        kw["attn_mask"] = am
        allowed &= am
    if masks in ("padding", "all"):
        kpm = np.zeros((n, t), dtype=bool)
        kpm[1, 3:] = True
        kw["key_padding_mask"] = kpm
        allowed &= ~kpm[:, None, :]
    y = mha.forward(q, kv, v, **kw)
    r = RNG.standard_normal(y.shape)
    dins = mha.backward(r)
    grads = {k: g.copy() for k, g in mha.grads.items()}
    # bias_k's gradient is exactly 0 (softmax ignores a per-query shift of the scores),
    # so finite differences there are pure rounding noise: checked as zero instead.
    arrays = {k: (mha.params[k], grads[k]) for k in mha.params if k != "bias_k"}
    if self_attention:
        arrays["x"] = (q, dins)
    else:
        arrays.update({"q": (q, dins[0]), "k": (kv, dins[1]), "v": (v, dins[2])})

    def loss():
        return float(np.sum(mha.forward(q, kv, v, **kw) * r))

    worst = fd_check(loss, arrays, max_coords=80)
    assert max(worst.values()) <= FD_TOL, worst  # central differences
    assert np.abs(grads["bias_k"]).max() < 1e-12  # softmax is shift-invariant per query
    # torch oracle: nn.MultiheadAttention with the same weights (its bool masks mean
    # "not allowed"), float64
    mod = torch.nn.MultiheadAttention(e, h, batch_first=True).double()
    p = mha.params
    with torch.no_grad():
        mod.in_proj_weight.copy_(
            torch.tensor(np.concatenate([p["weight_q"], p["weight_k"], p["weight_v"]]))
        )
        mod.in_proj_bias.copy_(
            torch.tensor(np.concatenate([p["bias_q"], p["bias_k"], p["bias_v"]]))
        )
        mod.out_proj.weight.copy_(torch.tensor(p["weight_o"]))
        mod.out_proj.bias.copy_(torch.tensor(p["bias_o"]))
    qt = torch.tensor(q, requires_grad=True)
    kt = qt if self_attention else torch.tensor(kv, requires_grad=True)
    vt = qt if self_attention else torch.tensor(v, requires_grad=True)
    blocked = torch.tensor(~np.repeat(allowed, h, axis=0))
    yt = mod(qt, kt, vt, attn_mask=blocked, need_weights=False)[0]
    (yt * torch.tensor(r)).sum().backward()
    assert rel_err(y, yt.detach().numpy()) <= TORCH_TOL
    if self_attention:
        assert rel_err(dins, qt.grad.numpy()) <= TORCH_TOL
    else:
        for d, tt in zip(dins, (qt, kt, vt), strict=True):
            assert rel_err(d, tt.grad.numpy()) <= TORCH_TOL
    assert rel_err(grads["weight_o"], mod.out_proj.weight.grad.numpy()) <= TORCH_TOL
    w_in = np.concatenate([grads["weight_q"], grads["weight_k"], grads["weight_v"]])
    assert rel_err(w_in, mod.in_proj_weight.grad.numpy()) <= TORCH_TOL


# -------------------------------------------------------------------------- learning
def _digits():
    pytest.importorskip("sklearn")  # the data set, as the other peer tests: skip
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float64)
    return train_test_split(
        x, d.target, test_size=0.25, random_state=0, stratify=d.target
    )


def test_mlp_learns_digits(capsys):
    xtr, xte, ytr, yte = _digits()
    net = nn.Sequential(
        [
            nn.Linear(64, 256, random_state=0),
            nn.ReLU(),
            nn.Linear(256, 10, random_state=1),
        ]
    )
    kw = {"batch_size": 32, "random_state": 0}
    hist = net.fit(
        xtr, ytr, epochs=20, optimizer=nn.Adam(2e-3), validation_data=(xte, yte), **kw
    )
    assert "epoch 20/20" in capsys.readouterr().out  # one progress line per epoch
    assert hist["loss"][-1] < hist["loss"][0]
    net.fit(xtr, ytr, epochs=5, optimizer=nn.Adam(2e-4), verbose=False, **kw)
    # held-out accuracy (>= 0.977 for seeds 0-5 on the dev machine)
    assert net.score(xte, yte) >= 0.97


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cnn_learns_digits(dtype):
    xtr, xte, ytr, yte = _digits()
    xtr = xtr.reshape(-1, 1, 8, 8).astype(dtype)
    xte = xte.reshape(-1, 1, 8, 8).astype(dtype)
    net = nn.Sequential(
        [
            nn.Conv2d(1, 32, 3, padding=1, random_state=0, dtype=dtype),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, random_state=1, dtype=dtype),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4, 10, random_state=2, dtype=dtype),
        ]
    )
    kw = {"batch_size": 32, "random_state": 0, "verbose": False}
    net.fit(xtr, ytr, epochs=10, optimizer=nn.Adam(2e-3), **kw)
    net.fit(xtr, ytr, epochs=4, optimizer=nn.Adam(2e-4), **kw)  # lower rate to finish
    assert net.params["0.weight"].dtype == dtype
    # held-out accuracy (>= 0.982 for seeds 0-4 on the dev machine)
    assert net.score(xte, yte) >= 0.98


def _recall_task(n, lag, n_symbols, rng):
    """A random symbol (one-hot) at every step; the label is the first one, seen ``lag``
    steps before the end, with ``lag`` distractors from the same alphabet after it."""
    t = lag + 1
    s = rng.integers(0, n_symbols, (n, t))
    x = np.zeros((n, t, n_symbols))
    x[np.arange(n)[:, None], np.arange(t)[None], s] = 1
    return x, s[:, 0]


def _train_recall(cls, lag, epochs, seed=0, **kw):
    rng = np.random.default_rng(seed)
    k = 4
    xtr, ytr = _recall_task(1000, lag, k, rng)
    xte, yte = _recall_task(400, lag, k, rng)
    net = nn.Sequential(
        [
            cls(k, 16, return_sequences=False, random_state=seed, **kw),
            nn.Linear(16, k, random_state=seed + 1),
        ]
    )
    net.fit(
        xtr,
        ytr,
        epochs=epochs,
        batch_size=32,
        optimizer=nn.Adam(0.01),
        random_state=seed,
        verbose=False,
    )
    return net.score(xte, yte)


@pytest.mark.slow
def test_lstm_remembers_20_steps_rnn_does_worse_at_long_lags():
    """Same budget (6 epochs of 1000 sequences), seeds 0-2. Chance is 0.25. On the dev
    machine: LSTM lag 20 = 1.0 on every seed; lag 40 LSTM 0.79/1.0/1.0 vs RNN
    0.24/0.27/0.28. (Seed 3 is the exception: there the orthogonally initialised RNN
    does bridge 40 steps, 0.98.)"""
    lstm = {"forget_bias": 3.0}
    seeds = (0, 1, 2)
    for seed in seeds:
        assert _train_recall(nn.LSTM, 20, 6, seed, **lstm) >= 0.95, seed
    lstm40 = np.mean([_train_recall(nn.LSTM, 40, 6, s, **lstm) for s in seeds])
    rnn40 = np.mean([_train_recall(nn.RNN, 40, 6, s) for s in seeds])
    assert lstm40 >= 0.85
    assert rnn40 <= lstm40 - 0.3  # the Elman RNN has not bridged 40 steps


def test_sgd_momentum_trains_and_seeds_reproduce():
    xtr, xte, ytr, yte = _digits()

    def make(seed):
        return nn.Sequential(
            [
                nn.Linear(64, 32, random_state=seed),
                nn.Tanh(),
                nn.Linear(32, 10, random_state=seed + 1),
            ]
        )

    a, b, c = make(0), make(0), make(5)
    np.testing.assert_array_equal(a.params["0.weight"], b.params["0.weight"])
    assert not np.array_equal(a.params["0.weight"], c.params["0.weight"])
    kw = {"epochs": 5, "batch_size": 32, "random_state": 0, "verbose": False}
    ha = a.fit(xtr, ytr, optimizer=nn.SGD(0.1, momentum=0.9), **kw)
    b.fit(xtr, ytr, optimizer=nn.SGD(0.1, momentum=0.9), **kw)
    np.testing.assert_array_equal(a.params["2.weight"], b.params["2.weight"])
    assert ha["loss"][-1] < 0.5 * ha["loss"][0] and a.score(xte, yte) > 0.9


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM])
def test_recurrent_float32_matches_float64(cls):
    layer = cls(3, 5, random_state=0)
    x = RNG.standard_normal((2, 20, 3))
    y64 = layer.forward(x)
    g64 = layer.backward(np.ones_like(y64))
    w64 = layer.grads["weight_hh"].copy()
    layer.astype(np.float32)
    y32 = layer.forward(x.astype(np.float32))
    g32 = layer.backward(np.ones_like(y32))
    assert y32.dtype == g32.dtype == layer.grads["weight_hh"].dtype == np.float32
    assert rel_err(y32, y64) < 1e-5 and rel_err(g32, g64) < 1e-5
    assert rel_err(layer.grads["weight_hh"], w64) < 1e-5


# ------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_argument():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="4-dimensional"):
        conv.forward(np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match="3 channels"):
        conv.forward(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="kernel_size 3x3 is larger than the padded"):
        conv.forward(np.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.im2col(np.zeros((1, 1, 4, 4)), 2, stride=-1)
    with pytest.raises(ValueError, match="x must be finite"):
        conv.forward(np.full((1, 3, 5, 5), np.nan))
    with pytest.raises(TypeError, match="x must have a real numeric dtype"):
        conv.forward(np.zeros((1, 3, 5, 5), dtype=complex))
    with pytest.raises(ValueError, match="kernel_size 3x3 is larger than the input"):
        nn.MaxPool2d(3).forward(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="at least one time step"):
        nn.LSTM(2, 3).forward(np.zeros((1, 0, 2)))
    with pytest.raises(ValueError, match="2 features"):
        nn.RNN(2, 3).forward(np.zeros((1, 4, 3)))
    with pytest.raises(ValueError, match="5 features"):
        nn.Linear(5, 2).forward(np.zeros((3, 4)))
    mha = nn.MultiHeadAttention(4, 2)
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        mha.forward(np.zeros((1, 3, 4)), attn_mask=np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        mha.forward(np.zeros((1, 3, 4)), key_padding_mask=np.ones((3,), dtype=bool))
    with pytest.raises(TypeError, match="attn_mask must be a boolean"):
        mha.forward(np.zeros((1, 3, 4)), attn_mask=np.ones((3, 3)))
    with pytest.raises(ValueError, match="no key to attend to"):
        mha.forward(np.zeros((1, 3, 4)), attn_mask=np.zeros((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="num_heads"):
        nn.MultiHeadAttention(5, 2)
    att = nn.AdditiveAttention(2, 3, 4)
    with pytest.raises(ValueError, match="mask must have shape"):
        att.forward(np.zeros((1, 2)), np.zeros((1, 4, 3)), np.ones((1, 3), dtype=bool))
    with pytest.raises(ValueError, match="keys must have at least one time step"):
        att.forward(np.zeros((1, 2)), np.zeros((1, 0, 3)))
    net = nn.Sequential([nn.Linear(3, 2, random_state=0)])
    with pytest.raises(ValueError, match=r"y labels must lie in \[0, 2\)"):
        net.fit(np.zeros((4, 3)), np.array([0, 1, 2, 1]), verbose=False)
    with pytest.raises(ValueError, match="X must be finite"):
        net.fit(np.array([[np.nan, 0, 0]]), np.array([0]), verbose=False)
    with pytest.raises(ValueError, match="grad_out must have the output's shape"):
        lin = nn.Linear(3, 2)
        lin.forward(np.zeros((4, 3)))
        lin.backward(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.Linear(3, 2, dtype=np.int64)


# ------------------------------------------------------------------------- fuzzing
def _im2col_oracle(x, kh, kw, s, p):
    n, c, h, w = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    cols = np.empty((n, c, kh, kw, oh, ow))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i : i + s * oh : s, j : j + s * ow : s]
    return cols.reshape(n, c * kh * kw, oh * ow)


def test_fuzz_im2col_col2im_conv():
    """Random geometries and dtypes: a call returns the oracle's result or raises
    ValueError/TypeError (never a crash, another exception or a wrong result)."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=150, deadline=None)
    @hypothesis.given(
        n=st.integers(0, 2),
        c=st.integers(0, 3),
        h=st.integers(0, 7),
        w=st.integers(0, 7),
        kh=st.integers(-1, 5),
        kw=st.integers(1, 5),
        s=st.integers(-1, 4),
        p=st.integers(-1, 3),
        dtype=st.sampled_from([np.float64, np.float32, np.int32, np.complex64]),
    )
    def check(n, c, h, w, kh, kw, s, p, dtype):
        x = np.arange(n * c * h * w).reshape(n, c, h, w).astype(dtype)
        try:
            cols = nn.im2col(x, (kh, kw), s, p)
        except (ValueError, TypeError):
            return
        np.testing.assert_array_equal(cols, _im2col_oracle(x, kh, kw, s, p))
        y = np.ones_like(cols)
        back = nn.col2im(y, x.shape, (kh, kw), s, p)
        assert back.shape == x.shape
        assert np.isclose(np.vdot(cols, y), np.vdot(x, back), rtol=1e-5)
        wt = np.ones((2, c, kh, kw), dtype=x.dtype if x.dtype.kind == "f" else None)
        yconv, _ = nn.conv2d_forward(x, wt, None, s, p)
        np.testing.assert_allclose(
            yconv,
            np.einsum("fk,nkp->nfp", wt.reshape(2, -1), cols).reshape(yconv.shape),
            rtol=1e-5,
        )

    check()
