"""The hybrid recommender: implicit-feedback ALS for who-listens-to-what, audio for what-it-sounds-like.

For a user ``u`` and a track ``i`` they have not heard:

    score = w * z(cf[u, i]) + (1 - w) * z(audio[u, i]) + b * cold[i]

- ``cf`` is the ALS score ``user_factors[u] . item_factors[i]`` (the ``implicit`` library, confidence
  ``alpha * log(1 + plays)``). A cold track (nobody has played it) has no ALS factors of its own: they are
  predicted from its song embedding by a ridge regression fitted on the played tracks.
- ``audio`` is the cosine similarity of the track's song embedding to the user's taste profile (the
  log(1 + plays)-weighted mean of the embeddings of what they played).
- ``z`` standardises each over the user's candidate tracks, so the two are on one scale.
- ``w`` (the blend weight) and ``b`` (a cold-track offset) are **tuned on held-out listens**, not set by
  hand: the latest listens (``holdout`` of them, by time) are held out, ALS is fitted on the earlier ones,
  and the (w, b) of a grid with the best NDCG@k on the held-out listens is kept; tracks first played after
  the cut are the cold tracks of that split, as new releases will be for the final model, which is then
  fitted on every listen.

:func:`fit_hybrid` works on arrays (the benchmark calls it directly); :func:`model_for` fits and stores one
per catalog (``recommender.npz``, refitted when the listens change).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ParameterError, RecommenderError
from soundalike.recommend.metrics import ranking_metrics

MODEL_FILE = "recommender.npz"
FORMAT = 1


@dataclass(frozen=True)
class HybridConfig:
    factors: int = 32
    regularization: float = 5.0
    alpha: float = 4.0  # ALS confidence = alpha * log(1 + plays)
    iterations: int = 15
    ridge: float = 1.0  # audio -> ALS factors regression, for cold tracks
    seed: int = 0
    holdout: float = 0.2  # the latest share of all listens, held out to tune the blend
    k: int = 20  # tuned for NDCG@k
    weights: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))
    offsets: tuple[float, ...] = tuple(round(-3.0 + 0.25 * i, 2) for i in range(25))
    min_tuning_users: int = 10  # fewer users with held-out listens: no tuning, audio only
    max_tuning_users: int = 2000  # more: the blend is tuned on a sample of them

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class Listens:
    """Listening history as a (users, tracks) matrix of summed plays; tracks are columns of ``ids``."""

    users: list[str]
    plays: Any  # scipy.sparse.csr_matrix, float32

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[str, int, float, int]], ids: np.ndarray,
                  users: Sequence[str] | None = None) -> Listens:
        from scipy.sparse import csr_matrix

        names = sorted({r[0] for r in rows}) if users is None else list(users)
        ui = {u: n for n, u in enumerate(names)}
        col = {int(t): n for n, t in enumerate(ids)}
        keep = [(ui[u], col[int(t)], p) for u, t, _, p in rows if u in ui and int(t) in col]
        r, c, v = (np.array(x) for x in zip(*keep, strict=True)) if keep else (np.zeros(0, int),) * 3
        m = csr_matrix((v.astype(np.float32), (r, c)), shape=(len(names), len(ids)), dtype=np.float32)
        m.sum_duplicates()
        return cls(names, m)


def held_out(rows: Sequence[tuple[str, int, float, int]], users: Sequence[str], ids: np.ndarray) -> dict[int, set[int]]:
    """The columns of ``ids`` each of ``users`` (by row) played in ``rows``: held-out targets."""
    ui = {u: n for n, u in enumerate(users)}
    col = {int(t): n for n, t in enumerate(ids)}
    want: dict[int, set[int]] = {}
    for u, t, _, _ in rows:
        if u in ui:
            want.setdefault(ui[u], set()).add(col[int(t)])
    return want


def _unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(n > 0, n, 1.0)).astype(np.float32)


def profiles(plays: Any, songs: np.ndarray) -> np.ndarray:
    """Unit taste vectors [shape=(users, d)]: log(1 + plays)-weighted means of the played song embeddings."""
    w = plays.copy()
    w.data = np.log1p(w.data)
    return _unit_rows(np.asarray(w @ songs.astype(np.float64)))


def _als(conf: Any, cfg: HybridConfig) -> tuple[np.ndarray, np.ndarray]:
    try:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
    except ImportError as exc:  # pragma: no cover - a dependency of soundalike
        raise RecommenderError(f"the ALS recommender needs the implicit library ({exc}); "
                               "pip install 'implicit>=0.7'") from exc
    with threadpool_limits(1, "blas"):  # implicit's advice; its own loop is faster than BLAS threads here
        model = AlternatingLeastSquares(factors=cfg.factors, regularization=cfg.regularization, alpha=1.0,
                                        iterations=cfg.iterations, random_state=cfg.seed, num_threads=1)
        model.fit(conf, show_progress=False)
    return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32)


@dataclass
class Factors:
    """ALS factors, with cold tracks' item factors predicted from audio (``audio_map``)."""

    user: np.ndarray  # (users, f)
    item: np.ndarray  # (tracks, f); rows of cold tracks are audio predictions
    warm: np.ndarray  # bool (tracks,): had listens when fitted
    audio_map: np.ndarray  # (d + 1, f): [song embedding, 1] -> item factors

    def predict_items(self, songs: np.ndarray) -> np.ndarray:
        return (np.hstack([songs, np.ones((len(songs), 1), songs.dtype)]) @ self.audio_map).astype(np.float32)


def fit_factors(plays: Any, songs: np.ndarray, cfg: HybridConfig) -> Factors:
    """ALS on ``plays`` (users x tracks), then the ridge map from audio to item factors for cold tracks."""
    conf = plays.copy().astype(np.float32)
    conf.data = (cfg.alpha * np.log1p(conf.data)).astype(np.float32)
    user, item = _als(conf, cfg)
    warm = np.asarray(plays.getnnz(axis=0) > 0)
    x = np.hstack([songs.astype(np.float64), np.ones((len(songs), 1))])
    reg = cfg.ridge * np.eye(x.shape[1])
    reg[-1, -1] = 0.0  # no penalty on the intercept
    xw = x[warm]
    audio_map = (np.linalg.solve(xw.T @ xw + reg, xw.T @ item[warm].astype(np.float64)) if warm.any()
                 else np.zeros((x.shape[1], item.shape[1])))
    f = Factors(user, item.copy(), warm, audio_map.astype(np.float32))
    if (~warm).any():
        f.item[~warm] = f.predict_items(songs[~warm])
    return f


def _z(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Standardise each row over its ``ok`` columns (0 mean, unit variance); others become 0."""
    n = np.maximum(ok.sum(axis=1, keepdims=True), 1)
    mean = np.where(ok, x, 0).sum(axis=1, keepdims=True) / n
    var = np.where(ok, (x - mean) ** 2, 0).sum(axis=1, keepdims=True) / n
    return np.where(ok, (x - mean) / np.sqrt(np.maximum(var, 1e-12)), 0.0)


@dataclass
class Components:
    """Per-user standardised scores of every track: the inputs of the blend."""

    cf: np.ndarray  # (users, tracks)
    audio: np.ndarray  # (users, tracks)
    cold: np.ndarray  # bool (tracks,)
    candidate: np.ndarray  # bool (users, tracks): not heard

    def blend(self, weight: float, offset: float) -> np.ndarray:
        s = weight * self.cf + (1.0 - weight) * self.audio + offset * self.cold[None, :]
        return np.where(self.candidate, s, -np.inf)


def components(user_factors: np.ndarray, item_factors: np.ndarray, taste: np.ndarray, songs: np.ndarray,
               cold: np.ndarray, heard: np.ndarray) -> Components:
    ok = ~heard
    return Components(_z(user_factors @ item_factors.T, ok), _z(taste @ songs.T, ok), cold, ok)


def _holdout_split(rows: Sequence[tuple[str, int, float, int]], share: float) -> tuple[list[Any], list[Any]]:
    """The latest ``share`` of all listens (by time) -> held out; the earlier ones -> fitted on."""
    times = np.sort(np.array([r[2] for r in rows]))
    cut = times[min(len(times) - 1, int(len(times) * (1 - share)))]
    return [r for r in rows if r[2] < cut], [r for r in rows if r[2] >= cut]


@dataclass
class Tuning:
    weight: float
    offset: float
    tuned: bool
    ndcg: float | None = None  # best NDCG@k on the held-out listens
    audio_ndcg: float | None = None  # w = 0 on the same split
    als_ndcg: float | None = None  # w = 1, b = 0
    users: int = 0
    note: str = ""
    grid: list[list[float]] = field(default_factory=list)  # [w, b, ndcg]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tune_blend(rows: Sequence[tuple[str, int, float, int]], ids: np.ndarray, songs: np.ndarray,
               cfg: HybridConfig) -> Tuning:
    """Pick (w, b) by NDCG@k on the latest listens, fitting on the earlier ones: the tracks first played
    after the cut are the cold ones there, as new releases will be after the final fit."""
    fit_rows, held_rows = _holdout_split(rows, cfg.holdout)
    users = sorted({r[0] for r in fit_rows})
    lis = Listens.from_rows(fit_rows, ids, users)
    want = held_out(held_rows, users, ids)
    scored = sorted(want)
    n_users = len(scored)
    if n_users > cfg.max_tuning_users:  # a deterministic sample bounds the dense (users x tracks) scoring
        scored = sorted(np.random.default_rng(cfg.seed).choice(scored, cfg.max_tuning_users, replace=False).tolist())
    heard = lis.plays[scored].toarray() > 0
    targets = [np.array(sorted(c for c in want[u] if not heard[n, c]), int) for n, u in enumerate(scored)]
    n = sum(1 for t in targets if len(t))
    if n < cfg.min_tuning_users:
        return Tuning(0.0, 0.0, False, users=n,
                      note=f"{n} users have held-out listens, fewer than {cfg.min_tuning_users}: too little "
                           "history to tune the blend, so it ranks by audio only")
    # Tracks nobody ever played cannot be held-out targets, so they are not candidates either: the cold
    # offset is tuned for a track that people will play but that has no history yet.
    ever = np.isin(ids, [int(r[1]) for r in rows])
    unseen = heard | ~ever[None, :]
    f = fit_factors(lis.plays, songs, cfg)
    comp = components(f.user[scored], f.item, profiles(lis.plays[scored], songs), songs, ~f.warm, unseen)
    grid, best = [], (-1.0, 0.0, 0.0)
    for w in cfg.weights:
        # with w = 0 every track is ranked by audio alike; ties go to the smaller weight and offset
        for b in (sorted(cfg.offsets, key=lambda x: (abs(x), x)) if w > 0 else (0.0,)):
            nd = ranking_metrics(comp.blend(w, b), targets, cfg.k)["ndcg"]
            grid.append([w, b, round(nd, 6)])
            if nd > best[0] + 1e-12:
                best = (nd, w, b)
    als = ranking_metrics(comp.blend(1.0, 0.0), targets, cfg.k)["ndcg"]
    n_cold = int(sum(int((~f.warm)[t].sum()) for t in targets if len(t)))
    sample = f" (a sample of {len(scored)} of {n_users} users)" if len(scored) < n_users else ""
    return Tuning(best[1], best[2], True, ndcg=best[0], audio_ndcg=grid[0][2], als_ndcg=als, users=n,
                  note=f"{sum(len(t) for t in targets)} held-out listens, {n_cold} of tracks first played after "
                       f"the cut{sample}", grid=sorted(grid))


@dataclass
class HybridModel:
    """A fitted hybrid recommender over the tracks ``ids`` (sorted catalog ids at fit time)."""

    ids: np.ndarray
    users: list[str]
    factors: Factors
    plays: Any  # csr (users, tracks): the listens it was fitted on (for explanations)
    tuning: Tuning
    config: HybridConfig
    signature: str = ""

    @property
    def weight(self) -> float:
        return self.tuning.weight

    @property
    def offset(self) -> float:
        return self.tuning.offset

    def user_row(self, user: str) -> int:
        try:
            return self.users.index(user)
        except ValueError:
            raise ParameterError(f"user {user!r} has no listens this recommender was fitted on") from None

    def item_factors(self, ids: np.ndarray, songs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(item factors, warm flags) for the tracks ``ids``: fitted ones, else predicted from ``songs``."""
        pos = np.searchsorted(self.ids, ids)
        known = (pos < len(self.ids)) & (self.ids[np.minimum(pos, len(self.ids) - 1)] == ids) if len(self.ids) \
            else np.zeros(len(ids), bool)
        out = self.factors.predict_items(songs)
        out[known] = self.factors.item[pos[known]]
        warm = np.zeros(len(ids), bool)
        warm[known] = self.factors.warm[pos[known]]
        return out, warm

    def co_listeners(self, track: int, heard: Sequence[int]) -> np.ndarray:
        """For each of ``heard``: how many users played both it and ``track`` (0 for unknown tracks)."""
        if getattr(self, "_listened", None) is None:
            self._col = {int(t): n for n, t in enumerate(self.ids)}
            self._listened = (self.plays > 0).astype(np.int32).tocsc()
        col, b = self._col, self._listened
        if int(track) not in col:
            return np.zeros(len(heard), int)
        mine = b[:, col[int(track)]]
        return np.array([int(mine.multiply(b[:, col[int(h)]]).sum()) if int(h) in col else 0 for h in heard])

    # ------------------------------------------------------------------ storage
    def save(self, path: Path) -> None:
        p = self.plays.tocsr()
        meta = {"format": FORMAT, "users": self.users, "signature": self.signature,
                "config": self.config.to_dict(), "tuning": self.tuning.to_dict()}
        fd, tmp = tempfile.mkstemp(prefix=".recommender-", suffix=".npz", dir=path.parent)
        os.close(fd)
        try:
            np.savez(tmp, ids=self.ids, user=self.factors.user, item=self.factors.item, warm=self.factors.warm,
                     audio_map=self.factors.audio_map, data=p.data, indices=p.indices, indptr=p.indptr,
                     shape=np.array(p.shape), meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: Path) -> HybridModel:
        from scipy.sparse import csr_matrix

        try:
            with np.load(path) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("format") != FORMAT:
                    raise RecommenderError(f"{path} has format {meta.get('format')}, not {FORMAT}")
                plays = csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
                cfg = meta["config"]
                fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
                config = HybridConfig(**fields)
                return cls(z["ids"], list(meta["users"]), Factors(z["user"], z["item"], z["warm"], z["audio_map"]),
                           plays, Tuning(**meta["tuning"]), config, meta["signature"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RecommenderError(f"cannot read the stored recommender {path} ({exc}); delete it and it will "
                                   "be fitted again") from exc


def fit_hybrid(rows: Sequence[tuple[str, int, float, int]], ids: np.ndarray, songs: np.ndarray,
               cfg: HybridConfig | None = None) -> HybridModel:
    """Tune the blend on held-out listens, then fit ALS and the audio map on every listen in ``rows``.

    ``rows`` are (user, track id, unix time, plays); ``ids`` the sorted track ids; ``songs`` their unit
    song embeddings (same order).
    """
    cfg = cfg or HybridConfig()
    if not rows:
        raise RecommenderError("no listens to fit a recommender on; `soundalike listens import FILE.csv` adds them")
    ids = np.asarray(ids, np.int64)
    if len(ids) != len(songs) or (len(ids) > 1 and np.any(np.diff(ids) <= 0)):
        raise ParameterError("ids must be sorted, unique and match the song embeddings")
    tuning = tune_blend(rows, ids, songs, cfg)
    lis = Listens.from_rows(rows, ids)
    return HybridModel(ids, lis.users, fit_factors(lis.plays, songs, cfg), lis.plays, tuning, cfg)


# ---------------------------------------------------------------------- per catalog
def _signature(catalog: Any, cfg: HybridConfig) -> str:
    n, last, plays = catalog.listens_summary()
    return json.dumps([catalog.fingerprint, n, last, plays, cfg.to_dict()], sort_keys=True)


def model_for(catalog: Any, cfg: HybridConfig | None = None, *, refit: bool = False) -> HybridModel:
    """The catalog's fitted recommender: the stored one while the listens are unchanged, else fitted (and
    stored in ``recommender.npz`` beside the catalog when it is writable)."""
    cfg = cfg or HybridConfig()
    sig = _signature(catalog, cfg)
    cached = catalog.derived.get("recommender")
    if cached is not None and cached.signature == sig and not refit:
        return cached
    path = Path(catalog.root) / MODEL_FILE
    model = None
    if path.exists() and not refit:
        try:
            model = HybridModel.load(path)
        except RecommenderError:
            model = None  # refitted below and the file replaced
        if model is not None and model.signature != sig:
            model = None
    if model is None:
        ids, songs = catalog.song_matrix()
        model = fit_hybrid(catalog.listens(), ids, songs, cfg)
        model.signature = sig
        try:
            model.save(path)
        except OSError:
            pass  # a read-only catalog: keep it in memory
    catalog.derived["recommender"] = model
    return model
