"""Numerical gradients in float64 for checking backward passes."""

import numpy as np

STEP = 1e-3


def numeric_grad(f, array, step=STEP):
    """∂f/∂array by the fourth-order central difference (f(-2h) - 8f(-h) + 8f(h) - f(2h)) / 12h.

    Its truncation error is O(h^4), about 1e-12 here, so it can confirm a gradient to far better than
    1e-6. `array` is perturbed in place, one element at a time, and restored. A function with kinks
    (ReLU) wants a smaller step, so that no perturbation carries a unit across its kink."""
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        old = array[i]
        values = []
        for d in (-2 * step, -step, step, 2 * step):
            array[i] = old + d
            values.append(f())
        array[i] = old
        grad[i] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * step)
    return grad


def relative_error(analytic, numeric, floor=1e-6):
    """max |a - n| / (|a| + |n|), elementwise. Where both are below `floor` (a gradient that is exactly
    zero, such as the column of a character absent from the window, against rounding noise of ~1e-13),
    the difference is compared to the floor instead."""
    return float(np.max(np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), floor)))
