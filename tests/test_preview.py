"""`kiai preview`: objects, ticks and spectrogram where they belong, off-beat objects in red."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from companion.cli import main as cli
from core.audio import FRAME_MS, audio_features
from core.beatmap.model import Circle, Hold, Spinner
from core.beatmap.parser import parse_file
from core.preview import (
    BACKGROUND,
    CIRCLE,
    DOWNBEAT,
    HALF,
    HEADER_H,
    LABEL_H,
    LANE_H,
    MARGIN,
    OFF_TICK,
    ROW_GAP,
    SLIDER,
    SPINNER,
    THIRD,
    PreviewOptions,
    render_preview,
)
from core.synth.config import SynthConfig
from core.synth.songs import write_song


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    folder = write_song(SynthConfig(out=tmp_path_factory.mktemp("songs"), seed=5,
                                    duration_s=20.0, difficulties=("Hard",)), 0)
    osu = next(folder.glob("*.osu"))
    return folder, osu, parse_file(osu).beatmap, audio_features(folder / "audio.ogg").numpy()


def lane_y(row: int, n_mels: int) -> int:
    return HEADER_H + row * (LABEL_H + n_mels + LANE_H + ROW_GAP) + LABEL_H + n_mels + LANE_H // 2


def test_rows_span_the_song_and_objects_sit_at_their_times(song):
    _, _, beatmap, mel = song
    options = PreviewOptions(row_ms=5000.0, px_per_ms=0.2)
    image = render_preview(beatmap, mel, options)
    rows = -(-mel.shape[1] * FRAME_MS // 5000)
    assert image.size == (1000 + 2 * MARGIN, HEADER_H + rows * (LABEL_H + 80 + LANE_H + ROW_GAP))
    circles = [o for o in beatmap.hit_objects if isinstance(o, Circle)]
    assert circles
    for obj in circles:
        row, offset = divmod(obj.time, 5000.0)
        x = MARGIN + round(offset * 0.2)
        assert image.getpixel((x, lane_y(int(row), 80))) == CIRCLE, obj


def test_the_spectrogram_is_bright_where_the_music_is_loud(song):
    _, _, beatmap, mel = song
    image = np.asarray(render_preview(beatmap, mel, PreviewOptions(row_ms=30_000.0)))
    top = HEADER_H + LABEL_H
    spectrogram = image[top: top + 80, MARGIN: MARGIN + mel.shape[1]].astype(float).sum(-1)
    loudness = mel.mean(0)
    loud, quiet = loudness > np.quantile(loudness, 0.8), loudness < np.quantile(loudness, 0.2)
    assert spectrogram[:, loud].mean() > 2 * spectrogram[:, quiet].mean()


def test_off_beat_objects_are_red_and_counted(song):
    _, _, beatmap, _ = song
    moved = copy.deepcopy(beatmap)
    target = next(i for i, o in enumerate(moved.hit_objects) if isinstance(o, Circle))
    moved.hit_objects[target].time += 7  # 7 ms off its tick
    options = PreviewOptions(row_ms=60_000.0)
    image = render_preview(moved, None, options)
    x = MARGIN + round(moved.hit_objects[target].time * 0.2)
    assert image.getpixel((x, lane_y(0, 40))) == OFF_TICK
    red_pixels = np.all(np.asarray(image) == OFF_TICK, axis=-1).sum()
    clean = np.all(np.asarray(render_preview(beatmap, None, options)) == OFF_TICK, axis=-1).sum()
    assert clean == 0 and red_pixels > 0


def test_bar_lines_fall_on_the_timing(song):
    _, _, beatmap, mel = song
    point = next(p for p in beatmap.timing_points if p.uninherited)
    image = render_preview(beatmap, mel, PreviewOptions(row_ms=60_000.0, px_per_ms=0.2))
    bar = point.time + point.beat_length * point.meter
    x = MARGIN + int(bar * 0.2)
    column = [image.getpixel((x + dx, HEADER_H + LABEL_H + 40)) for dx in (0, 1)]
    assert DOWNBEAT in column



def test_ticks_follow_the_maps_beat_divisor(tmp_path):
    """A shuffle's map (seed 19, BeatDivisor 3) gets 1/3 marks and no 1/2 ones; at 1/4, the
    same timing gets 1/2 marks and no 1/3 ones."""
    folder = write_song(SynthConfig(out=tmp_path, seed=19, duration_s=20.0,
                                    difficulties=("Hard",)), 0)
    beatmap = parse_file(next(folder.glob("*.osu"))).beatmap
    assert beatmap.editor["BeatDivisor"] == "3"
    point = next(p for p in beatmap.timing_points if p.uninherited)

    def marks(at_beats: float, px_per_ms: float = 0.2) -> list:
        image = render_preview(beatmap, None, PreviewOptions(row_ms=60_000.0,
                                                             px_per_ms=px_per_ms))
        x = MARGIN + (point.time + point.beat_length * (4 + at_beats)) * px_per_ms
        return [image.getpixel((int(x) + dx, HEADER_H + LABEL_H + 2)) for dx in (0, 1)]

    assert THIRD in marks(1 / 3) and THIRD in marks(2 / 3) and HALF not in marks(1 / 2)
    beatmap.editor["BeatDivisor"] = "4"
    assert HALF in marks(1 / 2) and THIRD not in marks(1 / 3)
    # at 1/16 and 0.1 px/ms its 1/16 ticks are 2 px apart and not drawn; the 1/2 ones still are
    beatmap.editor["BeatDivisor"] = "16"
    assert HALF in marks(1 / 2, 0.1)

def test_bad_ranges_are_refused(song):
    _, _, beatmap, mel = song
    with pytest.raises(ValueError, match="not after the start"):
        render_preview(beatmap, mel, PreviewOptions(start_ms=5000, end_ms=4000))
    with pytest.raises(ValueError, match="rows"):
        render_preview(beatmap, mel, PreviewOptions(row_ms=100.0))
    song_end = mel.shape[1] * FRAME_MS
    with pytest.raises(ValueError, match="the song ends at 0:"):  # not rows of silence
        render_preview(beatmap, mel, PreviewOptions(start_ms=song_end + 60_000))
    # an end past the song's is the song's end (QA, session 32: 99:00 had asked for 743 rows)
    past = render_preview(beatmap, mel, PreviewOptions(start_ms=0, end_ms=99 * 60_000))
    assert past.size == render_preview(beatmap, mel, PreviewOptions()).size


def test_a_mania_hold_is_drawn_over_its_length(song):
    _, _, beatmap, mel = song
    mania = copy.deepcopy(beatmap)
    red = next(p for p in beatmap.timing_points if p.uninherited)
    start = red.time + red.beat_length * 2  # on a beat: drawn in the hold's colour
    mania.hit_objects = [Hold(x=64, y=192, time=start, hold_end=start + 2000.0)]
    image = render_preview(mania, mel, PreviewOptions(start_ms=start - 1000, end_ms=start + 4000,
                                                      row_ms=5000.0, px_per_ms=0.2))
    y = lane_y(0, 80)
    assert image.getpixel((MARGIN + 300, y)) == SLIDER  # 0.5 s into the hold
    assert image.getpixel((MARGIN + 500, y)) == SLIDER  # 1.5 s into it
    assert image.getpixel((MARGIN + 700, y)) != SLIDER  # 0.5 s after its end


def test_the_cli_writes_a_png_and_never_overwrites(song, tmp_path):
    folder, osu, _, _ = song
    copy_dir = shutil.copytree(folder, tmp_path / "song")
    map_path = copy_dir / osu.name
    out = tmp_path / "preview.png"
    runner = CliRunner()
    result = runner.invoke(cli, ["preview", str(map_path), "-o", str(out), "--from", "0:02",
                                 "--until", "0:10", "--row-seconds", "4"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width == 800 + 2 * MARGIN
    again = runner.invoke(cli, ["preview", str(map_path), "-o", str(out)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    before = map_path.read_bytes()  # -o onto the map itself had replaced it with a PNG
    onto_map = runner.invoke(cli, ["preview", str(map_path), "-o", str(map_path), "--force"])
    assert onto_map.exit_code == 2 and "not a .png" in onto_map.output
    assert map_path.read_bytes() == before
    nowhere = runner.invoke(cli, ["preview", str(map_path), "-o", str(tmp_path / "no" / "p.png")])
    assert nowhere.exit_code == 2 and f"no folder {tmp_path / 'no'}" in nowhere.output
    (copy_dir / "audio.ogg").unlink()
    missing = runner.invoke(cli, ["preview", str(map_path), "-o", str(tmp_path / "b.png")])
    assert missing.exit_code == 1 and "audio.ogg" in missing.output
    alone = runner.invoke(cli, ["preview", str(map_path), "--no-audio", "-o",
                                str(tmp_path / "b.png")])
    assert alone.exit_code == 0 and (tmp_path / "b.png").is_file()


def test_a_body_crossing_rows_is_cut_at_their_edges(song):
    """A 1 s spinner across two 5 s rows: drawn to the first row's end and from the second's
    start, not into the margins (QA, session 32)."""
    _, _, beatmap, mel = song
    spun = copy.deepcopy(beatmap)
    red = next(p for p in beatmap.timing_points if p.uninherited)
    start = red.time + red.beat_length * 8  # on a beat: the spinner's own colour
    spun.hit_objects = [Spinner(x=256, y=192, time=start, spinner_end=start + 1000.0)]
    image = render_preview(spun, mel, PreviewOptions(start_ms=start - 4500, end_ms=start + 5500,
                                                     row_ms=5000.0, px_per_ms=0.2))
    first, second = lane_y(0, 80), lane_y(1, 80)
    assert image.getpixel((MARGIN + 950, first)) == SPINNER
    assert image.getpixel((MARGIN + 50, second)) == SPINNER
    assert image.getpixel((MARGIN + 1000 + 5, first)) == BACKGROUND
    assert image.getpixel((5, second)) == BACKGROUND


def test_an_object_in_a_rows_last_ms_is_drawn_when_the_width_rounds_down(song):
    """8 s rows at 6 ms a pixel are 1333 px (7998 ms): an object at 7999 ms is row 0's, and
    was drawn in no row once heads were drawn only where visible (review, session 32)."""
    _, _, beatmap, mel = song
    late = copy.deepcopy(beatmap)
    late.hit_objects = [Circle(x=256, y=192, time=7999.0)]
    image = render_preview(late, mel, PreviewOptions(start_ms=0, end_ms=16_000, row_ms=8000.0,
                                                     px_per_ms=1 / 6))
    y = lane_y(0, 80)
    drawn = [image.getpixel((x, y)) for x in range(MARGIN + 1320, image.width)]
    assert CIRCLE in drawn or OFF_TICK in drawn
