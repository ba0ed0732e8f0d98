"""A corpus of hostile inputs: files that once crashed, hung, leaked or fooled soundalike.

``write_corpus(folder)`` writes every case into ``folder`` and returns what each one is and what
soundalike must do with it; ``tests/hostile/make_corpus.py`` is the command-line wrapper and
``tests/test_hostile.py`` runs the whole set. Everything is generated (seeded), nothing downloaded.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundalike.testing.synth import synth_track, tone

SR = 22050


@dataclass(frozen=True)
class Case:
    """One hostile input: its file name in the corpus, what it is, and the expected outcome."""

    name: str
    what: str
    expect: str  # "index": indexed as a track; "duplicate": indexed once; "fail": listed as a failure with a
    #              reason; "skip": never opened (not a regular file); "ignore": not an audio name


def write_wav_float(path: Path, y: np.ndarray, sr: int, channels: int = 1) -> None:
    """A 32-bit float WAV, written by hand: soundfile refuses to write NaN or infinity faithfully everywhere."""
    data = np.asarray(y, dtype="<f4")
    if channels > 1:
        data = np.repeat(data[:, None], channels, axis=1)
    raw = data.tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, sr, sr * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(raw)) + raw
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def multichannel(y: np.ndarray, channels: int) -> np.ndarray:
    """[shape=(n,)] -> [shape=(n, channels)]: the signal on every channel, each a little different."""
    gains = np.linspace(1.0, 0.3, channels, dtype=np.float32)
    return (y[:, None] * gains[None, :]).astype(np.float32)


def write_corpus(folder: str | Path, *, long_opus_seconds: float = 0.0) -> list[Case]:
    """Write every hostile case into ``folder`` (created); ``long_opus_seconds`` > 0 adds a long Opus file."""
    import soundfile as sf

    from soundalike.audio.io import encode

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    track = synth_track(101, sr=SR, duration=20.0)

    def add(name: str, what: str, expect: str) -> Path:
        cases.append(Case(name, what, expect))
        return out / name

    sf.write(add("good.wav", "an ordinary 20 s track", "index"), track, SR, subtype="PCM_16")
    sf.write(add("eight-channels.wav", "8-channel WAV (crashed PyAV's channel stack)", "index"),
             multichannel(synth_track(102, sr=SR, duration=12.0), 8), SR, subtype="PCM_16")
    sf.write(add("eight-channels.flac", "8-channel FLAC", "index"),
             multichannel(synth_track(103, sr=SR, duration=12.0), 8), SR, format="FLAC", subtype="PCM_16")
    sf.write(add("six-channels.wav", "5.1 WAV", "index"),
             multichannel(synth_track(104, sr=SR, duration=12.0), 6), SR, subtype="PCM_24")
    y = tone(440.0, sr=SR, duration=10.0)
    y[SR: SR + 500] = np.nan
    write_wav_float(add("nan-samples.wav", "float WAV with NaN samples", "fail"), y, SR)
    y = tone(330.0, sr=SR, duration=10.0)
    y[2 * SR] = np.inf
    write_wav_float(add("inf-samples.wav", "float WAV with an infinite sample", "fail"), y, SR)
    sf.write(add("silence.wav", "10 s of digital silence", "fail"), np.zeros(10 * SR, np.float32), SR)
    sf.write(add("one-sample.wav", "a 1-sample file", "fail"), np.full(1, 0.5, np.float32), SR)
    sf.write(add("fifth-second.wav", "0.2 s of sound", "fail"), tone(440.0, sr=SR, duration=0.2), SR)
    add("text.mp3", "a text file named .mp3", "fail").write_text("this is not audio\n" * 50)
    add("empty.ogg", "an empty file", "fail").write_bytes(b"")
    add("random.wav", "random bytes named .wav", "fail").write_bytes(np.random.default_rng(7).bytes(40_000))
    mp3 = encode(track, SR, ".mp3")
    add("truncated.mp3", "an MP3 cut to a tenth", "fail").write_bytes(mp3[: len(mp3) // 10])
    garbled = bytearray(encode(synth_track(105, sr=SR, duration=20.0), SR, ".mp3"))
    rng = np.random.default_rng(8)
    for pos in rng.integers(len(garbled) // 4, len(garbled) // 2, size=40):
        garbled[pos: pos + 64] = rng.bytes(64)  # decoder noise ("Illegal Audio-MPEG-Header") mid-stream
    add("garbled.mp3", "an MP3 with corrupt frames mid-stream", "fail").write_bytes(bytes(garbled))
    sf.write(add("copy-of-good.wav", "a byte copy of good.wav", "duplicate"), track, SR, subtype="PCM_16")
    os.symlink("good.wav", add("link-to-good.wav", "a symlink to good.wav", "duplicate"))
    os.symlink("no-such-file.wav", add("dangling.wav", "a symlink to nothing", "fail"))
    sf.write(add("new\nline.wav", "a newline in the file name", "index"),
             synth_track(106, sr=SR, duration=12.0), SR, subtype="PCM_16")
    os.mkfifo(add("pipe.wav", "a named pipe (FIFO) with an audio name", "skip"))
    add("notes.txt", "a text file with no audio name", "ignore").write_text("liner notes\n")
    if long_opus_seconds > 0:
        write_long_opus(add("long.opus", f"{long_opus_seconds:.0f} s of Opus", "fail"), long_opus_seconds)
    return cases


def write_long_opus(path: str | Path, seconds: float, *, sr: int = 48000) -> Path:
    """A long mono Opus file written block by block (bounded memory): a 2-hour file is ~30 MB at 32 kbit/s."""
    import av

    p = Path(path)
    block = synth_track(107, sr=sr, duration=30.0)
    frame = 960
    with av.open(str(p), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=sr, layout="mono")
        stream.bit_rate = 32000
        pts = 0
        total = int(seconds * sr)
        while pts < total:
            x = block[: (min(len(block), total - pts) // frame) * frame] if total - pts < len(block) else block
            if len(x) == 0:
                break
            for i in range(0, len(x), frame):
                f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, i: i + frame]), format="flt",
                                               layout="mono")
                f.sample_rate = sr
                f.pts = pts
                pts += frame
                for pkt in stream.encode(f):
                    container.mux(pkt)
        for pkt in stream.encode(None):
            container.mux(pkt)
    return p
