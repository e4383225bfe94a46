"""timing.estimate (since 1.6): a song's red lines estimated from its audio, nothing written.

Timing a new song is a mapper's first chore; an editor plugin fills the red lines from this
result (`osuLines` paste into a .osu's [TimingPoints]) before anything is generated. It is a
request answered when the estimate is done (a few seconds), not a job: it writes no map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from protocol.fields import MAX_MS, Items, Range, RelPath, Text

# core.tempo's bounds on a tempo a client gives (MIN_GIVEN_BPM, MAX_GIVEN_BPM)
GivenBpm = Annotated[float, Range(minimum=20, maximum=1000)]
MAX_RED_LINES = 10_000  # a drifting live recording gets a red line every few bars


@dataclass(frozen=True)
class TimingEstimateParams:
    """A song's timing from its audio: exactly one of song_folder and audio."""

    METHOD: ClassVar[str] = "timing.estimate"
    ONE_OF: ClassVar[tuple[str, ...]] = ("song_folder", "audio")
    song_folder: Annotated[RelPath | None, "a song folder in Songs (its maps' audio)"] = None
    audio: Annotated[RelPath | None, "an audio file in Songs"] = None
    bpm: Annotated[GivenBpm | None, "the song's tempo, where the mapper knows it: only the "
                   "offset is estimated (one red line)"] = None
    meter: Annotated[int | None, Range(minimum=1, maximum=16),
                     "beats per bar; default 4, or 3 where the accents say so"] = None


@dataclass(frozen=True)
class RedLine:
    """An uninherited timing point."""

    time_ms: Annotated[float, Range(minimum=-MAX_MS, maximum=MAX_MS),
                       "where it starts, ms from the start of the audio"]
    bpm: Annotated[float, Range(exclusive_minimum=0, maximum=100_000)]
    beat_length: Annotated[float, Range(exclusive_minimum=0, maximum=MAX_MS),
                           "ms per beat, as the .osu writes it (60000 / bpm)"]
    meter: Annotated[int, Range(minimum=1, maximum=1000), "beats per bar"]


@dataclass(frozen=True)
class TimingEstimateResult:
    audio: Annotated[RelPath, "the audio file timed, relative to Songs"]
    timing_points: Annotated[tuple[RedLine, ...], Items(max_items=MAX_RED_LINES, min_items=1),
                             "the red lines, in time order: tempo changes where the music "
                             "has them"]
    osu_lines: Annotated[tuple[Annotated[str, Text(max_length=256)], ...],
                         Items(max_items=MAX_RED_LINES, min_items=1),
                         "the same red lines as .osu [TimingPoints] lines"]
    tempo_from: Annotated[Literal["given", "tag", "audio"],
                          "what settled the tempo: the bpm given; the audio file's BPM tag "
                          "(ID3 TBPM, a Vorbis BPM comment) bearing out the beats; the audio "
                          "alone (then it may be a multiple off: see alternativeBpm)"]
    alternative_bpm: Annotated[float | None, Range(minimum=20, maximum=1000),
                               "estimated timing of one tempo: the tempo ranked next (2x, 1/2, "
                               "3/2 or 2/3 of it), the likeliest fix; send it as `bpm`"] = None
    bpm_tag: Annotated[float | None, Range(minimum=20, maximum=1000),
                       "the tempo the audio file's tags name, where they name one (absent "
                       "when bpm was given)"] = None
