"""Render a `Score` to mono audio with numpy: drums as noise and sine bursts, notes as tones.

Every sound starts with a sharp attack (a few ms) so that each note of the score is an onset a
model can hear; sustained notes hold steady after it, so a slider's body is audible as one note.
"""

from __future__ import annotations

import numpy as np

from core.audio import LATENCY_MS
from core.synth.score import Note, Score

PEAK = 0.89  # -1 dBFS: headroom for the Vorbis encoder's overshoot, so decoding never clips
GAINS = {"kick": 0.9, "snare": 0.6, "hat": 0.4, "crash": 0.3, "bass": 0.35, "lead": 0.3}
ATTACK_S = 0.004
DECAY_S = 0.08
SUSTAIN_LEVEL = 0.6
RELEASE_S = 0.06
VARIANTS = 4  # noise drums come in a few takes, so repeated hits are not sample-identical


def render(score: Score, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """The song as float32 samples (N,), N = (duration_ms + LATENCY_MS) * sample_rate / 1000,
    peak at `PEAK`. The score's times are beatmap times: each note sounds LATENCY_MS after its
    tick, where an osu! map timed by a mapper would have it."""
    out = np.zeros(int(np.ceil((score.duration_ms + LATENCY_MS) * sample_rate / 1000)),
                   dtype=np.float64)
    drums = {name: [make(rng, sample_rate) for _ in range(VARIANTS)]
             for name, make in _DRUMS.items()}
    for note in score.notes:
        start = round((score.ms(note.tick) + LATENCY_MS) * sample_rate / 1000)
        if note.instrument in drums:
            sound = drums[note.instrument][int(rng.integers(VARIANTS))]
        else:
            seconds = (score.ms(note.tick + note.length) - score.ms(note.tick)) / 1000
            sound = _tone(note, seconds, sample_rate)
        sound = sound[: len(out) - start] * (GAINS[note.instrument] * note.velocity)
        out[start:start + len(sound)] += sound
    peak = float(np.max(np.abs(out)))
    if peak > 0:
        out *= PEAK / peak
    return out.astype(np.float32)


def _time(seconds: float, sample_rate: int) -> np.ndarray:
    return np.arange(int(seconds * sample_rate)) / sample_rate


def _highpass(x: np.ndarray, order: int) -> np.ndarray:
    """Repeated first differences: a cheap high-pass that keeps a noise burst's sharp start."""
    for _ in range(order):
        x = np.diff(x, prepend=0.0)
    return x / np.max(np.abs(x))


def _kick(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    t = _time(0.35, sample_rate)
    # A falling pitch (150 -> 50 Hz) is what makes a sine burst read as a kick drum.
    frequency = 50 + 100 * np.exp(-t / 0.04)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    body = np.sin(phase) * np.exp(-t / 0.12)
    click = rng.standard_normal(len(t)) * np.exp(-t / 0.003) * 0.5
    return body + click


def _snare(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    t = _time(0.25, sample_rate)
    rattle = _highpass(rng.standard_normal(len(t)), 1) * np.exp(-t / 0.07)
    drum = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
    return 0.8 * rattle + 0.5 * drum


def _hat(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    t = _time(0.08, sample_rate)
    return _highpass(rng.standard_normal(len(t)), 3) * np.exp(-t / 0.02)


def _crash(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    t = _time(1.5, sample_rate)
    return _highpass(rng.standard_normal(len(t)), 2) * np.exp(-t / 0.5)


_DRUMS = {"kick": _kick, "snare": _snare, "hat": _hat, "crash": _crash}


def _tone(note: Note, seconds: float, sample_rate: int) -> np.ndarray:
    """A harmonic tone held for `seconds`, then released: attack, decay, sustain, release."""
    frequency = 440.0 * 2 ** ((note.pitch - 69) / 12)
    t = _time(seconds + RELEASE_S * 4, sample_rate)
    # The lead is saw-like (1/k), brighter than the bass (1/k^2); nothing above Nyquist.
    power = 1 if note.instrument == "lead" else 2
    count = 8 if note.instrument == "lead" else 5
    wave = np.zeros(len(t))
    for k in range(1, count + 1):
        if k * frequency < sample_rate / 2:
            wave += np.sin(2 * np.pi * k * frequency * t) / k**power
    return wave * _envelope(t, seconds)


def _envelope(t: np.ndarray, seconds: float) -> np.ndarray:
    attack = np.clip(t / ATTACK_S, 0.0, 1.0)
    decay = SUSTAIN_LEVEL + (1 - SUSTAIN_LEVEL) * np.exp(-np.maximum(t - ATTACK_S, 0) / DECAY_S)
    release = np.exp(-np.maximum(t - seconds, 0) / RELEASE_S)
    return attack * decay * release
