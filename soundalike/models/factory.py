"""``create_encoder`` (a fresh or pretrained network by name) and ``load_encoder``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soundalike.errors import ModelError
from soundalike.features.mel import FrontendConfig
from soundalike.models.checkpoint import AudioEncoder, load_model_file

WEIGHTS_DIR = Path(__file__).with_name("weights")
#: The model used when none is named.
DEFAULT_MODEL = "contrastive_cnn-music"
#: Shipped similarity models the default has replaced: still loadable (catalogs made with them keep working),
#: and opening such a catalog says how to re-index with the default.
SUPERSEDED_MODELS: tuple[str, ...] = ()


def upgrade_notice(model_ref: str | None, catalog: str) -> str | None:
    """What to tell the user of a catalog made with a superseded shipped model (None when it is current)."""
    if model_ref not in SUPERSEDED_MODELS or model_ref == DEFAULT_MODEL:
        return None
    return (f"catalog {catalog} was made with {model_ref}, which keeps working; the default model is now "
            f"{DEFAULT_MODEL} (far better at 'what sounds like this'). To use it, re-index into a new catalog: "
            f"`soundalike index MUSIC_FOLDER --catalog NEW_CATALOG` (see `soundalike models`)")


def list_pretrained() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.json") if p.with_suffix(".safetensors").exists())


def create_encoder(name: str, *, pretrained: bool = False, frontend: FrontendConfig | None = None,
                   **config: Any) -> AudioEncoder:
    """Build a registered encoder.

    ``pretrained=True`` loads the shipped weights whose JSON names this encoder
    (``config``/``frontend`` must then be left out: a trained model carries its own).
    """
    from soundalike.models.registry import build_config, get_encoder_entry

    entry = get_encoder_entry(name)
    if pretrained:
        if config or frontend is not None:
            raise ModelError("a pretrained model carries its own config and front-end; do not override them")
        for cand in list_pretrained():
            enc = load_model_file(WEIGHTS_DIR / cand)
            if enc.encoder == name:
                return enc
        raise ModelError(f"no pretrained weights ship for encoder {name!r}; "
                         f"shipped: {', '.join(list_pretrained()) or 'none'}. Train one with `soundalike train`.")
    fe = frontend or FrontendConfig()
    cfg = build_config(name, {"n_mels": fe.n_mels, **config})
    if getattr(cfg, "n_mels", fe.n_mels) != fe.n_mels:
        raise ModelError(f"encoder n_mels={cfg.n_mels} does not match the front-end's n_mels={fe.n_mels}")
    return AudioEncoder(entry.cls(cfg), encoder=name, frontend=fe)


def load_encoder(name_or_path: str | Path | None = None) -> AudioEncoder:
    """Load a model by shipped name (see :func:`list_pretrained`) or by file path.

    ``None`` or ``"default"`` gives :data:`DEFAULT_MODEL`. A path may name the
    ``.safetensors`` file, the ``.json`` file, or their common stem.
    """
    ref = DEFAULT_MODEL if name_or_path in (None, "", "default") else str(name_or_path)
    path = Path(ref).expanduser()
    if path.suffix in (".safetensors", ".json") or path.with_suffix(".json").exists():
        if not (path.exists() or path.with_suffix(".json").exists()):
            raise ModelError(f"model file {path} does not exist")
        return load_model_file(path)
    if ref in list_pretrained():
        enc = load_model_file(WEIGHTS_DIR / ref)
        enc.source = ref
        return enc
    from soundalike.models.registry import list_encoders

    hint = (f" {ref!r} is an encoder architecture: use create_encoder({ref!r}) for an untrained one,"
            " or `soundalike train` to train it." if ref in list_encoders() else "")
    raise ModelError(f"no model {ref!r}: not a file, and not a shipped model "
                     f"({', '.join(list_pretrained()) or 'none shipped'}).{hint}")
