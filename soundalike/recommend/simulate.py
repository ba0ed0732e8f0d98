"""Simulated listening logs over a real catalog, for benchmarks, tests and trying the recommender out.

Each simulated user has latent tastes over **labels** (a Dirichlet draw over the catalog's groups: a
collection, a package, an album...) and over **audio** (a direction in an audio feature space, near a track
they like). Tracks have a Zipf **popularity** in a random order. A user's utility for a track is

    label_weight * log(taste[label]) + audio_weight * z(cos(audio taste, features)) + popularity * log(pop)

and they play distinct tracks drawn without replacement with probability proportional to exp(utility)
(the Gumbel top-k trick), each 1 + Poisson(``extra_plays``) times.

Tracks are released over time: most exist from the start, ``released_share`` come out during the first
period, and ``new_share`` come out in the second. A user's listens fall at random times, and each picks the
best (noisy) track released by then that they have not played yet, so, as on a real service, a fresh
release draws the listeners who like it. The second period's listens are the held-out ones: a recommender
fitted on the first must find them, and the tracks released in the second period (**new tracks**, no
plays at all before it) are the cold start.

The audio feature space should not be the recommender's own embedding, or audio would be favoured by
construction: the benchmark uses the catalog's hash-CNN codes (a different network and front-end); the CLI
uses them when the catalog keeps hash codes and says so otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from soundalike.errors import ParameterError

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0


@dataclass(frozen=True)
class SimConfig:
    users: int = 600
    seed: int = 0
    new_share: float = 0.2  # tracks released in the second period (no plays before it): the cold start
    released_share: float = 0.2  # tracks released during the first period
    label_weight: float = 1.0
    audio_weight: float = 1.0
    popularity: float = 0.8  # Zipf exponent; 0 = no popularity skew
    label_concentration: float = 0.3  # Dirichlet alpha: smaller = fewer favourite labels
    first_tracks: int = 25  # mean distinct tracks a user plays in the first period
    second_tracks: int = 10  # ... in the second period
    extra_plays: float = 1.5
    days: float = 60.0  # length of each period

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Simulation:
    first: list[tuple[str, int, float, int]]  # (user, track id, unix time, plays): the fitting period
    second: list[tuple[str, int, float, int]]  # the held-out period
    new_tracks: np.ndarray  # ids with no plays in the first period
    config: SimConfig

    @property
    def rows(self) -> list[tuple[str, int, float, int]]:
        return self.first + self.second


def simulate(ids: np.ndarray, groups: Sequence[str | None], features: np.ndarray,
             cfg: SimConfig | None = None) -> Simulation:
    """Listens of ``cfg.users`` simulated users over the tracks ``ids`` (labels ``groups``; ``features``:
    an audio feature vector per track). Deterministic for a seed."""
    cfg = cfg or SimConfig()
    ids = np.asarray(ids, np.int64)
    n = len(ids)
    if n < 10 or len(groups) != n or len(features) != n:
        raise ParameterError("simulate needs at least 10 tracks, with one label and one feature row per track")
    if not (cfg.new_share >= 0 and cfg.released_share >= 0 and cfg.new_share + cfg.released_share < 1) \
            or cfg.users < 1:
        raise ParameterError("new_share and released_share must be at least 0 with a sum below 1, and users at "
                             "least 1")
    rng = np.random.default_rng(cfg.seed)
    names = sorted({g or "(none)" for g in groups})
    gi = np.array([names.index(g or "(none)") for g in groups])
    f = np.asarray(features, np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    rank = rng.permutation(n) + 1
    log_pop = -cfg.popularity * np.log(rank)
    order = rng.permutation(n)
    n_new, n_mid = int(round(n * cfg.new_share)), int(round(n * cfg.released_share))
    release = np.zeros(n)
    release[order[:n_mid]] = rng.uniform(0, cfg.days * DAY, n_mid)
    release[order[n_mid:n_mid + n_new]] = cfg.days * DAY + rng.uniform(0, cfg.days * DAY, n_new)
    first: list[tuple[str, int, float, int]] = []
    second: list[tuple[str, int, float, int]] = []
    width = len(str(cfg.users))
    for u in range(cfg.users):
        user = f"user{u:0{width}d}"
        taste = rng.dirichlet(np.full(len(names), cfg.label_concentration))
        label_u = np.log(taste[gi] + 1e-6)
        anchor = rng.choice(n, p=taste[gi] / taste[gi].sum())  # a track of a liked label
        direction = f[anchor] + 0.5 * rng.standard_normal(f.shape[1]) / np.sqrt(f.shape[1])
        sim = f @ direction
        audio_u = (sim - sim.mean()) / (sim.std() + 1e-12)
        util = cfg.label_weight * label_u + cfg.audio_weight * audio_u + log_pop
        noisy = util + rng.gumbel(size=n)
        free = np.ones(n, bool)
        for period, mean, out in ((0, cfg.first_tracks, first), (1, cfg.second_tracks, second)):
            count = max(1, int(rng.poisson(mean)))
            for at in np.sort(rng.uniform(0, cfg.days * DAY, count)) + period * cfg.days * DAY:
                ok = free & (release <= at)
                if not ok.any():
                    break
                t = int(np.flatnonzero(ok)[np.argmax(noisy[ok])])
                free[t] = False
                out.append((user, int(ids[t]), float(round(START + at)), 1 + int(rng.poisson(cfg.extra_plays))))
    return Simulation(first, second, ids[release >= cfg.days * DAY], cfg)


def catalog_features(catalog: Any) -> tuple[np.ndarray, np.ndarray, list[str | None], str]:
    """(ids, audio features, labels, feature name) of a catalog for :func:`simulate`: hash-code bits as
    +-1 when the catalog keeps hash codes (a model independent of the embedding), else song embeddings."""
    ids, songs = catalog.song_matrix()
    tracks = {t.id: t for t in catalog.tracks()}
    labels = [_label(tracks[int(i)]) for i in ids]
    if catalog.has_hash_codes:
        codes = np.stack([np.unpackbits(catalog.hash_code(int(i))) for i in ids]).astype(np.float32)
        return ids, 2 * codes - 1, labels, f"hash codes ({catalog.hash_codes.model_name})"
    return ids, songs, labels, "song embeddings (the catalog keeps no hash codes)"


def _label(track: Any) -> str | None:
    for key in ("label", "collection", "album", "artist", "package"):
        v = track.labels.get(key) or getattr(track, key, None)
        if v:
            return str(v)
    return None
