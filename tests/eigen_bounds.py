"""Error bounds for comparing computed eigenvectors (singular vectors) that are defined only up to
sign, by the a-posteriori Davis-Kahan sin-theta theorem.

For a symmetric ``A``, a unit vector ``v`` and ``rho = v^T A v``, with residual ``r = A v - rho v``:
if every eigenvalue of ``A`` but one lies at least ``delta`` away from ``rho``, the angle ``theta``
between ``v`` and that one's eigenvector obeys ``sin(theta) <= |r| / delta`` (Davis & Kahan 1970;
Parlett, *The Symmetric Eigenvalue Problem*, Thm 11.7.1). Two vectors, each within its own angle of
the same eigenvector, are after aligning their signs within ``|u - v| = 2 sin(phi / 2) <= phi <=
theta_u + theta_v``. The residual is itself computed in float64: ``floor`` adds the rounding of
that computation (and of forming ``A``) to ``|r|``, so the bound stays a bound.
"""
import math

import torch

U64 = 2.0**-53  # unit roundoff of float64
U32 = 2.0**-24  # unit roundoff of float32


def sin_theta_bound(A: torch.Tensor, v: torch.Tensor, others: torch.Tensor, floor: float) -> float:
    """Davis-Kahan bound on sin(angle) between unit ``v`` and the eigenvector of ``A`` whose
    eigenvalue is the one left out of ``others`` (the remaining eigenvalues, float64)."""
    v = v.double() / v.double().norm()
    rho = float(v @ A @ v)
    r = float((A @ v - rho * v).norm()) + floor
    delta = float((others - rho).abs().min())
    return min(1.0, r / delta) if delta > 0 else 1.0


def aligned_distance(u: torch.Tensor, v: torch.Tensor) -> float:
    """|u - s v| for the sign s that makes it smallest (both unit vectors)."""
    u, v = u.double(), v.double()
    return float(min((u - v).norm(), (u + v).norm()))


def distance_bound(sin_u: float, sin_v: float) -> float:
    """Bound on ``aligned_distance`` of two unit vectors within asin(sin_u), asin(sin_v) of one eigenvector."""
    return math.asin(sin_u) + math.asin(sin_v)
