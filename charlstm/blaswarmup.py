"""One large matrix product at start-up, so that OpenBLAS runs the training step's products at full speed.

Measured with OpenBLAS 0.3.31 (NumPy 2.4's wheel) on an AMD EPYC of family 23, one thread: the
weight-gradient product of S's training step, (512, 1024) @ (1024, 128), takes 9.1 ms, however often it
runs, until the process has run a larger product such as this module's; after it, 3.6 ms on the same
arrays, and a worker's whole training step goes from 39 to 30 ms. Products of (256, 256) and smaller did
not flip it. Which of OpenBLAS's internal states flips is not known here (not threads, not page faults:
docs/performance.md); the product costs a few milliseconds once.
"""

import numpy as np

SIZE = 512  # a (512, 512) @ (512, 512) product: 268 million FLOPs, a few milliseconds on one core


def warm_up():
    """Run the product once, in float32 (the training step's type): a general product of two arrays
    (NumPy turns m.T @ m into a symmetric one)."""
    a = np.ones((SIZE, SIZE), np.float32)
    a @ a.copy()
