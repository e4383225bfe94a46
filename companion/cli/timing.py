"""`kiai timing SONG`: the song's timing estimated from its audio, as [TimingPoints] lines.

Timing a new song is a mapper's first chore, and the estimate is useful without a generated map:
the lines paste into the editor's .osu (or `--json` feeds a script). The estimate is the one
`kiai generate` uses (core.tempo, the audio file's BPM tag settling the octave where the beats
allow it); stderr says where it came from and the tempo to try should it be a multiple off.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from companion.cli.params import FiniteRange
from core.audio import AudioError, audio_features
from core.beatmap.model import TimingPoint
from core.beatmap.writer import timing_point_line
from core.song_input import SongInputError, resolve
from core.song_timing import SongTiming, estimate_song_timing, tag_settled
from core.tempo import MAX_GIVEN_BPM, MIN_GIVEN_BPM, TimingError


@click.command("timing")
@click.argument("song", metavar="AUDIO_OR_SONG_DIR", type=click.Path(path_type=Path))
@click.option("--bpm", type=FiniteRange(MIN_GIVEN_BPM, MAX_GIVEN_BPM), default=None,
              help="The song's tempo, where you know it: only the offset is estimated.")
@click.option("--meter", type=click.IntRange(1, 16), default=None,
              help="Beats per bar (default: 4, or 3 where the accents say so).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: the red lines (timeMs, bpm, beatLength, meter), "
                   "tempoFrom (given, tag or audio), alternativeBpm and bpmTag.")
def timing_command(song: Path, bpm: float | None, meter: int | None, as_json: bool) -> None:
    """Estimate a song's timing (BPM, offset, tempo changes) from its audio."""
    try:
        audio = resolve(song).audio
        timing = estimate_song_timing(audio, audio_features(audio), bpm=bpm, meter=meter)
    except (SongInputError, AudioError, TimingError) as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps({
            "audio": str(audio),
            "timingPoints": [{"timeMs": p.time, "bpm": round(p.bpm, 6),
                              "beatLength": p.beat_length, "meter": p.meter}
                             for p in timing.points],
            "tempoFrom": timing.tempo_from,
            "alternativeBpm": timing.alternative_bpm, "bpmTag": timing.bpm_tag}, indent=2))
        return
    click.echo("[TimingPoints]")
    for point in timing.points:
        click.echo(timing_point_line(point))
    click.echo(_summary(timing), err=True)


def estimate_note(points: list[TimingPoint], tag: float | None,
                  other: float | None) -> tuple[str, str]:
    """(where an estimate came from, what to do should it be wrong), for a message: the audio,
    and its BPM tag where the timing is at it; the runner-up tempo to give as --bpm; and the
    tag where the beats did not bear it out (no simple multiple of the estimate, or no grid
    at it that fits)."""
    source = "the audio"
    if tag_settled(points, tag):
        source = f"the audio and its BPM tag ({tag:g})"
    fix = (f"if the beat is at {other:g} BPM, give --bpm {other:g}" if other is not None
           else "--bpm gives the tempo where it is wrong")
    if tag is not None and source == "the audio":
        fix += f"; the file's BPM tag says {tag:g}, which the beats did not bear out"
    return source, fix


def tempo_list(points: list[TimingPoint]) -> str:
    """The red lines' BPMs for a message: the first four, then how many more."""
    more = f" +{len(points) - 4} more" if len(points) > 4 else ""
    return ", ".join(f"{p.bpm:.2f}" for p in points[:4]) + more


def _summary(timing: SongTiming) -> str:
    points = timing.points
    where = f"{tempo_list(points)} BPM from {points[0].time:.0f} ms, {points[0].meter}/4"
    if timing.tempo_from == "given":
        return f"{where}: the offset estimated at the given tempo"
    source, fix = estimate_note(points, timing.bpm_tag, timing.alternative_bpm)
    return f"{where}: estimated from {source}; {fix}"
