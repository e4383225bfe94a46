"""core.stacks: 1/4 doubles and triples drawn on one spot, as often as ranked maps draw them, and
never half stacked."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from companion.mapping import Target, decoding_options, generate_beatmap
from core.beatmap.model import Beatmap, Circle, Slider, Spinner
from core.decoding import DecodingOptions
from core.map_rules import continuation_rules
from core.song_input import resolve
from core.spacing_limit import STACK_PX, STREAM_GAP_MS
from core.stacks import MIN_RUNS, STACK_RUN, observed_stack_share, stack_share_for_stars


def runs(objects) -> list[list[bool]]:
    """Per run of 1/4 notes (a head under STREAM_GAP_MS after a circle, after a longer gap),
    whether each of its steps stacks."""
    objects = [o for o in objects if not isinstance(o, Spinner)]
    out: list[list[bool]] = []
    stepping = False
    for before, obj in itertools.pairwise(objects):
        step = not isinstance(before, Slider) and obj.time - before.time < STREAM_GAP_MS
        if step:
            stacked = math.dist((before.x, before.y), (obj.x, obj.y)) < STACK_PX
            if stepping:
                out[-1].append(stacked)
            else:
                out.append([stacked])
        stepping = step
    return out


def test_the_share_counts_each_runs_first_step():
    objects, t = [], 0.0
    for i in range(MIN_RUNS):  # a double every beat: stacked, stepping, stacked, ...
        objects += [Circle(x=100, y=100, time=t), Circle(x=100 if i % 2 == 0 else 150, y=100,
                                                        time=t + 100)]
        t += 500
    objects += [Circle(x=300, y=100, time=t), Circle(x=300, y=100, time=t + 100),
                Circle(x=300, y=100, time=t + 200)]  # a stacked triple: one run, one start
    assert observed_stack_share(Beatmap(hit_objects=objects)) == pytest.approx(5 / 9)
    assert observed_stack_share(Beatmap(hit_objects=objects), until_ms=t) == 0.5
    assert observed_stack_share(Beatmap(hit_objects=objects[:6])) is None  # 3 runs: too few
    after_sliders = []
    for i in range(2 * MIN_RUNS):
        after_sliders += [Slider(x=100, y=100, time=i * 500.0, points=[(200.0, 100.0)],
                                 length=100.0, duration=50.0),
                          Circle(x=100, y=100, time=i * 500.0 + 100)]
    assert observed_stack_share(Beatmap(hit_objects=after_sliders)) is None  # no run


def test_new_maps_and_continuations_take_their_stack_share():
    assert stack_share_for_stars(4.0) == 0.5 and stack_share_for_stars(6.0) == 0.4
    objects = []
    for i in range(10):
        objects += [Circle(x=100, y=100, time=i * 500.0), Circle(x=100, y=100,
                                                                time=i * 500.0 + 100)]
    rules = continuation_rules(DecodingOptions(), Beatmap(hit_objects=objects), 10_000.0)
    assert rules.stack_share == 1.0
    rules = continuation_rules(DecodingOptions(stack_share=0.2), Beatmap(hit_objects=objects),
                               10_000.0)
    assert rules.stack_share == 0.2  # as given


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_generated_runs_stack_as_often_as_asked_and_never_by_half(starter_generator, timed_song,
                                                                   share):
    """A 5-star map of a synthetic song: its runs start stacked at about the share asked (the
    tilt can miss where the model will not take the spot), a stacked run stays on its spot for
    its triple, and one that stepped does not stack later; without the rule the starter stacks
    almost none."""
    folder, _ = timed_song
    options = dataclasses.replace(decoding_options(seed=0), stack_share=share)
    made = generate_beatmap(starter_generator, resolve(folder), Target(stars=5.0), options,
                            max_attempts=1).beatmap
    found = runs(made.hit_objects)
    assert len(found) >= 5
    starts = sum(run[0] for run in found) / len(found)
    assert starts >= share - 0.2
    for run in found:
        head = run[:STACK_RUN - 1]
        assert all(head) or not any(head), run


def test_without_the_rule_the_starter_stacks_few(starter_generator, timed_song):
    folder, _ = timed_song
    options = dataclasses.replace(decoding_options(seed=0), stack_share=0.0)
    made = generate_beatmap(starter_generator, resolve(folder), Target(stars=5.0), options,
                            max_attempts=1).beatmap
    found = runs(made.hit_objects)
    assert sum(run[0] for run in found) / len(found) < 0.2
