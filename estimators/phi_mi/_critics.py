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

__all__ = ["GaussianLogRatio", "ResidualCritic"]

#: ridge added to the covariance, relative to its mean diagonal: keeps Σ invertible when a
#: column is (nearly) a copy of another, far below the sampling error of Σ at any usable n
_RIDGE = 1e-8


class GaussianLogRatio(torch.nn.Module):
    """S_ij = log N(x_i, y_j; Σ) − log N(x_i; Σ_xx) − log N(y_j; Σ_yy), Σ fitted by moments.

    Parameters
    ----------
    x, y : numpy.ndarray, shapes (m, d_x), (m, d_y)
        Training rows (already mapped) the mean and covariance are fitted on.
    """

    def __init__(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> None:
        super().__init__()
        dx = x.shape[1]
        z = np.concatenate([x, y], axis=1)
        mu = z.mean(axis=0)
        cov = np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1])
        cov = cov + _RIDGE * float(np.mean(np.diag(cov))) * np.eye(z.shape[1])
        prec = np.linalg.inv(cov)
        px, py = np.linalg.inv(cov[:dx, :dx]), np.linalg.inv(cov[dx:, dx:])
        logdet = np.linalg.slogdet(cov)[1]
        const = 0.5 * (np.linalg.slogdet(cov[:dx, :dx])[1] + np.linalg.slogdet(cov[dx:, dx:])[1])
        for name, value in (
            ("mu_x", mu[:dx]),
            ("mu_y", mu[dx:]),
            ("qx", -0.5 * (prec[:dx, :dx] - px)),
            ("qy", -0.5 * (prec[dx:, dx:] - py)),
            ("cross", -prec[:dx, dx:]),
            ("const", np.asarray(const - 0.5 * logdet)),
        ):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float64))
        self.mu_x: torch.Tensor
        self.mu_y: torch.Tensor
        self.qx: torch.Tensor
        self.qy: torch.Tensor
        self.cross: torch.Tensor
        self.const: torch.Tensor

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores of shape (K, M) for x (K, d_x) and y (M, d_y)."""
        xc, yc = x - self.mu_x, y - self.mu_y
        ax = ((xc @ self.qx) * xc).sum(dim=1)
        ay = ((yc @ self.qy) * yc).sum(dim=1)
        return ax[:, None] + ay[None, :] + xc @ self.cross @ yc.T + self.const


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
