"""The token language on real maps: vocabulary layout, grammar, tokenize/detokenize fidelity."""

from __future__ import annotations

import itertools
import math

import pytest
from corpus_files import archive_maps, require_corpus, resource, tree_maps

from core.beatmap.model import Circle, Mode, Slider, Spinner, TimingPoint
from core.beatmap.parser import BeatmapError, parse_bytes, parse_file, parse_text
from core.tokens.detokenizer import DetokenizeError, DetokenizeOptions, detokenize
from core.tokens.grammar import Grammar, GrammarWalker
from core.tokens.tokenizer import UnsupportedModeError, tokenize
from core.tokens.vocab import DEFAULT, SEED, Category, Vocab, VocabConfig

RAW = DetokenizeOptions(snap=False)


@pytest.fixture(scope="module")
def standard_maps():
    root = require_corpus()
    maps = []
    for path in tree_maps(root):
        beatmap = parse_file(path).beatmap
        if beatmap.mode is Mode.OSU:
            maps.append((path.name, beatmap))
    for name, data in archive_maps(root):
        try:
            beatmap = parse_bytes(data, name).beatmap
        except BeatmapError:
            continue
        if beatmap.mode is Mode.OSU:
            maps.append((name, beatmap))
    assert len(maps) >= 110
    return maps


def test_seed_vocabulary_has_the_seeds_sizes():
    vocab = Vocab(SEED)
    sizes = {c: s.size for c, s in vocab.spans.items()}
    assert sizes[Category.TIME_SHIFT] == 64
    assert sizes[Category.COORD_X] == sizes[Category.COORD_Y] == 32
    assert sizes[Category.SPINNER_DURATION] == 16
    assert sizes[Category.END_SLIDER] == 5  # END_SLIDER_0R..4R
    assert [vocab.name(i) for i in range(3)] == ["PAD", "SOS", "EOS"]
    assert len(vocab) == 160


@pytest.mark.parametrize("config", [SEED, DEFAULT])
def test_categories_are_contiguous_and_names_unique(config):
    vocab = Vocab(config)
    spans = sorted(vocab.spans.values(), key=lambda s: s.start)
    assert spans[0].start == 0
    assert all(a.stop == b.start for a, b in itertools.pairwise(spans))
    assert len(set(vocab.names)) == len(vocab)
    for token in range(len(vocab)):
        assert vocab.token(vocab.name(token)) == token
    assert VocabConfig.from_dict(config.to_dict()) == config


def test_default_grid_is_4px_and_centred_on_multiples_of_4():
    vocab = Vocab(DEFAULT)
    assert vocab.x_step == vocab.y_step == 4
    for value in (-80, 0, 100, 256, 512, 592):
        assert vocab.x_value(vocab.x_index(value)) == value
    for value in (-176, 0, 192, 384, 440):
        assert vocab.y_value(vocab.y_index(value)) == value


@pytest.mark.parametrize("config", [SEED, DEFAULT], ids=["seed", "default"])
def test_every_standard_map_tokenizes_to_a_valid_sequence(standard_maps, config):
    vocab = Vocab(config)
    grammar = Grammar(config)
    for name, beatmap in standard_maps:
        ids = tokenize(beatmap, vocab)
        walker = GrammarWalker(grammar)
        for token in ids:
            walker.step(vocab.category(token), vocab.name(token))
        assert walker.at_object_boundary, name
        decoded = detokenize(ids, beatmap, vocab, RAW)
        assert len(decoded.hit_objects) == len(beatmap.hit_objects), name
        for a, b in zip(beatmap.hit_objects, decoded.hit_objects):
            assert type(a) is type(b) and a.new_combo == b.new_combo, name


def test_default_keeps_times_within_5ms_and_positions_within_3px(standard_maps):
    vocab = Vocab(DEFAULT)
    worst_time = worst_position = 0.0
    for _, beatmap in standard_maps:
        decoded = detokenize(tokenize(beatmap, vocab, snap=False), beatmap, vocab, RAW)
        for a, b in zip(beatmap.hit_objects, decoded.hit_objects):
            worst_time = max(worst_time, abs(a.time - b.time))
            if not isinstance(a, Spinner):
                worst_position = max(worst_position, math.dist((a.x, a.y), (b.x, b.y)))
    assert worst_time <= 5.0
    assert worst_position <= 3.0


def test_seed_time_drifts_and_default_does_not(standard_maps):
    """The reason the default preset exists: the seed's relative log bins accumulate error."""
    name, beatmap = max(standard_maps, key=lambda m: len(m[1].hit_objects))
    drift = {}
    for config in (SEED, DEFAULT):
        vocab = Vocab(config)
        decoded = detokenize(tokenize(beatmap, vocab, snap=False), beatmap, vocab, RAW)
        drift[config.name] = abs(decoded.hit_objects[-1].time - beatmap.hit_objects[-1].time)
    assert drift["seed"] > 1000 and drift["default"] <= 5, (name, drift)


def test_snapping_restores_on_beat_maps_exactly():
    root = require_corpus()
    beatmap = parse_file(resource(root, "Soleily - Renatus (Gamu) [Insane].osu")).beatmap
    vocab = Vocab(DEFAULT)
    decoded = detokenize(tokenize(beatmap, vocab), beatmap, vocab)
    exact = sum(a.time == b.time for a, b in zip(beatmap.hit_objects, decoded.hit_objects))
    assert exact / len(beatmap.hit_objects) > 0.99
    ends = [(a, b) for a, b in zip(beatmap.hit_objects, decoded.hit_objects)
            if isinstance(a, Slider)]
    assert max(abs(a.end_time - b.end_time) for a, b in ends) <= 2.0


def test_red_anchors_and_segments_survive():
    root = require_corpus()
    beatmap = parse_file(resource(root, "multi-segment-slider.osu", under="osu.Game.Tests")).beatmap
    vocab = Vocab(DEFAULT)
    decoded = detokenize(tokenize(beatmap, vocab), beatmap, vocab)
    for a, b in zip(beatmap.hit_objects, decoded.hit_objects):
        if isinstance(a, Slider):
            assert b.segment_types.keys() == a.segment_types.keys()
            red_a = [i for i in range(1, len(a.points)) if a.points[i] == a.points[i - 1]]
            red_b = [i for i in range(1, len(b.points)) if b.points[i] == b.points[i - 1]]
            assert red_a == red_b


def test_close_anchors_stay_distinct():
    text = ("osu file format v14\n[Difficulty]\nSliderMultiplier:1.4\n[TimingPoints]\n"
            "0,500,4,2,0,100,1,0\n[HitObjects]\n100,100,1000,2,0,B|229:143|230:143|231:143|300:200,1,200\n")
    beatmap = parse_text(text).beatmap
    vocab = Vocab(DEFAULT)
    slider = detokenize(tokenize(beatmap, vocab), beatmap, vocab).hit_objects[0]
    assert len(set(slider.points)) == 4


def test_mania_map_is_an_unsupported_mode():
    beatmap = parse_file(resource(require_corpus(), "sample-beatmap-mania.osu")).beatmap
    with pytest.raises(UnsupportedModeError, match="unsupported mode: mania"):
        tokenize(beatmap, Vocab(DEFAULT))


def test_invalid_sequences_are_rejected_at_the_first_bad_token():
    vocab = Vocab(DEFAULT)
    template = parse_text("osu file format v14\n[TimingPoints]\n0,500,4,2,0,100,1,0\n").beatmap
    t = vocab.token
    good = [t("SOS"), t("TIME_SHIFT_9"), t("PLACE_CIRCLE"), t("COORD_X_60"), t("COORD_Y_60")]
    assert len(detokenize(good + [t("EOS")], template, vocab).hit_objects) == 1
    with pytest.raises(DetokenizeError) as info:
        detokenize(good[:3] + [t("COORD_Y_60")], template, vocab)
    assert info.value.position == 3 and "COORD_Y_60" in str(info.value)
    with pytest.raises(DetokenizeError, match="ends inside an object"):
        detokenize(good[:4], template, vocab)
    with pytest.raises(DetokenizeError, match="outside the vocabulary"):
        detokenize(good + [len(vocab)], template, vocab)
    for first in (-1, len(vocab)):  # the first token too: it had been a ValueError
        with pytest.raises(DetokenizeError, match="outside the vocabulary") as info:
            detokenize([first, *good[1:]], template, vocab)
        assert info.value.position == 0
    with pytest.raises(DetokenizeError, match="empty"):
        detokenize([], template, vocab)
    slider_without_end = [t("SOS"), t("START_SLIDER_B"), t("COORD_X_1"), t("COORD_Y_1"),
                          t("ADD_SLIDER_ANCHOR"), t("COORD_X_2"), t("COORD_Y_2"),
                          t("END_SLIDER_0R")]
    with pytest.raises(DetokenizeError) as info:
        detokenize(slider_without_end, template, vocab)
    assert info.value.position == 7  # the default language needs the slider's end time first


def test_slider_length_follows_its_end_time_and_the_templates_velocity():
    text = ("osu file format v14\n[Difficulty]\nSliderMultiplier:1.6\n[TimingPoints]\n"
            "0,500,4,2,0,100,1,0\n1000,-50,4,2,0,100,0,0\n[HitObjects]\n")
    template = parse_text(text).beatmap
    vocab = Vocab(DEFAULT)
    t = vocab.token
    ids = [t("SOS"), t("TIME_SHIFT_149"), t("START_SLIDER_L"), t("COORD_X_60"), t("COORD_Y_60"),
           t("ADD_SLIDER_ANCHOR"), t("COORD_X_150"), t("COORD_Y_60"), t("TIME_SHIFT_49"),
           t("END_SLIDER_1R"), t("EOS")]
    slider = detokenize(ids, template, vocab).hit_objects[0]
    assert slider.time == 1500 and slider.slides == 2
    # 500 ms for two spans at SV 2: 100 * 1.6 * 2 / 500 px/ms * 250 ms = 160 px
    assert slider.length == pytest.approx(160, abs=0.01)
    assert slider.end_time == pytest.approx(2000, abs=0.5)


def test_snapping_uses_the_templates_ticks():
    template = parse_text("osu file format v14\n[TimingPoints]\n3,300,4,2,0,100,1,0\n").beatmap
    vocab = Vocab(DEFAULT)
    t = vocab.token
    ids = [t("SOS"), t("TIME_SHIFT_29"), t("PLACE_CIRCLE"), t("COORD_X_60"), t("COORD_Y_60")]
    assert detokenize(ids, template, vocab).hit_objects[0].time == 303  # 300 -> the 1/1 tick
    assert detokenize(ids, template, vocab, RAW).hit_objects[0].time == 300
    no_timing = parse_text("osu file format v14\n[Metadata]\nTitle:x\n").beatmap
    assert detokenize(ids, no_timing, vocab).hit_objects[0].time == 300


def test_detokenize_keeps_the_templates_metadata_and_timing():
    path = resource(require_corpus(), "Soleily - Renatus (Gamu) [Insane].osu")
    beatmap = parse_file(path).beatmap
    vocab = Vocab(DEFAULT)
    decoded = detokenize(tokenize(beatmap, vocab), beatmap, vocab)
    assert decoded.metadata == beatmap.metadata
    assert decoded.timing_points == beatmap.timing_points
    assert decoded.difficulty == beatmap.difficulty
    assert isinstance(decoded.timing_points[0], TimingPoint)
    assert any(isinstance(o, Circle) for o in decoded.hit_objects)
