"""The vectorisable exp: float32 accuracy in ulps over its range, edge values, float64 untouched."""

import math

import numpy as np
from numba import njit

from tuilab.kernels.activations import SIGMOID, SOFTMAX, activation_forward
from tuilab.kernels.vexp import vexp, vphi, vtanh


@njit(cache=False)
def _vexp_all(x, out):
    for i in range(x.size):
        out[i] = vexp(x[i])


def _vexp(x):
    out = np.empty_like(x)
    _vexp_all(x, out)
    return out


def _ulp_errors(x32):
    """|vexp(x) - e^x| in units of the float32 spacing at e^x, where e^x is a normal float32."""
    exact = np.exp(x32.astype(np.float64))
    with np.errstate(over="ignore"):
        rounded = exact.astype(np.float32)
    normal = np.isfinite(rounded) & (rounded >= np.finfo(np.float32).tiny)
    got = _vexp(x32)[normal].astype(np.float64)
    return np.abs(got - exact[normal]) / np.spacing(rounded[normal]).astype(np.float64)


def test_float32_within_one_ulp_across_the_range():
    # every 101st float32 from 0 to 89 and its negative: 2.2 million points, all exponents
    top = int(np.array(89.0, np.float32).view(np.int32))
    pos = np.arange(0, top, 101, dtype=np.int32).view(np.float32)
    errors = _ulp_errors(np.concatenate([pos, -pos]))
    assert errors.size > 2_000_000
    assert errors.max() <= 1.0
    assert errors.mean() < 0.1


def test_float32_near_zero_and_at_the_reduction_seams():
    # small |x| (r = x, n = 0) and x near k ln 2 (where n steps), where a split reduction slips
    small = np.linspace(-1e-3, 1e-3, 20001, dtype=np.float32)
    k = np.arange(-125, 127)
    seams = (k[:, None] * math.log(2) + np.linspace(-1e-4, 1e-4, 41)[None, :]).astype(np.float32).ravel()
    assert _ulp_errors(np.concatenate([small, seams])).max() <= 1.0


def test_float32_edges():
    x = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 88.7, 88.723, 1e10, -87.3, -88.0, -104.0, -1e10],
                 np.float32)
    y = _vexp(x)
    assert y.dtype == np.float32
    assert y[0] == 1.0 and y[1] == 1.0  # exactly: softmax's largest entry relies on e^0 = 1
    assert np.isnan(y[2])
    assert y[3] == np.inf and y[4] == 0.0
    assert np.isfinite(y[5]) and y[5] > 3.2e38  # e^88.7, just below float32's largest
    assert y[6] == np.inf and y[7] == np.inf  # past ln(float32 max)
    assert _ulp_errors(x[8:9]).max() <= 1.0  # e^-87.3, just above the smallest normal
    assert y[9] == 0.0 and y[10] == 0.0 and y[11] == 0.0  # e^x subnormal or smaller: 0


def test_float64_is_math_exp_bit_for_bit():
    x = np.random.default_rng(5).uniform(-700, 700, 10_000)
    assert np.array_equal(_vexp(x), np.array([math.exp(v) for v in x]))


def test_float32_sigmoid_and_softmax_match_float64_closely():
    rng = np.random.default_rng(6)
    z = rng.normal(0, 6, (128, 30)).astype(np.float32)
    for act, ref in ((SIGMOID, lambda z: 1 / (1 + np.exp(-z))),
                     (SOFTMAX, lambda z: np.exp(z - z.max(1, keepdims=True))
                      / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))):
        a = np.empty_like(z)
        activation_forward(z, a, act)
        np.testing.assert_allclose(a, ref(z.astype(np.float64)), rtol=2e-6, atol=1e-30)


@njit(cache=False)
def _vtanh_all(x, out):
    for i in range(x.size):
        out[i] = vtanh(x[i])


@njit(cache=False)
def _vphi_all(x, out):
    for i in range(x.size):
        out[i] = vphi(x[i])


def _every_float32(top: float, stride: int = 101) -> np.ndarray:
    pos = np.arange(0, int(np.array(top, np.float32).view(np.int32)), stride, dtype=np.int32).view(np.float32)
    return np.concatenate([pos, -pos])


def test_float32_tanh_within_two_ulp_and_its_edges():
    x = _every_float32(20.0)
    got = np.empty_like(x)
    _vtanh_all(x, got)
    exact = np.tanh(x.astype(np.float64))
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    ulps = np.abs(got - exact) / np.maximum(spacing, np.finfo(np.float32).smallest_subnormal)
    assert x.size > 2_000_000 and ulps.max() <= 2.0
    edges = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 100.0, -100.0], np.float32)
    out = np.empty_like(edges)
    _vtanh_all(edges, out)
    assert np.isnan(out[0]) and list(out[1:]) == [1, -1, 0, 0, 1, -1]


def test_float32_normal_cdf_keeps_its_relative_precision_in_both_tails():
    from scipy.special import ndtr

    x = _every_float32(12.0)
    got = np.empty_like(x)
    _vphi_all(x, got)
    exact = ndtr(x.astype(np.float64))
    seen = exact > 1e-30  # beyond, Phi is below float32's normal range once GELU multiplies by x
    rel = np.abs(got[seen] - exact[seen]) / exact[seen]
    assert rel.max() < 3e-5  # the far left tail: e^{-u^2} of a float32 u
    core = np.abs(x[seen]) <= 5.0  # Phi > 2.9e-7: float32's rounding of u^2 is what is left
    assert rel[core].max() < 3e-6
    edges = np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)
    out = np.empty_like(edges)
    _vphi_all(edges, out)
    assert np.isnan(out[0]) and list(out[1:]) == [1, 0, 0.5]


def test_float64_tanh_and_gelu_are_the_library_functions_bit_for_bit():
    from tuilab.kernels.activations import GELU, TANH

    z = np.random.default_rng(3).normal(scale=3, size=(7, 9))
    inv_sqrt2 = 1.0 / math.sqrt(2.0)
    for act, f in ((TANH, math.tanh), (GELU, lambda v: 0.5 * v * (1.0 + math.erf(v * inv_sqrt2)))):
        a = np.empty_like(z)
        activation_forward(z, a, act)
        np.testing.assert_array_equal(a, np.vectorize(f)(z))
