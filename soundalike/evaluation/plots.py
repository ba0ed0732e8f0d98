"""PNG maps of song embeddings coloured by label: PCA, t-SNE, and UMAP when installed.

Needs matplotlib and scikit-learn: ``pip install 'soundalike[eval]'``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soundalike.errors import ParameterError


def pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal components [shape=(n, 2)] (numpy SVD of the centred data)."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:2].T


def _require() -> tuple[object, object]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.manifold import TSNE
    except ImportError as exc:
        raise ParameterError(f"plots need matplotlib and scikit-learn ({exc}); install them with "
                             "`pip install 'soundalike[eval]'`, or pass --no-plots") from exc
    return plt, TSNE


def plot_maps(songs: dict[str, np.ndarray], labels: list[str], out: Path, *, seed: int = 0) -> dict[str, str]:
    """One PNG per projection, one panel per method. Returns {projection: path}."""
    plt, TSNE = _require()
    uniq = sorted(set(labels))
    cmap = plt.get_cmap("tab20" if len(uniq) > 10 else "tab10")  # type: ignore[attr-defined]
    colour = {u: cmap(i % cmap.N) for i, u in enumerate(uniq)}
    lab = np.asarray(labels)

    def tsne(x: np.ndarray) -> np.ndarray:
        perplexity = float(max(2.0, min(30.0, (len(x) - 1) / 3.0)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,  # type: ignore[operator]
                    metric="cosine").fit_transform(x)

    projections = {"pca": pca_2d, "tsne": tsne}
    try:
        import umap

        def _umap(x: np.ndarray) -> np.ndarray:
            return umap.UMAP(n_components=2, random_state=seed, metric="cosine").fit_transform(x)

        projections["umap"] = _umap
    except ImportError:
        pass
    paths: dict[str, str] = {}
    for proj, fn in projections.items():
        n = len(songs)
        fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.4), squeeze=False)  # type: ignore[attr-defined]
        for ax, (name, x) in zip(axes[0], songs.items(), strict=True):
            xy = fn(x)
            for u in uniq:
                m = lab == u
                ax.scatter(xy[m, 0], xy[m, 1], s=14, color=colour[u], label=u, alpha=0.85, linewidths=0)
            ax.set_title(name, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        fig.suptitle(f"song embeddings, {proj.upper()}, coloured by label", fontsize=11)
        fig.tight_layout()
        p = out / f"{proj}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)  # type: ignore[attr-defined]
        paths[proj] = str(p)
    return paths
