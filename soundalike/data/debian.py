"""Real recorded music from Debian's game-data packages.

``fetch_debian_music(out, packages)``:

1. ``apt-get download`` each package into ``OUT/debs`` (no install, no root
   needed; a ``.deb`` already there is reused);
2. streams the package's file system out of the ``.deb`` (``dpkg-deb
   --fsys-tarfile``, so multi-GB packages never land unpacked on disk) and keeps
   audio files: known extensions, Ogg files without one (found by their
   ``OggS`` magic), and audio inside ``.pk3``/``.zip`` archives; tracker
   modules (``.mod .xm .s3m .it``) are rendered to Ogg Vorbis by FFmpeg's
   libopenmpt demuxer (Debian's ``ffmpeg``; needed only here, at data
   preparation time, never at run time);
3. keeps tracks of at least ``min_seconds``, drops duplicates by content hash
   (the first copy in sorted order wins, across all packages), and copies the
   package's ``copyright`` file to ``OUT/licenses/``;
4. writes ``OUT/manifest.jsonl``: one row per track with ``path`` (relative
   to OUT), ``label`` (the package), ``duration``, ``sha256`` and ``source``
   (where inside the package it came from).

The package list used to train the shipped model is :data:`TRAIN_PACKAGES`;
music from any other package is for independent evaluation only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from soundalike.errors import AudioDecodeError, DatasetError

#: The first 16 packages the encoder trained and validated on (issue 3).
FIRST_PACKAGES: tuple[str, ...] = (
    "ufoai-music", "naev-data", "supertux-data", "wesnoth-1.16-music", "widelands-data",
    "hedgewars-data", "berusky2-data", "colobot-common-sounds", "supertuxkart-data",
    "blobwars-data", "freedroidrpg-data", "marsshooter-data", "unknown-horizons",
    "ardentryst", "fillets-ng-data", "flare-game",
)

#: The packages added for broader training music (issue 19). Some hold no music of 30 s or more; the fetch
#: reports them as skipped.
MORE_PACKAGES: tuple[str, ...] = (
    "frozen-bubble-data", "fb-music-high", "pingus-data", "neverball-data", "lbreakout2-data",
    "chromium-bsu-data", "kobodeluxe-data", "tecnoballz-data", "trigger-rally-data", "armagetronad-common",
    "openarena-data", "bzflag-data", "powermanga-data", "openclonk-data", "0ad-data", "pathological",
    "tuxfootball", "alienblaster-data", "holotz-castle-data", "mirrormagic-data", "cube2-data",
    "scorched3d-data", "ri-li-data", "mu-cade-data", "monsterz-data", "xblast-tnt-musics",
)

#: Every package the shipped model may train and validate on. Whole packages go to validation; no other
#: Debian music package is ever trained on.
TRAIN_PACKAGES: tuple[str, ...] = FIRST_PACKAGES + MORE_PACKAGES

#: Whole packages held out of training to validate on (and to pick recipes with).
VALID_PACKAGES: tuple[str, ...] = ("hedgewars-data", "freedroidrpg-data", "ardentryst", "flare-game")

#: Game-music packages that are *not* in :data:`TRAIN_PACKAGES`: independent evaluation.
EVAL_PACKAGES: tuple[str, ...] = ("warzone2100-music", "megaglest-data", "xmoto-data", "extremetuxracer-data", "lincity-ng-data")

MUSIC_EXTENSIONS = (".ogg", ".oga", ".opus", ".mp3", ".flac", ".wav")
#: Tracker modules: notes + samples, rendered to audio by FFmpeg's libopenmpt at data preparation time.
TRACKER_EXTENSIONS = (".mod", ".xm", ".s3m", ".it")
#: A rendered module is cut here (a module that loops for ever still ends).
MAX_RENDER_SECONDS = 600.0
ARCHIVE_EXTENSIONS = (".pk3", ".zip")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.\-]+$")
_MAX_MEMBER_BYTES = 512 * 1024 * 1024  # one audio file larger than this is not a game track
_MAX_ARCHIVE_BYTES = 16 * 1024**3  # larger archives are read from a temporary file, up to this size


@dataclass
class FetchReport:
    packages: list[str]
    tracks: int = 0
    hours: float = 0.0
    per_package: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped_short: int = 0
    skipped_duplicate: int = 0
    skipped_undecodable: int = 0
    rendered_modules: int = 0
    skipped_packages: list[str] = field(default_factory=list)  # no music of min_seconds or more
    manifest: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_package_name(name: str) -> str:
    if not _PACKAGE_RE.match(name):
        raise DatasetError(f"{name!r} is not a Debian package name")
    return name


def download_package(package: str, debs: Path, *, runner: Callable[..., Any] = subprocess.run) -> Path:
    """``apt-get download PACKAGE`` into ``debs`` (reused when already there). Returns the .deb path."""
    _check_package_name(package)
    debs.mkdir(parents=True, exist_ok=True)
    have = sorted(debs.glob(f"{package}_*.deb"))
    if have:
        return have[-1]
    if shutil.which("apt-get") is None:
        raise DatasetError("apt-get is not available: run this on Debian/Ubuntu, or put "
                           f"{package}_*.deb into {debs} yourself")
    proc = runner(["apt-get", "download", package], cwd=str(debs), capture_output=True, text=True)
    if proc.returncode != 0:
        raise DatasetError(f"apt-get download {package} failed: {(proc.stderr or '').strip()[-400:]} "
                           "(is the package name right, and `apt-get update` done?)")
    have = sorted(debs.glob(f"{package}_*.deb"))
    if not have:
        raise DatasetError(f"apt-get download {package} wrote no {package}_*.deb into {debs}")
    return have[-1]


def _is_music_name(name: str) -> bool:
    return name.lower().endswith(MUSIC_EXTENSIONS)


def _is_module_name(name: str) -> bool:
    return name.lower().endswith(TRACKER_EXTENSIONS)


def render_module(data: bytes, dest: Path, *, max_seconds: float = MAX_RENDER_SECONDS,
                  runner: Callable[..., Any] = subprocess.run) -> None:
    """Render a tracker module (``.mod .xm .s3m .it`` bytes) to Ogg Vorbis at ``dest`` with FFmpeg + libopenmpt.

    Raises :class:`AudioDecodeError` when FFmpeg cannot read the module, :class:`DatasetError` when no
    ``ffmpeg`` is installed (``apt-get install ffmpeg``: Debian's is built with libopenmpt).
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise DatasetError("tracker modules need the `ffmpeg` command (Debian's is built with libopenmpt): "
                           "apt-get install ffmpeg, or leave these packages out")
    with tempfile.NamedTemporaryFile(suffix=".module", dir=dest.parent) as src:
        src.write(data)
        src.flush()
        cmd = [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "libopenmpt", "-i", src.name, "-t", f"{max_seconds:g}",
               "-vn", "-ac", "2", "-ar", "44100", "-c:a", "libvorbis", "-q:a", "5", "-f", "ogg", str(dest)]
        try:
            proc = runner(cmd, capture_output=True, text=True, timeout=max(60.0, max_seconds))
        except subprocess.TimeoutExpired as exc:
            dest.unlink(missing_ok=True)
            raise AudioDecodeError(dest.name, "rendering the module timed out") from exc
    if proc.returncode != 0 or not dest.exists() or dest.stat().st_size == 0:
        dest.unlink(missing_ok=True)
        raise AudioDecodeError(dest.name, f"ffmpeg could not render the module: {(proc.stderr or '').strip()[-200:]}")


def _ogg_magic(head: bytes) -> bool:
    return head[:4] == b"OggS"


def iter_deb_audio(deb: Path, *, keep: dict[str, bytes] | None = None) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield ``(source path, readable)`` for every audio file in a .deb's file system.

    Archives (``.pk3``/``.zip``) are opened and their audio members yielded as
    ``archive.pk3!inner/path.ogg``. Extension-less files count when they
    start with the Ogg magic. Files whose path is a key of ``keep`` (e.g. the
    package's copyright file) are read into it on the same pass.
    """
    if shutil.which("dpkg-deb") is None:
        raise DatasetError("dpkg-deb is not available: install the `dpkg` package")
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    finished = False
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
            for member in tar:
                if keep is not None and member.isfile() and member.name.lstrip("./") in keep:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        keep[member.name.lstrip("./")] = fh.read()
                    continue
                yield from _member_audio(tar, member)
        finished = True
    except tarfile.TarError as exc:
        raise DatasetError(f"cannot read {deb}: {exc}") from exc
    finally:
        proc.stdout.close()
        if not finished:
            proc.kill()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rc = proc.wait()
        if finished and rc != 0:
            raise DatasetError(f"dpkg-deb --fsys-tarfile {deb} failed ({rc}): {err.strip()[-300:]}")


def _member_audio(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[tuple[str, IO[bytes]]]:
    if not member.isfile() or member.size == 0:
        return
    name = member.name.lstrip("./")
    base = os.path.basename(name)
    lower = base.lower()
    if member.size > _MAX_MEMBER_BYTES:
        # too large to hold in memory: only an archive (0 A.D. keeps its music in a 3 GB zip) is worth it,
        # spooled to a temporary file on disk
        if lower.endswith(ARCHIVE_EXTENSIONS) and member.size <= _MAX_ARCHIVE_BYTES:
            fh = tar.extractfile(member)
            if fh is not None:
                with tempfile.TemporaryFile() as spool:
                    shutil.copyfileobj(fh, spool, 1 << 20)
                    spool.seek(0)
                    yield from _zip_audio(name, spool)
        return
    if _is_music_name(lower) or _is_module_name(lower):
        fh = tar.extractfile(member)
        if fh is not None:
            yield name, io.BytesIO(fh.read())
    elif lower.endswith(ARCHIVE_EXTENSIONS):
        fh = tar.extractfile(member)
        if fh is not None:
            yield from _zip_audio(name, fh.read())
    elif "." not in base and member.size > 4096:
        fh = tar.extractfile(member)
        if fh is not None:
            data = fh.read()
            if _ogg_magic(data):
                yield name, io.BytesIO(data)


def _zip_audio(name: str, blob: bytes | IO[bytes]) -> Iterator[tuple[str, IO[bytes]]]:
    """Audio members of a .pk3/.zip (its bytes, or a seekable file) as ``archive!inner``."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob) if isinstance(blob, bytes) else blob)
    except zipfile.BadZipFile:
        return
    with zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir() or info.file_size == 0 or info.file_size > _MAX_MEMBER_BYTES:
                continue
            inner = os.path.basename(info.filename)
            if _is_music_name(inner) or _is_module_name(inner):
                yield f"{name}!{info.filename}", io.BytesIO(zf.read(info))
            elif "." not in inner:
                data = zf.read(info)
                if _ogg_magic(data):
                    yield f"{name}!{info.filename}", io.BytesIO(data)


def _safe_name(source: str) -> str:
    """A flat, portable file name for a path inside a package (hostile names made harmless)."""
    s = source.replace("!", "/")
    for prefix in ("usr/share/games/", "usr/share/", "usr/games/"):
        if s.startswith(prefix):
            s = s[len(prefix):]
            break
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s.replace("/", "__")).strip("._")
    return s[-150:] or "track"


def fetch_debian_music(out: str | Path, packages: Sequence[str] = TRAIN_PACKAGES, *, min_seconds: float = 30.0,
                       progress: bool = False, log: Callable[[str], None] | None = None) -> FetchReport:
    """Download, extract, filter and de-duplicate the music of ``packages`` into ``out``."""
    from soundalike.audio.io import info as audio_info

    if not packages:
        raise DatasetError("no packages given")
    pkgs = [_check_package_name(p) for p in packages]
    root = Path(out).expanduser().resolve()
    audio_root = root / "audio"
    audio_root.mkdir(parents=True, exist_ok=True)
    say = log or (lambda msg: None)
    manifest_path = root / "manifest.jsonl"
    report = FetchReport(packages=pkgs, manifest=str(manifest_path))

    # keep what an earlier run found for packages not fetched now, so runs add up
    rows: dict[str, dict[str, Any]] = {}
    if manifest_path.exists():
        for line in manifest_path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("label") not in pkgs and (root / row["path"]).is_file():
                    rows[row["path"]] = row
    seen_hashes = {r["sha256"]: r["path"] for r in rows.values()}

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(pkgs), unit="pkg", desc="debian music", dynamic_ncols=True)
    for pkg in pkgs:
        deb = download_package(pkg, root / "debs")
        copyright_path = f"usr/share/doc/{pkg}/copyright"
        keep = {copyright_path: b""}
        pkg_dir = audio_root / pkg
        if pkg_dir.exists():
            shutil.rmtree(pkg_dir)
        pkg_dir.mkdir(parents=True)
        kept = 0
        seconds = 0.0
        for source, fh in sorted(iter_deb_audio(deb, keep=keep), key=lambda x: x[0]):
            data = fh.read()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen_hashes:
                report.skipped_duplicate += 1
                continue
            name = _safe_name(source)
            module = _is_module_name(name)
            if not _is_music_name(name):
                name += ".ogg"  # extension-less Ogg, or a module rendered to Ogg
            dest = pkg_dir / name
            if dest.exists():
                dest = dest.with_name(f"{dest.stem}-{digest[:8]}{dest.suffix}")
            with tempfile.NamedTemporaryFile(dir=pkg_dir, suffix=dest.suffix, delete=False) as tmp:
                if not module:
                    tmp.write(data)
            try:
                if module:
                    render_module(data, Path(tmp.name))
                    report.rendered_modules += 1
                dur = audio_info(tmp.name).duration
            except AudioDecodeError:
                Path(tmp.name).unlink(missing_ok=True)
                report.skipped_undecodable += 1
                continue
            if dur is None or dur < min_seconds:
                os.unlink(tmp.name)
                report.skipped_short += 1
                continue
            os.replace(tmp.name, dest)
            os.chmod(dest, 0o644)
            rel = str(dest.relative_to(root))
            seen_hashes[digest] = rel
            rows[rel] = {"path": rel, "label": pkg, "package": pkg, "duration": round(float(dur), 3),
                         "sha256": digest, "source": source}
            if module:
                rows[rel]["rendered"] = "libopenmpt"
            kept += 1
            seconds += float(dur)
        if keep[copyright_path]:  # the licence of the music
            (root / "licenses").mkdir(parents=True, exist_ok=True)
            (root / "licenses" / f"{pkg}.copyright").write_bytes(keep[copyright_path])
        report.per_package[pkg] = {"tracks": kept, "hours": round(seconds / 3600, 3)}
        if kept:
            say(f"{pkg}: {kept} tracks, {seconds / 3600:.2f} h")
        else:
            report.skipped_packages.append(pkg)
            shutil.rmtree(pkg_dir, ignore_errors=True)
            say(f"{pkg}: skipped, no music of {min_seconds:g} s or more")
        if bar is not None:
            bar.set_postfix(pkg=pkg, tracks=kept)
            bar.update(1)
    if bar is not None:
        bar.close()

    tmp_manifest = manifest_path.with_name(".manifest.jsonl.tmp")
    with open(tmp_manifest, "w") as out_fh:
        for rel in sorted(rows):
            out_fh.write(json.dumps(rows[rel], sort_keys=True) + "\n")
    os.replace(tmp_manifest, manifest_path)
    report.tracks = sum(1 for r in rows.values() if r["label"] in pkgs)
    report.hours = round(sum(r["duration"] for r in rows.values() if r["label"] in pkgs) / 3600, 3)
    return report
