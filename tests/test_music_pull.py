"""core.music_pull: objects drawn toward the beats and the onsets heard."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch
from corpus_files import hand_timed_track

from companion.mapping import Target, decoding_options, generate_beatmap, load_generator
from core.audio import FRAME_MS, SAMPLE_RATE, log_mel
from core.beatmap.model import Spinner, TimingPoint
from core.beatmap.ticks import TickGrid
from core.map_rules import QUIET_EFFORT, new_map_rules
from core.music_pull import METRIC, QUIET_NATS, MusicPull, apply_pull
from core.song_input import SongInput, fresh_template

BEAT = 400.0


def test_ticks_weigh_by_their_place_in_the_beat():
    pull = MusicPull(np.zeros((80, 2000), np.float32),
                     TickGrid([TimingPoint(100.0, BEAT, meter=4)]))
    times = 100.0 + BEAT * np.array([0, 1, 0.5, 0.25, 0.75, 1 / 3, 0.125, 1 / 16, 0.1])
    assert pull.metric(np.floor(times)).tolist() == [1.0, 1.0, 0.6, 0.3, 0.3, 0.3, 0.1, 0.0,
                                                    0.0]
    # the decoder's times are 10 ms apart: each takes the tick it would snap to (6 ms)
    odd = MusicPull(np.zeros((80, 2000), np.float32),
                    TickGrid([TimingPoint(103.0, 375.0, meter=4)]), tolerance=6.0)
    grid = 10.0 * np.arange(200)
    near = np.abs((grid - 103.0) / 375.0 - np.round((grid - 103.0) / 375.0)) * 375.0 <= 6.0
    assert (odd.metric(grid)[near] == 1.0).all() and near.sum() >= 5


@pytest.mark.parametrize("name,low,high", [("triangles", -10, 10), ("circles", 25, 60),
                                           ("welcome", 15, 55)])
def test_the_onsets_are_looked_for_where_the_beats_sound(corpus, name, low, high):
    """circles' and welcome's hand-made beats sit 30-50 ms before their onsets."""
    audio, truth = hand_timed_track(corpus, name)
    pull = MusicPull(log_mel(audio[: 60 * SAMPLE_RATE]), TickGrid(truth))
    assert low <= pull.lag * FRAME_MS <= high


def test_a_beat_with_an_onset_pulls_hardest(corpus):
    audio, truth = hand_timed_track(corpus, "triangles")
    grid = TickGrid(truth)
    pull = MusicPull(log_mel(audio[: 60 * SAMPLE_RATE]), grid, weight=6.0)
    start = truth[0].time + 16 * truth[0].beat_length
    table = pull.window(start, 801, 10.0).numpy()  # 8 s: 21 beats
    beats = np.round(np.arange(0, 8000, truth[0].beat_length) / 10).astype(int)
    quarters = beats[:-1] + round(truth[0].beat_length / 4 / 10)
    assert table.max() <= 6.0 and table.min() >= -QUIET_NATS
    assert table[beats].mean() > 4.0  # on the beat, and the kick heard there
    assert table[beats].mean() > 2 * table[quarters].mean()
    # only a tick finer than the half beat where nothing is heard is pushed away, and some are
    metric = pull.metric(start + 10.0 * np.arange(801))
    fine = (metric > 0.0) & (metric < METRIC[2])
    assert (table < 0).any() and not (table < 0)[~fine].any()
    assert table[quarters].min() < 0 < table[quarters].max()  # some quarters sound, some not


def test_the_accents_are_the_loudest_beats_and_half_beats(corpus):
    """core.accents: the loudest ACCENT_SHARE of a song's beats and half beats."""
    from core.accents import ACCENT_SHARE, accent_times, next_accent

    audio, truth = hand_timed_track(corpus, "triangles")
    pull = MusicPull(log_mel(audio[: 60 * SAMPLE_RATE]), TickGrid(truth))
    end = 60_000.0
    accents = accent_times(pull, end)
    beat = truth[0].beat_length
    halves = np.arange(truth[0].time, end, beat / 2)
    heard = pull.heard(halves, clipped=False)
    assert abs(len(accents) - ACCENT_SHARE * len(halves)) <= 2
    place = (accents - truth[0].time) / (beat / 2)
    assert np.allclose(place, np.round(place))  # on the half-beat grid
    loudest = pull.heard(accents, clipped=False).min()
    assert loudest >= np.quantile(heard, 1 - ACCENT_SHARE) and loudest > 1.0
    assert (pull.heard(halves) >= 1.0).sum() > len(accents)  # the clipped ones tie: 12% here
    after = next_accent(accents, 1000.0)  # window times from beatmap 1000 ms
    first = accents[accents > 1000.0 + 15.0][0]
    assert after(0.0) == first - 1000.0 and after(first - 1000.0) > first - 1000.0


def test_the_pull_is_added_where_each_gap_lands_and_to_placing_now():
    logits = torch.zeros(12)
    table = torch.arange(10, dtype=torch.float32)  # 1 nat per 10 ms step
    shifts = slice(2, 6)  # gaps of 10, 20, 30, 40 ms
    objects = [slice(8, 10)]
    apply_pull(logits, table, 30.0, torch.tensor([10.0, 20.0, 30.0, 40.0], dtype=torch.float64),
               10.0, shifts, objects)
    assert logits.tolist() == [0, 0, 4, 5, 6, 7, 0, 0, 3, 3, 0, 0]


def test_a_real_song_is_mapped_on_its_beats(corpus, tmp_path):
    """circles at 5 stars, its first 30 s: more beats with a head and fewer heads on 1/4
    off-ticks than without the pull (benchmarks/music_pull.py measures the same)."""
    audio, truth = hand_timed_track(corpus, "circles")
    path = tmp_path / "circles.wav"
    sf.write(path, audio[: 30 * SAMPLE_RATE], SAMPLE_RATE)
    template = fresh_template(path)
    template.timing_points = truth
    generator = load_generator(None)

    def rhythm(weight: float) -> tuple[float, float]:
        options = dataclasses.replace(decoding_options(seed=0), music_pull=weight)
        made = generate_beatmap(generator, SongInput(tmp_path, path, template),
                                Target(stars=5.0), options, max_attempts=1).beatmap
        beats = [(o.time - truth[0].time) / truth[0].beat_length for o in made.hit_objects
                 if not isinstance(o, Spinner)]
        places = np.round(np.array(beats) * 4) % 4
        whole = np.unique(np.round(np.array(beats))[places == 0])
        return len(whole) / (max(beats) - min(beats)), float(np.isin(places, (1, 3)).mean())

    (beats_off, quarters_off), (beats_on, quarters_on) = rhythm(0.0), rhythm(6.0)
    assert beats_on > beats_off + 0.03  # 51% -> 56%
    assert quarters_on < quarters_off - 0.08  # 34% -> 23%


def test_a_retry_short_of_its_stars_lowers_the_quiet_ticks_penalty():
    """A song of plain eighths asked for 6.5 stars came out at 4.8-5.3 on every retry with the
    full penalty (QA): a retry's effort lowers it, to none at QUIET_EFFORT."""
    base = decoding_options(seed=0)
    quiet = [new_map_rules(base, 4.0, 6.5, effort).quiet_nats
             for effort in (-0.5, 0.0, QUIET_EFFORT / 2, QUIET_EFFORT, 1.5)]
    assert quiet == pytest.approx([QUIET_NATS, QUIET_NATS, QUIET_NATS / 2, 0.0, 0.0])


def test_without_the_penalty_a_quiet_quarter_keeps_its_bonus(corpus):
    audio, truth = hand_timed_track(corpus, "triangles")
    mel = log_mel(audio[: 20 * SAMPLE_RATE])
    start = truth[0].time + 16 * truth[0].beat_length
    full = MusicPull(mel, TickGrid(truth), weight=6.0).window(start, 401, 10.0)
    free = MusicPull(mel, TickGrid(truth), weight=6.0, quiet=0.0).window(start, 401, 10.0)
    assert float(full.min()) < 0 <= float(free.min())
    assert torch.equal(full[full >= 0], free[full >= 0])  # only the quiet ticks differ
