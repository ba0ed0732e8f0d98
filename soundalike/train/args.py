"""Typed training configuration, loaded from YAML."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from soundalike.errors import ConfigError

OBJECTIVES = ("infonce", "song", "autoencoder")


@dataclass
class TrainConfig:
    """One training run. Every field reaches the solver."""

    data: list[str] = field(default_factory=list)  # folders or files of audio (one source)
    manifest: str | None = None  # JSONL labels; with one, validation holds out whole works/packages
    sources: list[dict[str, Any]] = field(default_factory=list)  # several sources: {data, manifest, weight, group_key}
    valid_groups: list[str] = field(default_factory=list)  # groups (packages, works) to hold out; else valid_fraction
    objective: str = "infonce"  # infonce | song (chunk InfoNCE + song-level InfoNCE + SupCon over groups, on
    #                             learnt song pooling) | autoencoder (a decoder reconstructs the chunk)
    init_from: str | None = None  # start from this model's weights (name or path) instead of random ones
    augment: dict[str, Any] = field(default_factory=dict)  # overrides of soundalike.augment.AugmentConfig
    cache_dir: str | None = None  # where prepared mels + views are cached (keyed by file and settings)
    jobs: int = 2  # processes preparing audio
    out: str = "runs/contrastive"  # checkpoints, log and the exported model
    encoder: str = "contrastive_cnn"  # registered encoder name
    encoder_config: dict[str, Any] = field(default_factory=dict)  # overrides of its Config
    frontend: dict[str, Any] = field(default_factory=dict)  # overrides of FrontendConfig
    model_name: str | None = None  # name written into the exported model (default: encoder)
    steps: int = 1000  # optimiser steps
    batch_size: int = 64  # pairs per batch (2 x batch_size chunks), at most one per track unless repeat_tracks
    repeat_tracks: bool = False  # batches larger than the track count draw some tracks twice (fingerprints:
    #                              two moments of one track become each other's negatives; needs near_p 1)
    lr: float = 2e-3  # peak learning rate (AdamW)
    weight_decay: float = 1e-4
    warmup_steps: int = 50  # linear warm-up, then cosine decay to lr_min_ratio * lr
    lr_min_ratio: float = 0.05
    temperature: float = 0.1  # InfoNCE temperature
    group_positive_p: float = 0.0  # share of pairs whose positive is another track of the same group
    mask_group_negatives: bool = False  # other tracks of an anchor's group are not negatives
    noise_db: float = 0.0  # std of extra Gaussian noise added to each input, in dB
    tracks_per_group: int = 2  # song objective: tracks drawn from each group in a batch (SupCon positives)
    bag_chunks: int = 3  # song objective: chunks pooled into each of a track's two song views
    chunk_loss: float = 1.0  # song objective: weight of the chunk-level instance InfoNCE (excerpt robustness)
    song_loss: float = 0.5  # song objective: weight of the song-level instance InfoNCE
    group_loss: float = 1.0  # song objective: weight of SupCon over groups on song embeddings
    valid_fraction: float = 0.1  # share of works (or tracks) held out
    valid_every: int = 100  # steps between validation passes
    valid_batches: int = 8
    checkpoint_every: int = 100  # steps between checkpoints (always one at the end)
    seed: int = 0
    threads: int = 2  # torch intra-op threads
    device: str = "auto"  # torch device: auto (CUDA when available, else CPU), cpu, cuda, cuda:N
    max_track_seconds: float = 600.0  # longer files are cut when loading

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            self.data = [self.data]
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if self.data and self.sources:
            raise ConfigError("give either `data` (one source) or `sources`, not both")
        if int(self.jobs) < 1:
            raise ConfigError("jobs must be >= 1")
        from soundalike.augment.chain import AugmentConfig

        AugmentConfig.from_dict(self.augment)  # typed check now, not after the data is loaded
        for name in ("steps", "batch_size", "valid_every", "checkpoint_every", "threads", "valid_batches"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2: InfoNCE needs in-batch negatives")
        if not 0 < self.temperature <= 10:
            raise ConfigError("temperature must be in (0, 10]")
        if self.repeat_tracks and float(self.augment.get("near_p", 0.5)) < 1.0:
            raise ConfigError("repeat_tracks needs augment.near_p: 1.0 (a track drawn twice must not have "
                              "positives anywhere in itself, or its two pairs contradict each other)")
        if not 0 <= self.group_positive_p <= 1:
            raise ConfigError("group_positive_p is a probability: it must be in [0, 1]")
        if not 0 <= self.valid_fraction < 1:
            raise ConfigError("valid_fraction must be in [0, 1)")
        if self.tracks_per_group < 1 or self.bag_chunks < 1:
            raise ConfigError("tracks_per_group and bag_chunks must be >= 1")
        if min(self.chunk_loss, self.song_loss, self.group_loss) < 0 or \
                self.chunk_loss + self.song_loss + self.group_loss <= 0:
            raise ConfigError("chunk_loss, song_loss and group_loss are non-negative weights, not all zero")
        if self.lr <= 0:
            raise ConfigError("lr must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def data_sources(self) -> list[Any]:
        """The configured data as :class:`~soundalike.train.data.DataSource` objects."""
        from soundalike.train.data import DataSource

        if self.sources:
            return [DataSource.from_dict(s) for s in self.sources]
        if not self.data:
            raise ConfigError("no training data: set `data` (or `sources`) to folders of audio")
        return [DataSource(list(self.data), self.manifest)]


def _read_settings(p: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's settings; ``extends: BASE.yaml`` (relative to the file) starts from another's."""
    import yaml

    if p.resolve() in seen:
        raise ConfigError(f"{p} extends itself (through {' -> '.join(str(s) for s in seen)})")
    try:
        loaded = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read training config {p}: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{p} must hold a mapping of settings")
    raw = dict(loaded or {})
    base = raw.pop("extends", None)
    if base is None:
        return raw
    merged = _read_settings(p.parent / str(base), (*seen, p.resolve()))
    merged.update(raw)
    return merged


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from YAML, with keyword overrides (``None`` values ignored). A config may
    begin with ``extends: BASE.yaml``: BASE's settings, then its own on top."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_settings(Path(path))
    raw.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown training settings {sorted(unknown)}; known: {sorted(known)}")
    try:
        return TrainConfig(**raw)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc
