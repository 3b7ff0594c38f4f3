"""One large matrix product at start-up, so that OpenBLAS runs the training step's products at full speed.

Measured with OpenBLAS 0.3.31 (NumPy 2.4's wheel) on an AMD EPYC, one thread: until the process has run
one product of about 100 million FLOPs or more, the weight-gradient product of S's training step,
(512, 1024) @ (1024, 128), takes 9.4 ms; after it, 3.8 ms, in the same process on the same arrays, and a
worker's whole training step goes from 39 to 30 ms. Which of OpenBLAS's internal states flips is not
known here (not threads, not page faults: docs/performance.md); one such product costs a few
milliseconds once.
"""

import numpy as np

SIZE = 512  # a (512, 512) @ (512, 512) product: 268 million FLOPs, about 8 ms on one core


def warm_up():
    """Run the product once, in float32 (the training step's type)."""
    m = np.ones((SIZE, SIZE), np.float32)
    m.T @ m
