"""What the generation tests share: a generator, a song, and what a valid map is.

The model is the shipped starter model when the checkout has it, else a tiny randomly initialised
one: random weights push the constraints hardest, since nothing but the filters keeps their
output valid.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import rosu_pp_py
import torch
from torch import Tensor

from core.audio import audio_features
from core.beatmap.curves import slider_path
from core.beatmap.model import PLAYFIELD_HEIGHT, PLAYFIELD_WIDTH, Beatmap, Slider, Spinner
from core.beatmap.parser import parse_file
from core.beatmap.slider_trim import EDGE_PX, SLACK_PX
from core.beatmap.ticks import TickGrid
from core.beatmap.writer import write_text
from core.checkpoint import load_model
from core.generate import Generator
from core.model import MapModel, ModelDims
from core.starter import default_model_path
from core.synth.config import SynthConfig
from core.synth.songs import write_song
from core.tokens.vocab import DEFAULT, Category, Vocab

COND = [8.0, 4.0, 7.0, 6.0, 4.0]
STARTS = (Category.PLACE_CIRCLE, Category.START_SLIDER, Category.PLACE_SPINNER)


def make_generator() -> Generator:
    """The starter model's generator, or a tiny random model's where none is built."""
    path = default_model_path()
    if path is not None:
        model, vocab, _ = load_model(path)
        return Generator(model, vocab)
    torch.manual_seed(0)
    vocab = Vocab(DEFAULT)
    dims = ModelDims(n_vocab=len(vocab), d_model=64, n_heads=4, n_layers=2, d_ff=128)
    return Generator(MapModel(dims).eval(), vocab)


def make_song(out: Path) -> tuple[Path, Beatmap, Tensor]:
    """A 30 s synthetic song's folder, its Hard map and its features."""
    folder = write_song(SynthConfig(out=out, seed=11, duration_s=30.0), 0)
    hard = next(folder.glob("*[[]Hard[]].osu"))
    return folder, parse_file(hard).beatmap, audio_features(folder / "audio.ogg")


def check_valid(beatmap, objects, ticks: TickGrid | None = None) -> None:
    assert objects, "the window produced no objects"
    times = [o.time for o in objects]
    assert times == sorted(times) and len(set(times)) == len(times)
    for previous, obj in itertools.pairwise(objects):
        assert obj.time > previous.end_time, "objects overlap"
    for obj in objects:
        if not isinstance(obj, Spinner):
            assert 0 <= obj.x <= PLAYFIELD_WIDTH and 0 <= obj.y <= PLAYFIELD_HEIGHT
        if isinstance(obj, Slider):
            assert obj.length > 0 and obj.duration > 0 and obj.points
            # on the playfield, or within EDGE_PX where an arc's played part grazes its edge
            assert all(-EDGE_PX <= x <= PLAYFIELD_WIDTH + EDGE_PX
                       and -EDGE_PX <= y <= PLAYFIELD_HEIGHT + EDGE_PX for x, y in obj.points)
            # its anchors end near where it does (core.beatmap.slider_trim), not far beyond: 82%
            # of generated sliders had used under half the path they drew
            drawn = slider_path(dataclasses.replace(obj, length=None), 14).distance
            assert drawn <= 2 * obj.length + SLACK_PX or obj.curve_type == "C", obj.points
        if ticks:
            snapped = ticks.snap(obj.time, 1.0)
            assert snapped is not None, f"object at {obj.time} ms is off the beat"
    written = beatmap.__class__(**{**vars(beatmap), "hit_objects": list(objects)})
    attributes = rosu_pp_py.Difficulty().calculate(rosu_pp_py.Beatmap(content=write_text(written)))
    assert attributes.n_circles + attributes.n_sliders + attributes.n_spinners == len(objects)
