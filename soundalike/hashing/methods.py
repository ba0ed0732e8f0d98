"""Classic hashing methods over float features: LSH, PCA-ITQ and KSH.

Each is a small class with ``fit(x, labels=None)`` and ``encode(x) -> packed codes``
(uint8 [shape=(n, bits / 8)], bit set where the projection is positive), and
registers by name in :data:`HASHERS` so the experiments and the CLI can list them.

- ``lsh``: random hyperplanes through the training mean (Charikar 2002). Two
  vectors at angle theta differ in a bit with probability theta / pi.
- ``itq``: PCA to ``bits`` dimensions, then the rotation that minimises the
  quantisation error ||B - V R|| by alternating B = sign(V R) and an orthogonal
  Procrustes step (Gong & Lazebnik 2011), from ``restarts`` random rotations
  (the best is kept). Needs ``bits`` <= feature dimension.
- ``ksh``: kernel-based supervised hashing (Liu et al. 2012): RBF kernel
  features against ``anchors`` training points; bit by bit, fit the
  projection whose codes' inner products best match the pairwise label
  agreement (+1 same label, -1 different) left unexplained by the earlier bits.
  Each projection starts from the spectral relaxation (a generalised
  eigenproblem) and is refined by gradient ascent on the sigmoid-smoothed
  objective; the better of the two is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from soundalike.errors import ParameterError
from soundalike.fingerprint.codes import pack_codes

HASHERS: dict[str, type[Hasher]] = {}


def register_hasher(name: str) -> Callable[[type[Hasher]], type[Hasher]]:
    def wrap(cls: type[Hasher]) -> type[Hasher]:
        HASHERS[name] = cls
        cls.name = name
        return cls

    return wrap


def create_hasher(name: str, *, bits: int, seed: int = 0, **options: Any) -> Hasher:
    """A hashing method by registered name (``lsh``, ``itq``, ``ksh``)."""
    if name not in HASHERS:
        raise ParameterError(f"unknown hashing method {name!r}; known: {', '.join(sorted(HASHERS))}")
    return HASHERS[name](bits=bits, seed=seed, **options)


class Hasher:
    """Base: ``fit`` then ``encode``; ``project`` gives the real values whose signs are the bits."""

    name = "hasher"
    supervised = False

    def __init__(self, *, bits: int, seed: int = 0) -> None:
        if bits <= 0 or bits % 8:
            raise ParameterError(f"bits must be a positive multiple of 8, got {bits}")
        self.bits = int(bits)
        self.seed = int(seed)
        self._fitted = False

    def fit(self, x: np.ndarray, labels: np.ndarray | None = None) -> Hasher:
        x = _features(x)
        if self.supervised and labels is None:
            raise ParameterError(f"{self.name} is supervised: fit(x, labels) needs the labels")
        self._fit(x, None if labels is None else np.asarray(labels))
        self._fitted = True
        return self

    def project(self, x: np.ndarray) -> np.ndarray:
        """Features [shape=(n, d)] -> real projections [shape=(n, bits)]."""
        if not self._fitted:
            raise ParameterError(f"{self.name}: call fit() before encode()")
        return self._project(_features(x))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Features [shape=(n, d)] -> packed codes uint8 [shape=(n, bits / 8)]."""
        return pack_codes(self.project(x))

    def _fit(self, x: np.ndarray, labels: np.ndarray | None) -> None:
        raise NotImplementedError

    def _project(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _features(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or not len(a):
        raise ParameterError(f"expected features of shape (n, d) with n > 0, got {a.shape}")
    if not np.isfinite(a).all():
        raise ParameterError("features contain NaN or infinity")
    return a


@register_hasher("lsh")
class LSH(Hasher):
    """Signs of random Gaussian projections of the centred features."""

    def _fit(self, x: np.ndarray, labels: np.ndarray | None) -> None:
        self.mean = x.mean(axis=0)
        self.w = np.random.default_rng(self.seed).standard_normal((x.shape[1], self.bits))

    def _project(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) @ self.w


@register_hasher("itq")
class ITQ(Hasher):
    """PCA to ``bits`` dimensions + iterative quantisation rotation."""

    def __init__(self, *, bits: int, seed: int = 0, iterations: int = 50, restarts: int = 3) -> None:
        super().__init__(bits=bits, seed=seed)
        self.iterations, self.restarts = int(iterations), max(1, int(restarts))

    def _fit(self, x: np.ndarray, labels: np.ndarray | None) -> None:
        if self.bits > x.shape[1]:
            raise ParameterError(f"ITQ needs bits <= feature dimension; {self.bits} > {x.shape[1]}")
        self.mean = x.mean(axis=0)
        xc = x - self.mean
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        self.pca = vt[: self.bits].T  # (d, bits)
        v = xc @ self.pca
        rng = np.random.default_rng(self.seed)
        best = np.inf
        for _ in range(self.restarts):  # alternating minimisation finds local optima: keep the best start
            r, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
            for _ in range(self.iterations):
                b = np.where(v @ r >= 0, 1.0, -1.0)
                u, _, wt = np.linalg.svd(v.T @ b)  # orthogonal Procrustes: R maximising tr(R^T V^T B)
                r = u @ wt
            err = float(np.sum((np.where(v @ r >= 0, 1.0, -1.0) - v @ r) ** 2))
            if err < best:
                best, self.rotation = err, r

    def quantisation_error(self, x: np.ndarray) -> float:
        """Mean ||sign(VR) - VR||^2 per item: what ITQ minimises."""
        v = (_features(x) - self.mean) @ self.pca @ self.rotation
        return float(np.mean(np.sum((np.where(v >= 0, 1.0, -1.0) - v) ** 2, axis=1)))

    def _project(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) @ self.pca @ self.rotation


@register_hasher("ksh")
class KSH(Hasher):
    """Kernel-based supervised hashing with an RBF kernel over ``anchors`` training points."""

    supervised = True

    def __init__(self, *, bits: int, seed: int = 0, anchors: int = 300, labelled: int = 2000,
                 iterations: int = 300, lr: float = 0.05) -> None:
        super().__init__(bits=bits, seed=seed)
        self.n_anchors, self.n_labelled = int(anchors), int(labelled)
        self.iterations, self.lr = int(iterations), float(lr)

    def _kernel(self, x: np.ndarray) -> np.ndarray:
        d2 = np.maximum((x**2).sum(1)[:, None] - 2 * x @ self.anchors.T + (self.anchors**2).sum(1)[None], 0.0)
        return np.exp(-d2 / (2 * self.sigma**2)) - self.kernel_mean

    def _fit(self, x: np.ndarray, labels: np.ndarray | None) -> None:
        assert labels is not None
        rng = np.random.default_rng(self.seed)
        if len(labels) != len(x):
            raise ParameterError(f"{len(labels)} labels for {len(x)} feature rows")
        self.anchors = x[rng.choice(len(x), size=min(self.n_anchors, len(x)), replace=False)]
        d2 = np.maximum((x**2).sum(1)[:, None] - 2 * x @ self.anchors.T + (self.anchors**2).sum(1)[None], 0.0)
        self.sigma = float(np.sqrt(d2).mean()) or 1.0
        self.kernel_mean = np.exp(-d2 / (2 * self.sigma**2)).mean(axis=0)
        pick = rng.choice(len(x), size=min(self.n_labelled, len(x)), replace=False)
        k = self._kernel(x[pick])  # (l, m), zero-mean columns over the training set
        _, y = np.unique(labels[pick], return_inverse=True)
        onehot = np.eye(int(y.max()) + 1)[y]  # (l, c)
        # The residual R = r S - sum_t h_t h_t^T (S = 2 Y Y^T - 1 1^T) is never formed: R v costs O(l (c + bits)).
        codes = np.zeros((len(k), 0))

        def r_times(v: np.ndarray) -> np.ndarray:
            return self.bits * (2 * onehot @ (onehot.T @ v) - v.sum(axis=0)) - codes @ (codes.T @ v)

        gram = k.T @ k + 1e-6 * np.eye(k.shape[1])
        self.a = np.zeros((k.shape[1], self.bits))
        for j in range(self.bits):
            a = self._spectral(k, r_times, gram)
            a = self._refine(k, r_times, a)
            h = np.where(k @ a >= 0, 1.0, -1.0)
            codes = np.hstack([codes, h[:, None]])
            self.a[:, j] = a

    @staticmethod
    def _spectral(k: np.ndarray, r_times: Callable[[np.ndarray], np.ndarray], gram: np.ndarray) -> np.ndarray:
        """Top generalised eigenvector of (K^T R K, K^T K), scaled so a^T K^T K a = l."""
        lch = np.linalg.cholesky(gram)
        inv = np.linalg.inv(lch)
        m = inv @ (k.T @ r_times(k)) @ inv.T
        _, vecs = np.linalg.eigh((m + m.T) / 2)
        a = inv.T @ vecs[:, -1]
        return a * np.sqrt(len(k) / max(float(a @ gram @ a), 1e-12))

    def _refine(self, k: np.ndarray, r_times: Callable[[np.ndarray], np.ndarray], a0: np.ndarray) -> np.ndarray:
        """Gradient ascent on phi(Ka)^T R phi(Ka), phi(x) = 2 / (1 + e^-x) - 1; keep the better of start/end."""

        def score(a: np.ndarray) -> float:
            h = np.where(k @ a >= 0, 1.0, -1.0)
            return float(h @ r_times(h))

        a = a0.copy()
        m = np.zeros_like(a)
        v = np.zeros_like(a)
        for t in range(1, self.iterations + 1):  # Adam on the smoothed objective
            z = k @ a
            phi = 2 / (1 + np.exp(-z)) - 1
            grad = k.T @ (r_times(phi) * (1 - phi**2))  # d/da of phi^T R phi, up to the factor 1
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad**2
            a += self.lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        return a if score(a) >= score(a0) else a0

    def _project(self, x: np.ndarray) -> np.ndarray:
        return self._kernel(x) @ self.a
