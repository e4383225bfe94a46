"""core.beat_feel: the snap a new map gets, halves or thirds of the beat, from its audio and the
objects its template already has."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from corpus_files import hand_timed_track

from core.audio import load_audio, log_mel
from core.beat_feel import joint_divisor, new_map_divisor, objects_divisor, snap_divisor
from core.beatmap.model import Beatmap, Circle, TimingPoint
from core.beatmap.parser import parse_file
from core.beatmap.ticks import TickGrid, divisors_for
from core.tempo import timing_from_mel


@pytest.fixture(scope="module")
def song(synth_song_folder):
    """seed -> (log-mel, true uninherited points, the Insane map's object times) of a 30 s
    synthetic song."""
    @functools.cache
    def get(seed: int):
        folder = synth_song_folder(seed)
        beatmap = parse_file(next(folder.glob("*[[]Insane[]].osu"))).beatmap
        return (log_mel(load_audio(folder / "audio.ogg")),
                [p for p in beatmap.timing_points if p.uninherited],
                [o.time for o in beatmap.hit_objects])

    return get


def reachable(times: list[int], points: list[TimingPoint], divisor: int) -> float:
    """The share of `times` within 10 ms of a tick `points` offer at beat snap 1/`divisor`."""
    grid = TickGrid(points, divisors_for(divisor))
    return float(np.mean([grid.snap(t, 10.0) is not None for t in times]))


# seeds 3 and 9 are straight 4/4 (154 and 130 BPM); 0 and 19 shuffles (166 and 169 BPM, three
# ticks a beat, the swung eighth on the third: 1/6 ticks would come every 60 ms, so 1/3)
@pytest.mark.parametrize("seed,expected", [(3, 4), (9, 4), (0, 3), (19, 3)])
def test_a_song_at_its_true_timing(song, seed, expected):
    mel, truth, objects = song(seed)
    assert snap_divisor(mel, truth) == expected
    assert reachable(objects, truth, expected) == 1.0


def test_a_shuffle_timed_from_its_audio_gets_thirds(song):
    """At the editor's default 1/4, half of the shuffle's Insane objects (its swung eighths) are
    on no tick of the estimated timing."""
    mel, truth, objects = song(0)
    estimated = timing_from_mel(mel)
    assert abs(estimated[0].beat_length / truth[0].beat_length - 1) < 0.005
    assert snap_divisor(mel, estimated) == 3
    assert reachable(objects, estimated, 3) >= 0.95
    assert reachable(objects, estimated, 4) < 0.7


def test_a_tempo_estimated_at_two_thirds_gets_sixths(song):
    """Seed 29 is 200 BPM in 3/4, which timing estimation takes for 133: the true beats and
    eighth notes fall on the estimate's 1/3 and 1/6 ticks."""
    mel, truth, objects = song(29)
    estimated = timing_from_mel(mel)
    assert abs(estimated[0].bpm / (truth[0].bpm * 2 / 3) - 1) < 0.005
    assert snap_divisor(mel, estimated) == 6
    assert reachable(objects, estimated, 6) >= 0.9
    assert reachable(objects, estimated, 4) < 0.5


@pytest.mark.parametrize("name", ["triangles", "circles", "welcome"])
def test_real_tracks_are_straight(corpus, name):
    audio, truth = hand_timed_track(corpus, name)
    assert snap_divisor(log_mel(audio), truth) == 4


def test_no_red_line_is_refused():
    with pytest.raises(ValueError, match="no uninherited timing point"):
        snap_divisor(np.zeros((80, 1000), np.float32), [])


def map_with(ticks: list[float], beat: float = 400.0, offset: float = 100.0) -> Beatmap:
    """A map of circles at `ticks` (in beats) of one red line, written to the ms as stable
    writes them (truncated)."""
    beatmap = Beatmap()
    beatmap.timing_points = [TimingPoint(time=offset, beat_length=beat, uninherited=True)]
    beatmap.hit_objects = [Circle(x=256, y=192, time=int(offset + t * beat)) for t in ticks]
    return beatmap


def test_the_snap_a_maps_objects_use():
    halves = [i / 2 for i in range(40)]
    assert objects_divisor(map_with(halves)) == 2
    assert objects_divisor(map_with([*halves, 40 + 1 / 3])) == 2  # one stray object of 41
    assert objects_divisor(map_with([*halves, *(41 + i + 1 / 3 for i in range(4))])) == 6
    assert objects_divisor(map_with([i / 4 for i in range(1, 40, 2)])) == 4
    assert objects_divisor(map_with([i / 16 for i in range(1, 40, 2)])) == 16
    assert objects_divisor(map_with([i + 0.1 for i in range(40)])) is None  # unsnapped
    assert objects_divisor(map_with(halves[:15])) is None  # too few to say


def test_joined_snaps_offer_every_tick():
    assert joint_divisor(4, 3) == 12
    assert joint_divisor(4, 2) == 4
    assert joint_divisor(3, None) == 3
    assert joint_divisor(3, 16) == 3  # no editor snap has both: the first (the audio's)
    assert joint_divisor(6, 8) == 6
    with pytest.raises(ValueError):
        joint_divisor(None)


def test_a_timing_only_template_snaps_as_its_audio(corpus):
    """triangles.osz is timing alone, left at 1/3: its song's notes are halves."""
    audio, truth = hand_timed_track(corpus, "triangles")
    mel = log_mel(audio)
    assert new_map_divisor(truth, mel) == 4
    sibling = map_with([i + 1 / 3 for i in range(20)], truth[0].beat_length, truth[0].time)
    sibling.timing_points = truth
    assert new_map_divisor(truth, mel, sibling) == 12  # the audio's, and the sibling's thirds
    # a hand-timed song at 240 BPM keeps 1/4 (the tempo rule is for a doubled estimate)
    fast = [TimingPoint(truth[0].time, 250.0, meter=4)]
    assert snap_divisor(mel, fast, estimated=False) == 4
    assert snap_divisor(mel, fast) == 2
