r"""Generalized (φ-divergence) mutual information of paired samples: :class:`PhiMI`.

I_φ(X;Y) = D_φ(P_XY ‖ P_X⊗P_Y) = E_Q φ(r), Q = P_X⊗P_Y, r = dP_XY/dQ (nats), estimated from
the tight Fenchel bound of Wu et al. (NeurIPS 2023), Theorem 3.6. Modules: ``estimator``
(the scikit-learn estimator), private ``_config`` (validated settings), ``_maps`` (marginal
maps), ``_critics`` (Gaussian-copula base critic), ``_train`` (training loop), ``_calibrate``
(the two-stage link), ``_scoring`` (bounds on a score matrix), ``_held_out`` (estimate,
interval, range check, warnings). Design notes and measured accuracy: docs/phi_mi.md.
"""

from estimators.phi_mi._config import BOUND_NAMES, FitConfig
from estimators.phi_mi._result import PhiMIResult
from estimators.phi_mi._train import FitHistory
from estimators.phi_mi.estimator import MIN_ROWS, PhiMI

__all__ = ["BOUND_NAMES", "MIN_ROWS", "FitConfig", "FitHistory", "PhiMI", "PhiMIResult"]
