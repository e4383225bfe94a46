"""core.beat_grid: the tick class of each encoder position, and the model reading it."""

from __future__ import annotations

import numpy as np
import torch

from core.beat_grid import BEAT, DIVISOR_CLASSES, DOWNBEAT, OFF, UNKNOWN, grid_classes
from core.beatmap.model import TimingPoint
from core.beatmap.parser import parse_file
from core.model import MapModel, ModelDims

POINTS = [TimingPoint(time=1000.0, beat_length=500.0, meter=4),  # 120 BPM 4/4 ...
          TimingPoint(time=1500.0, beat_length=-50.0, uninherited=False),  # (ignored: green)
          TimingPoint(time=9000.0, beat_length=400.0, meter=3)]  # ... then 150 BPM 3/4


def at(ms: float, points=POINTS) -> int:
    return int(grid_classes(points, ms, 1)[0])


def test_classes_follow_the_ticks_coarsest_first():
    assert at(1000) == DOWNBEAT and at(3000) == DOWNBEAT  # beats 0 and 4
    assert at(1500) == BEAT and at(2500) == BEAT
    assert at(1250) == DIVISOR_CLASSES[2]
    assert at(1130) == DIVISOR_CLASSES[4]  # the 1/4 tick at 1125, 5 ms away
    assert at(1170) == DIVISOR_CLASSES[3]  # 1166.7
    assert at(1080) == DIVISOR_CLASSES[6]  # 1083.3
    assert at(1060) == DIVISOR_CLASSES[8]  # 1062.5
    assert at(1040) == OFF  # 22 ms from the nearest 1/8 tick, 43 from a 1/6 one
    assert at(0) == BEAT  # before the first point its grid extends back: beat -2


def test_a_new_timing_point_restarts_the_bar():
    assert at(9000) == DOWNBEAT and at(9400) == BEAT and at(9800) == BEAT
    assert at(10200) == DOWNBEAT  # three beats a bar
    assert at(8750) == DIVISOR_CLASSES[2]  # still the 120 BPM grid just before it


def test_positions_are_10_ms_apart_and_without_timing_unknown():
    classes = grid_classes(POINTS, 1000.0, 200)
    assert classes.shape == (200,) and classes.dtype == np.int64
    assert classes[0] == DOWNBEAT and classes[50] == BEAT and classes[25] == DIVISOR_CLASSES[2]
    assert (grid_classes([], 0.0, 50) == UNKNOWN).all()
    assert (grid_classes(POINTS[1:2], 0.0, 50) == UNKNOWN).all()  # inherited points only


def test_a_ranked_maps_objects_sit_on_its_grid(corpus):
    path = corpus / "ppy-osu/tree/osu.Game.Rulesets.Osu.Tests/Resources/Testing/Beatmaps/801165.osu"
    beatmap = parse_file(path).beatmap
    classes = grid_classes(beatmap.timing_points, 0.0, int(beatmap.hit_objects[-1].time) // 10 + 1)
    on = [classes[round(o.time / 10)] for o in beatmap.hit_objects]
    assert np.mean([c != OFF for c in on]) > 0.95
    assert np.mean([c in (DOWNBEAT, BEAT, DIVISOR_CLASSES[2]) for c in on]) > 0.5
    assert np.mean(classes == OFF) > 0.4  # most 10 ms positions are on no tick


@torch.no_grad()
def test_the_encoder_reads_the_grid_and_none_means_unknown():
    torch.manual_seed(0)
    dims = ModelDims(n_vocab=50, d_model=32, n_heads=2, n_layers=1, d_ff=64, max_tokens=64,
                     max_frames=256, beat_grid=True)
    model = MapModel(dims).eval()
    mel = torch.randn(1, 80, 200)
    grid = torch.from_numpy(grid_classes(POINTS, 1000.0, 100))[None]
    with_grid, without = model.encoder(mel, grid), model.encoder(mel)
    assert not torch.allclose(with_grid, without)
    assert torch.equal(without, model.encoder(mel, torch.zeros_like(grid)))
    old = MapModel(ModelDims(n_vocab=50, d_model=32, n_heads=2, n_layers=1, d_ff=64,
                             max_tokens=64, max_frames=256))
    assert old.encoder.grid is None  # checkpoints from before it load as they were
