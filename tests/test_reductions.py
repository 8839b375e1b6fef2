"""The fixed-order reductions (kernels/reductions.py): their order written out in NumPy scalars, bit for bit."""

import numpy as np
import pytest

from tuilab.kernels.reductions import fixed_abs_sum, fixed_dot


def lanes_in_numpy(terms, dtype):
    """terms added into lane i % 8 in index order, the lanes summed as the kernel's fixed tree."""
    lanes = [dtype(0.0)] * 8
    for i, t in enumerate(terms):
        lanes[i % 8] = dtype(lanes[i % 8] + t)
    l0, l1, l2, l3, l4, l5, l6, l7 = lanes
    return dtype(((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 9, 16, 17, 1001])
def test_fixed_dot_and_abs_sum_add_in_the_order_they_state(n, dtype, rng):
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    products = [dtype(a * b) for a, b in zip(x, y, strict=True)]  # each product rounded on its own
    assert dtype(fixed_dot(x, y)) == lanes_in_numpy(products, dtype)
    assert dtype(fixed_abs_sum(x)) == lanes_in_numpy([abs(a) for a in x], dtype)
    if n:
        assert fixed_dot(x, y) == pytest.approx(float(np.dot(x.astype(np.float64), y.astype(np.float64))),
                                                rel=1e-4 if dtype == np.float32 else 1e-12, abs=1e-5)


def test_two_elements_are_the_plain_sum_of_rounded_products():
    """x0 y0 + x1 y1 in Python floats (each product rounded, then one addition), in either order."""
    x, y = np.array([0.1, 0.7]), np.array([0.3, 0.9])
    plain = 0.1 * 0.3 + 0.7 * 0.9
    assert fixed_dot(x, y) == plain
    assert fixed_dot(x[::-1].copy(), y[::-1].copy()) == 0.7 * 0.9 + 0.1 * 0.3
