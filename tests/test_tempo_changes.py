"""core.tempo_changes: which stretches of a song are tempo changes, on onset envelopes built
beat by beat (so that what each grid fits is known exactly); and where a change's red line goes,
on click tracks."""

from __future__ import annotations

import numpy as np
import pytest
from test_tempo_drift import clicks

from core.audio import LATENCY_MS
from core.tempo import estimate_timing
from core.tempo_changes import (
    FIGURE_S,
    NEAR_FIGURE_S,
    confirm_changes,
    keep_song_tempo,
    merge_returns,
)
from core.tempo_grid import FPS, fit_grid, period_of


def pulses(seconds: float, pieces: list[tuple[float, float, float, float]]) -> np.ndarray:
    """An onset envelope with an impulse on every beat of each (start s, end s, BPM, strength)."""
    env = np.zeros(int(seconds * FPS))
    for start, end, bpm, strength in pieces:
        beats = np.round(np.arange(start * FPS, end * FPS, 60 * FPS / bpm)).astype(int)
        env[beats[beats < len(env)]] += strength
    return env


def period(bpm: float) -> float:
    return 60 * FPS / bpm


def confirmed(env: np.ndarray, rough: list[tuple[float, float, float]]) -> list[float]:
    """The BPMs confirm_changes keeps for sections (start s, end s, rough BPM)."""
    sections = [(int(a * FPS), int(b * FPS), period(bpm)) for a, b, bpm in rough]
    grids = [fit_grid(env, a, b, p) for a, b, p in sections]
    confirm_changes(env, sections, grids)
    assert len(sections) == len(grids)
    return [60 * FPS / g[0] for g in grids]


def test_an_intro_timed_at_a_relative_of_the_tempo_is_not_a_change():
    # 140 BPM throughout, but the local estimates put the 12 s intro at 210 (x3/2): its own
    # tempo fits the intro twice as well per beat as 210 does, so the intro is no change
    env = pulses(60, [(0, 60, 140, 1.0)])
    (bpm,) = confirmed(env, [(0, 12, 210), (12, 60, 140)])
    assert abs(bpm / 140 - 1) < 0.005


@pytest.mark.parametrize("after", [210, 200])
def test_a_true_change_to_a_relative_tempo_stays(after):
    # at x2 the tempo before cannot fit its own section 1.4x better than the new one does
    # (a grid twice as fast puts every other beat on its beats): only the forward test holds
    before = 140 if after == 210 else 100
    env = pulses(60, [(0, 30, before, 1.0), (30, 60, after, 1.0)])
    bpms = confirmed(env, [(0, 30, before), (30, 60, after)])
    assert [round(b) for b in bpms] == [before, after]


def test_a_fade_out_is_no_evidence_of_a_tempo():
    # 40 s at 150 BPM, then 10 s of faint onsets at another tempo: one red line, at 150
    env = pulses(50, [(0, 40, 150, 1.0), (40, 50, 173, 0.03)])
    (bpm,) = confirmed(env, [(0, 40, 150), (40, 50, 173)])
    assert abs(bpm / 150 - 1) < 0.005


def test_a_merge_that_takes_the_later_tempo_is_weighed_again():
    # 140, a quiet 11 s at 160, then a long faint stretch at 140: the last two merge at 140
    # (more onset strength on its beats), and that stretch is the first's tempo: one red line
    env = pulses(121, [(0, 20, 140, 1.0), (20, 31, 160, 0.15), (31, 121, 140, 0.03)])
    (bpm,) = confirmed(env, [(0, 20, 140), (20, 31, 160), (31, 121, 140)])
    assert abs(bpm / 140 - 1) < 0.005


def test_a_quiet_section_at_its_own_tempo_is_still_a_change():
    env = pulses(50, [(0, 30, 150, 1.0), (30, 50, 173, 0.4)])
    bpms = confirmed(env, [(0, 30, 150), (30, 50, 173)])
    assert [round(b) for b in bpms] == [150, 173]


@pytest.mark.parametrize("middle_bpm, middle_s, merged", [
    (173.4, 17.0, True),  # 3.7% off for 17 s between two stretches of 180: a figure of it
    (150.0, 17.0, False),  # 17% off: a bridge at its own tempo
    (173.4, NEAR_FIGURE_S + 5.0, False),  # near, but too long to be a figure
])
def test_a_near_stretch_between_two_of_one_tempo_is_a_figure(middle_bpm, middle_s, merged):
    # the middle fits its own tempo best (as a sparse passage's few onsets can), so each
    # section passes confirm_changes' weighing: only being a figure merges it
    end = 40.0 + middle_s
    env = pulses(end + 40, [(0, 40, 180, 1.0), (40, end, middle_bpm, 1.0),
                            (end, end + 40, 180, 1.0)])
    bpms = confirmed(env, [(0, 40, 180), (40, end, middle_bpm), (end, end + 40, 180)])
    assert len(bpms) == (1 if merged else 3) and abs(bpms[0] / 180 - 1) < 0.005
    # ... and merge_returns finds it wherever a run of merges leaves it
    sections = [(0, int(40 * FPS), period(180)), (int(40 * FPS), int(end * FPS),
                period(middle_bpm)), (int(end * FPS), len(env), period(180))]
    grids = [fit_grid(env, a, b, p, fine=True) for a, b, p in sections]
    merge_returns(env, sections, grids)
    assert len(sections) == len(grids) == (1 if merged else 3)
    assert sections[0][0] == 0 and sections[-1][1] == len(env)


@pytest.mark.parametrize("last_bpm, last_s, merged", [
    (120.0, 3.0, True),  # a dotted outro of a 180 BPM song: x2/3 for its last 3 s
    (150.0, 3.0, False),  # a tempo of its own, however short
    (120.0, FIGURE_S + 2.0, False),  # x2/3, but long enough to be a change
])
def test_a_short_last_section_at_a_relative_of_the_tempo_is_a_figure(last_bpm, last_s, merged):
    end = 60.0 + last_s
    env = pulses(end, [(0, 60, 180, 1.0), (60, end, last_bpm, 1.0)])
    sections = [(0, int(60 * FPS), period(180)), (int(60 * FPS), len(env), period(last_bpm))]
    grids = [fit_grid(env, a, b, p, fine=True) for a, b, p in sections]
    merge_returns(env, sections, grids)
    assert len(sections) == len(grids) == (1 if merged else 2)
    assert sections[-1][1] == len(env) and abs(60 * FPS / grids[0][0] / 180 - 1) < 0.005


def kept(env: np.ndarray, rough: list[tuple[float, float, float]]) -> list[float]:
    """The BPMs keep_song_tempo leaves for sections (start s, end s, BPM fitted there)."""
    sections = [(int(a * FPS), int(b * FPS), period(bpm)) for a, b, bpm in rough]
    grids = [fit_grid(env, a, b, p, fine=True) for a, b, p in sections]
    keep_song_tempo(env, sections, grids, period_of(env))
    assert len(sections) == len(grids) and sections[-1][1] == len(env)
    return [round(60 * FPS / g[0], 1) for g in grids]


def test_a_first_stretch_s_tempo_carried_over_the_song_gives_way_to_the_song_s():
    # 20 s that read 209, then 100 s at 170, merged at 209 (a mastered metal song: merging
    # pair by pair kept the intro's tempo): the intro keeps its own, the rest is 170
    env = pulses(120, [(0, 20, 209, 1.0), (20, 120, 170, 1.0)])
    assert kept(env, [(0, 20, 209), (20, 120, 209)]) == [209.0, 170.0]
    # ... and one section at a tempo the song does not have becomes the song's
    env = pulses(120, [(0, 120, 170, 1.0)])
    assert kept(env, [(0, 120, 209)]) == [170.0]


def test_a_true_change_and_an_octave_relative_are_left_as_they_are():
    env = pulses(120, [(0, 60, 120, 1.0), (60, 120, 150, 1.0)])
    assert kept(env, [(0, 60, 120), (60, 120, 150)]) == [120.0, 150.0]
    # a section at x3/2 of the song's tempo is the octave rule's to weigh, not this
    env = pulses(120, [(0, 120, 140, 1.0)])
    assert kept(env, [(0, 120, 210)]) == [210.0]


@pytest.mark.parametrize("before, after", [(120.0, 150.0), (172.0, 128.0)])
def test_the_red_line_of_a_change_is_on_the_beat_not_the_off_beat_hats(before, after):
    # loud hi-hats halfway between the beats put both sections' grids on the off-beats; the
    # half-beat rule moved the first red line back, and the change's line kept the hats
    # (199-249 ms off) until it was taken from the corrected grid too
    first = 1.0 + np.arange(int(20 * before / 60)) * 60 / before
    second = first[-1] + 60 / before + np.arange(int(20 * after / 60)) * 60 / after
    audio = clicks(np.concatenate([first, second]), 42.0, hats=1.2)
    points = estimate_timing(audio)
    assert [round(p.bpm) for p in points] == [before, after]
    for point, beats in zip(points, (first, second)):
        off = (point.time - (beats[0] * 1000 - LATENCY_MS)) % point.beat_length
        assert min(off, point.beat_length - off) <= 10
