"""The learning-rate schedule StyleCLIP's latent optimisation and NVIDIA's projector (PTI's) share."""
from __future__ import annotations

import math


def get_lr(t: float, initial_lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """Learning rate at progress ``t`` in [0, 1) of the run: cosine ramp-down over the last
    ``rampdown`` of the run, linear ramp-up over the first ``rampup`` (step 0 has lr 0)."""
    ramp = min(1.0, (1 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial_lr * ramp * min(1.0, t / rampup)
