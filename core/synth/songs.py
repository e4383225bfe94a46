"""Song folders as a user's osu! Songs folder holds them: `<id> <Artist> - <Title>/` with the
audio and one .osu per difficulty, all from one seed.

Each song draws from its own random streams, `SeedSequence([seed, index])` split into the score,
the audio and one stream per difficulty: song 3 of seed 7 is the same file whatever `--count` or
`--difficulties` say, and nothing depends on the clock.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.beatmap.model import Beatmap
from core.beatmap.writer import save
from core.synth.config import DIFFICULTIES, MAX_COUNT, SynthConfig, SynthError
from core.synth.encode import encode, ogg_supported
from core.synth.mapper import LEVELS, Planned, make_beatmap, plan_levels
from core.synth.render import render
from core.synth.score import Score, compose

CREATOR = "kiai-synth"
_FIRST = ("Neon", "Paper", "Velvet", "Hollow", "Crystal", "Midnight", "Solar", "Quiet", "Echo",
          "Copper", "Lunar", "Static", "Amber", "Violet", "Silver", "Wild")
_SECOND = ("Harbor", "Engine", "Garden", "Signal", "Comet", "Skyline", "River", "Lantern",
           "Circuit", "Parade", "Mirage", "Orbit", "Meadow", "Cascade", "Pulse", "Horizon")
_ARTISTS = ("Kettle", "Fjord", "Marlow", "Tessellate", "Nightjar", "Okapi", "Bramble", "Cobalt")
# [Events] as the osu! editor writes a map without a background (comments: osu! skips them).
_EVENTS = ["//Background and Video events", "//Break Periods",
           "//Storyboard Layer 0 (Background)", "//Storyboard Layer 1 (Fail)",
           "//Storyboard Layer 2 (Pass)", "//Storyboard Layer 3 (Foreground)",
           "//Storyboard Layer 4 (Overlay)", "//Storyboard Sound Samples"]


@dataclass(frozen=True)
class Song:
    """One synthetic song: its score, names and the streams its files are drawn from (streams are
    consumed as they are drawn: call `make_song` again to draw the same files again)."""

    song_id: int
    artist: str
    title: str
    score: Score
    streams: dict[str, np.random.Generator]  # "audio" and one per difficulty

    @property
    def folder_name(self) -> str:
        return f"{self.song_id} {self.artist} - {self.title}"

    def osu_name(self, version: str) -> str:
        return f"{self.artist} - {self.title} ({CREATOR}) [{version}].osu"


def make_song(config: SynthConfig, index: int) -> Song:
    """Song `index` of `config.seed`: names and score (cheap; audio and maps come later)."""
    sequence = np.random.SeedSequence([config.seed, index])
    # the stops' stream last: spawned children do not depend on how many follow them
    names, score_seed, audio_seed, *level_seeds, stops_seed = sequence.spawn(
        4 + len(DIFFICULTIES))
    rng = np.random.default_rng(names)
    artist = f"{rng.choice(_FIRST)} {rng.choice(_ARTISTS)}"
    title = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)}"
    score = compose(np.random.default_rng(score_seed), config.duration_s,
                    np.random.default_rng(stops_seed))
    streams = {"audio": np.random.default_rng(audio_seed)}
    streams |= {name: np.random.default_rng(seed)
                for name, seed in zip(DIFFICULTIES, level_seeds, strict=True)}
    return Song(config.seed * MAX_COUNT + index, artist, title, score, streams)


def audio_format(config: SynthConfig) -> str:
    """OGG when this libsndfile writes Vorbis (1.0.18 and later), else WAV."""
    return config.audio_format if config.audio_format != "ogg" or ogg_supported() else "wav"


def beatmaps(song: Song, versions: tuple[str, ...], audio_name: str) -> dict[str, Beatmap]:
    """The difficulties `versions` of `song`, with the sections osu! stable writes."""
    plans = plan_levels(song.score)  # every level: each builds on the easier one's hits
    return {v: _beatmap(song, v, plans[v], audio_name) for v in versions}


def _beatmap(song: Song, version: str, planned: list[Planned], audio_name: str) -> Beatmap:
    result = make_beatmap(song.score, LEVELS[version], planned, song.streams[version])
    chorus = next((s for s in song.score.sections if s.name == "chorus"), song.score.sections[0])
    result.general = {
        "AudioFilename": audio_name, "AudioLeadIn": "0",
        "PreviewTime": str(int(song.score.ms(chorus.start_tick))), "Countdown": "0",
        "SampleSet": "Soft", "StackLeniency": "0.7", "Mode": "0", "LetterboxInBreaks": "0",
        "WidescreenStoryboard": "0"}
    result.editor = {"DistanceSpacing": "1", "BeatDivisor": str(song.score.ticks_per_beat),
                     "GridSize": "4", "TimelineZoom": "1"}
    result.metadata = {
        "Title": song.title, "TitleUnicode": song.title, "Artist": song.artist,
        "ArtistUnicode": song.artist, "Creator": CREATOR, "Version": version,
        "Source": "kiai synthetic songs", "Tags": "kiai synthetic generated",
        "BeatmapID": "0", "BeatmapSetID": "-1"}
    result.events = list(_EVENTS)
    return result


def write_song(config: SynthConfig, index: int) -> Path:
    """Write song `index` into `config.out`; refuses if its folder exists. Returns the folder.

    The files are written into a hidden temporary folder beside it, then renamed into place in
    one step, so a watcher never sees a half-written song.
    """
    song = make_song(config, index)
    final = Path(config.out) / song.folder_name
    if final.exists():
        raise SynthError(f"{final}: already exists; refusing to overwrite")
    fmt = audio_format(config)
    audio_name = f"audio.{fmt}"
    samples = render(song.score, song.streams["audio"], config.sample_rate)
    data = encode(samples, config.sample_rate, fmt, serial=song.song_id)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{song.song_id}.", dir=config.out))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would follow the folder into Songs
        (staging / audio_name).write_bytes(data)
        for version, beatmap in beatmaps(song, config.difficulties, audio_name).items():
            save(beatmap, staging / song.osu_name(version))
        if final.exists():  # rename() would replace an empty folder that appeared meanwhile
            raise SynthError(f"{final}: already exists; refusing to overwrite")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def planned_folders(config: SynthConfig) -> list[Path]:
    """The folders `config` would write, in order."""
    return [Path(config.out) / make_song(config, i).folder_name for i in range(config.count)]
