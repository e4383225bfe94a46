"""Decode + log-mel features of a 3-minute song, as a multiple of realtime (goal: >= 100x).

No corpus track lasts 3 minutes (the longest, circles.ogg, is 139.6 s), so the song is
circles.ogg looped to 180 s and re-encoded by libsndfile as mp3 (LAME), ogg (Vorbis) and wav
(16-bit PCM), 44.1 kHz stereo like osu!'s audio; the encoded files live in a temporary folder.
Each round times the three stages of core.audio.audio_features on each file: decode (read the
bytes, decode, mix to mono, silence and truncation checks), resample to SAMPLE_RATE, log-mel.
The first call (which builds the cached resampling kernel and mel transform, and touches fresh
memory) is shown on its own row and left out of the medians.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from corpus import corpus_root

from core import audio

SECONDS = 180.0
ROUNDS = 7
FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "ogg": ("OGG", "VORBIS"), "wav": ("WAV", "PCM_16")}


def three_minute_song(folder: Path) -> dict[str, Path]:
    """circles.ogg looped to SECONDS, written in each of FORMATS: {format: path}."""
    with zipfile.ZipFile(corpus_root() / "osu-resources" / "circles.osz") as z:
        data = z.read("circles.ogg")
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    length = int(SECONDS * rate)
    song = np.concatenate([samples] * (length // len(samples) + 1))[:length]
    paths = {}
    for name, (container, subtype) in FORMATS.items():
        paths[name] = folder / f"song.{name}"
        # In blocks: one 180 s sf.write to MP3 crashed libsndfile 1.2.2 (SIGSEGV) here.
        with sf.SoundFile(paths[name], "w", rate, song.shape[1], subtype, format=container) as f:
            for block in range(0, length, 1 << 16):
                f.write(song[block:block + (1 << 16)])
    return paths


def timed_stages(path: Path) -> dict[str, float]:
    """Seconds spent in each stage of audio_features(path)."""
    start = time.perf_counter()
    mono, rate, _ = audio._decode(path.read_bytes(), str(path))
    decoded = time.perf_counter()
    resampled = torch.from_numpy(audio._at_sample_rate(mono, rate))
    resampled_at = time.perf_counter()
    features = audio.log_mel(resampled)
    done = time.perf_counter()
    assert features.shape[1] == -(-len(resampled) // audio.HOP_LENGTH)
    return {"decode": decoded - start, "resample": resampled_at - decoded,
            "log-mel": done - resampled_at}


def rounds(paths: dict[str, Path], threads: int) -> dict[str, dict[str, list[float]]]:
    """{file: {stage: seconds of each round}} with torch on `threads` threads."""
    torch.set_num_threads(threads)
    times: dict[str, dict[str, list[float]]] = {name: {} for name in paths}
    for _ in range(ROUNDS):
        for name, path in paths.items():
            for stage, seconds in timed_stages(path).items():
                times[name].setdefault(stage, []).append(seconds)
    return times


def main() -> None:
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, libsndfile {sf.__libsndfile_version__}; "
          f"{audio.SAMPLE_RATE} Hz, hop {audio.HOP_LENGTH}, n_fft {audio.N_FFT}, "
          f"{audio.N_MELS} mels; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = three_minute_song(Path(folder))
        cold = timed_stages(paths["mp3"])  # builds the kernel and transform; fresh memory
        rows["mp3, 1st call"] = {stage: [seconds] for stage, seconds in cold.items()}
        # torch's default (one thread per core) and one thread, as in DataLoader workers: on a
        # busy machine the default's OpenMP threads wait on each other.
        for n in sorted({threads, 1}, reverse=True):
            for name, by_stage in rounds(paths, n).items():
                size = paths[name].stat().st_size / 2**20
                rows[f"{name} {size:.1f}MB {n}T"] = by_stage
    print(f"{SECONDS:.0f} s of circles.ogg looped, 44.1 kHz stereo; median of {ROUNDS} rounds (ms)")
    stages = list(cold)
    header = "".join(f"{stage:>10}" for stage in [*stages, "total"])
    print(f"{'file, threads':<18}{header}{'x realtime':>12}")
    for label, by_stage in rows.items():
        medians = [statistics.median(by_stage[s]) for s in stages]
        totals = [sum(run) for run in zip(*by_stage.values(), strict=True)]
        total = statistics.median(totals)
        print(f"{label:<18}" + "".join(f"{m * 1000:>10.0f}" for m in medians)
              + f"{total * 1000:>10.0f}{SECONDS / total:>11.0f}x")


if __name__ == "__main__":
    sys.exit(main())
