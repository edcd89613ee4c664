"""Fiedler vectors of weighted undirected graphs (dense for small graphs, LOBPCG for large ones)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import lobpcg

DENSE_LIMIT = 400


def symmetric_traffic(w: sp.spmatrix) -> sp.csr_matrix:
    """W + W^T without the diagonal, as float64 CSR."""
    s = sp.csr_matrix(w, dtype=np.float64)
    s = (s + s.T).tocsr()
    s.setdiag(0)
    s.eliminate_zeros()
    return s


def fiedler(s: sp.spmatrix, *, seed: int = 0, maxiter: int = 80) -> np.ndarray:
    """The eigenvector of the second-smallest eigenvalue of the Laplacian of `s` (symmetric, >= 0).

    Used to order vertices so that a contiguous split cuts little weight. Small graphs use a dense
    eigensolver; large ones LOBPCG (Jacobi-preconditioned, orthogonal to the constant vector), whose
    partly converged vector is still a good ordering.
    """
    k = s.shape[0]
    if k <= 2:
        return np.arange(k, dtype=np.float64)
    deg = np.asarray(s.sum(axis=1)).ravel()
    if not np.any(deg > 0):
        return np.arange(k, dtype=np.float64)
    scale = deg.max()
    if k <= DENSE_LIMIT:
        lap = -s.toarray() / scale
        lap[np.diag_indices(k)] += deg / scale
        _, vecs = scipy.linalg.eigh(lap, subset_by_index=[1, 1], driver="evr")
        return vecs[:, 0]
    lap = (sp.diags(deg) - s).tocsr() / scale
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((k, 2))
    # A smooth start (position in the current order) speeds convergence on mesh-like graphs.
    x[:, 0] = np.linspace(-1.0, 1.0, k)
    y = np.ones((k, 1)) / np.sqrt(k)
    precond = sp.diags(1.0 / np.maximum(deg / scale, 1e-12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vals, vecs = lobpcg(lap, x, M=precond, Y=y, tol=1e-4, maxiter=maxiter, largest=False)
    return vecs[:, int(np.argmin(vals))]
