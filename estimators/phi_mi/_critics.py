r"""Critics built around the Gaussian log-ratio: the closed-form base and a learned residual.

For jointly Gaussian (z_x, z_y) with covariance Σ (blocks Σ_xx, Σ_yy, Σ_xy) the log density
ratio of P to Q = P_X ⊗ P_Y is the quadratic form

.. math:: \log r(x, y) = -\tfrac12 z^\top (\Sigma^{-1} - \mathrm{diag}(\Sigma_{xx}^{-1},
          \Sigma_{yy}^{-1})) z + \tfrac12\log\frac{\det\Sigma_{xx}\det\Sigma_{yy}}{\det\Sigma},
          \qquad z = (x - \mu_x, y - \mu_y),

On rank-Gaussianised marginals this is the Gaussian-copula log-ratio, exact whenever the data
are a monotone per-variable warp of a Gaussian.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import stats

__all__ = ["GaussianLogRatio", "ResidualCritic", "significant_rank"]

#: ridge added to the covariance, relative to its mean diagonal: keeps Σ invertible when a
#: column is (nearly) a copy of another, far below the sampling error of Σ at any usable n
_RIDGE = 1e-8
#: level of Bartlett's sequential test that keeps a canonical correlation (fixed in advance;
#: a spurious pair costs ≈ (d_x + d_y)/(2m) nats of held-out bound, a missed one its −½log(1−ρ²))
SIGNIFICANCE = 0.01
#: largest |ρ| kept: 1 − ρ² stays ≥ 1e-12, so the log-ratio's 1/(1 − ρ²) stays finite
_RHO_MAX = 1.0 - 1e-12


def significant_rank(rho: NDArray[np.float64], m: int, d_x: int, d_y: int, level: float) -> int:
    r"""Number of canonical correlations Bartlett's sequential test keeps at ``level``.

    For k = 0, 1, …: H₀ "ρ_{k+1} = … = 0" is rejected when
    −(m − 1 − (d_x + d_y + 1)/2) Σ_{i>k} log(1 − ρ_i²) exceeds the χ²_{(d_x−k)(d_y−k)}
    quantile 1 − ``level`` (Bartlett 1938; Wilks' Λ). The rank is the first k not rejected.

    Parameters
    ----------
    rho : numpy.ndarray
        Sample canonical correlations, descending, in [0, 1).
    m : int
        Rows they were computed on.
    d_x, d_y : int
        Dimensions of the two variables.
    level : float
        Test level in (0, 1).
    """
    log_terms = np.log1p(-(np.minimum(rho, _RHO_MAX) ** 2))
    factor = max(1.0, m - 1 - 0.5 * (d_x + d_y + 1))
    for k in range(rho.shape[0]):
        stat = -factor * float(log_terms[k:].sum())
        if stat <= stats.chi2.ppf(1.0 - level, (d_x - k) * (d_y - k)):
            return k
    return int(rho.shape[0])


def _inv_sqrt(cov: NDArray[np.float64]) -> NDArray[np.float64]:
    vals, vecs = np.linalg.eigh(cov)
    return np.asarray((vecs / np.sqrt(vals)) @ vecs.T)


class GaussianLogRatio(torch.nn.Module):
    r"""The Gaussian log-ratio of the fitted moments, in canonical coordinates, rank-truncated.

    With Σ fitted by moments (plus a ridge), a = Uᵀ Σ_xx^{-1/2}(x − μ_x),
    b = Vᵀ Σ_yy^{-1/2}(y − μ_y), U diag(ρ) Vᵀ the SVD of Σ_xx^{-1/2} Σ_xy Σ_yy^{-1/2}:

    .. math:: S(x, y) = \sum_{i \le k} \Big[-\tfrac12\log(1-\rho_i^2)
              - \frac{\rho_i^2(a_i^2 + b_i^2) - 2\rho_i a_i b_i}{2(1-\rho_i^2)}\Big],

    equal to log N(x, y; Σ) − log N(x; Σ_xx) − log N(y; Σ_yy) when k = min(d_x, d_y), and to
    the log-ratio of the Gaussian with only the k largest canonical correlations otherwise.

    Parameters
    ----------
    x, y : numpy.ndarray, shapes (m, d_x), (m, d_y)
        Training rows (already mapped) the mean and covariance are fitted on.
    level : float or None
        k is chosen by :func:`significant_rank` at this level on the same rows; None keeps all.
    """

    def __init__(
        self, x: NDArray[np.float64], y: NDArray[np.float64], level: float | None = SIGNIFICANCE
    ) -> None:
        super().__init__()
        dx, dy = x.shape[1], y.shape[1]
        z = np.concatenate([x, y], axis=1)
        mu = z.mean(axis=0)
        cov = np.cov(z, rowvar=False).reshape(dx + dy, dx + dy)
        cov = cov + _RIDGE * float(np.mean(np.diag(cov))) * np.eye(dx + dy)
        wx, wy = _inv_sqrt(cov[:dx, :dx]), _inv_sqrt(cov[dx:, dx:])
        u, rho, vt = np.linalg.svd(wx @ cov[:dx, dx:] @ wy)
        rho = np.minimum(rho, _RHO_MAX)
        k = rho.shape[0] if level is None else significant_rank(rho, z.shape[0], dx, dy, level)
        rho = rho[:k]
        self.rank = k
        one_minus = 1.0 - rho**2
        for name, value in (
            ("mu_x", mu[:dx]),
            ("mu_y", mu[dx:]),
            ("proj_x", wx @ u[:, :k]),
            ("proj_y", wy @ vt[:k].T),
            ("quad", -0.5 * rho**2 / one_minus),
            ("cross", rho / one_minus),
            ("const", np.asarray(-0.5 * np.log(one_minus).sum())),
        ):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float64))
        self.mu_x: torch.Tensor
        self.mu_y: torch.Tensor
        self.proj_x: torch.Tensor
        self.proj_y: torch.Tensor
        self.quad: torch.Tensor
        self.cross: torch.Tensor
        self.const: torch.Tensor

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores of shape (K, M) for x (K, d_x) and y (M, d_y)."""
        a = (x - self.mu_x) @ self.proj_x
        b = (y - self.mu_y) @ self.proj_y
        ax = (a * a) @ self.quad
        by = (b * b) @ self.quad
        return ax[:, None] + by[None, :] + (a * self.cross) @ b.T + self.const


class ResidualCritic(torch.nn.Module):
    """S = base(x, y) + γ·net(x, y) + β, with γ = 1 and β = ``offset`` at the start.

    ``offset`` is 1 for the NWJ/plain KL bound (optimal critic 1 + log r), else 0.
    :meth:`closed_form` switches the residual off (γ = 0, β = ``offset``): the closed-form
    critic alone, the other candidate the fit chooses from on the validation split.
    """

    def __init__(self, base: torch.nn.Module, net: torch.nn.Module, offset: float = 0.0) -> None:
        super().__init__()
        self.base = base
        self.net = net
        dtype = next(net.parameters()).dtype
        self.gate = torch.nn.Parameter(torch.ones((), dtype=dtype))
        self.offset = torch.nn.Parameter(torch.tensor(offset, dtype=dtype))
        self.start_offset = offset

    def closed_form(self) -> None:
        """Set γ = 0 and β = ``offset``: the critic becomes the closed-form base (in place)."""
        with torch.no_grad():
            self.gate.zero_()
            self.offset.fill_(self.start_offset)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores of shape (K, M)."""
        return self.base(x, y) + self.gate * self.net(x, y) + self.offset
