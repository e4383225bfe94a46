"""What `kiai generate` is pointed at: an audio file, or a song folder with or without maps.

A folder's existing osu!standard difficulty (the one with the most timing; else one of another
mode) supplies the template: metadata, timing for snapping, audio file name. A bare audio file
gets a fresh template with no timing: the generator estimates it from the audio
(companion.mapping.song_timing).
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from core.audio_tags import read_tags
from core.beatmap.breaks import break_span
from core.beatmap.model import Beatmap, Difficulty, Mode
from core.beatmap.parser import BeatmapError, parse_file
from core.difficulty import slider_multiplier_for_stars, star_rating
from core.hitsound_copy import hitsounded
from core.songs import MAX_MAP_BYTES

AUDIO_SUFFIXES = (".mp3", ".ogg", ".wav")
_SET_ID = re.compile(r"^\d{4,} (?=\S.* - \S)")  # osu!'s set ids passed 1000 in 2007
_ARTIST_TITLE = re.compile(r"^(\S.*?) - (\S.*)$")
SPEED_KEEP_STARS = 1.0  # a sibling this near the stars asked for lends its slider speed


class SongInputError(Exception):
    """The input is neither an audio file nor a song folder with audio: `file` names it, so
    the daemon can name it relative to Songs."""

    def __init__(self, file: str | os.PathLike, reason: str):
        self.file = str(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")


@dataclass
class SongInput:
    folder: Path  # where a new difficulty is written
    audio: Path
    template: Beatmap  # metadata, timing and general settings; no hit objects
    # The folder's osu!standard difficulties as timed as the template, objects and all: a new
    # difficulty takes its slider speed from the one nearest its stars (an Easy's
    # SliderMultiplier made a 6-star map's sliders crawl), and joins its snap to that one's
    siblings: tuple[Beatmap, ...] = ()
    # the siblings' star ratings, by index, once asked (a map generated asks for its template,
    # its slider speed and its snap)
    _ratings: dict[int, float] = field(default_factory=dict, repr=False, compare=False)

    def sibling_for(self, stars: float) -> Beatmap | None:
        """The sibling whose star rating is nearest `stars` (rated here, where a map is
        generated, not for every song resolved), objects and all; None where there is none."""
        nearest = self._nearest(stars)
        return None if nearest is None else self.siblings[nearest]

    def slider_multiplier_for(self, stars: float) -> float:
        """The nearest sibling's SliderMultiplier where it is rated within SPEED_KEEP_STARS of
        `stars` (the song's own feel), else the one typical at `stars`: a bare song's default
        1.4, or an Easy's 1.0, made a 6-star map's sliders crawl (ranked ones: 1.7-2.0)."""
        nearest = self._nearest(stars)
        if nearest is not None and abs(self._rating(nearest) - stars) <= SPEED_KEEP_STARS:
            return self.siblings[nearest].difficulty.slider_multiplier
        return slider_multiplier_for_stars(stars)

    def siblings_by_stars(self, stars: float) -> list[Beatmap]:
        """The siblings, nearest `stars` first (core.hitsound_copy copies sounds so)."""
        if len(self.siblings) <= 1:
            return list(self.siblings)
        return [self.siblings[i] for i in sorted(range(len(self.siblings)),
                                                 key=lambda i: abs(self._rating(i) - stars))]

    def _nearest(self, stars: float) -> int | None:
        if len(self.siblings) <= 1:
            return 0 if self.siblings else None
        return min(range(len(self.siblings)), key=lambda i: abs(self._rating(i) - stars))

    def _rating(self, index: int) -> float:
        if index not in self._ratings:
            self._ratings[index] = star_rating(self.siblings[index])
        return self._ratings[index]

    def template_for(self, stars: float) -> Beatmap:
        """The template, or one made of the sibling nearest `stars`."""
        if len(self.siblings) <= 1:  # the template is made of it
            return self.template
        return _template(self.sibling_for(stars))


def resolve(path: Path) -> SongInput:
    if path.is_file():
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            raise SongInputError(path, f"not an audio file ({', '.join(AUDIO_SUFFIXES)})")
        # its folder's name too: a song folder's audio is often just audio.mp3, untagged
        return SongInput(path.parent, path, fresh_template(path, folder=path.parent.name))
    if not path.is_dir():
        raise SongInputError(path, "no such file or folder")
    maps, named, unnamed = [], set(), []
    for osu in map_files(path):
        try:
            beatmap = parse_file(osu).beatmap
        except BeatmapError:
            continue
        if beatmap.audio_filename:
            named.add(beatmap.audio_filename.strip())
            if find_file(path, beatmap.audio_filename) is not None:
                maps.append(beatmap)
        else:
            unnamed.append(beatmap)
    if maps:
        source = _template_source(maps)
        timed = sum(p.uninherited for p in source.timing_points)
        siblings = tuple(b for b in maps
                         if b.mode is Mode.OSU and b.audio_filename == source.audio_filename
                         and sum(p.uninherited for p in b.timing_points) == timed)
        return SongInput(path, find_file(path, source.audio_filename), _template(source),
                         siblings)
    if named:  # the song is missing; the folder's other audio files are hitsound samples
        spaced = [p.name for p in path.iterdir() if p.name != p.name.strip()
                  and p.name.strip() in named]
        hint = (f"; {spaced[0]!r} has spaces around its name, which osu! trims: rename it"
                if spaced else "")
        raise SongInputError(path, f"its maps' audio file ({', '.join(sorted(named))}) is not "
                                   f"in the folder{hint}")
    audio_files = sorted(p for p in path.iterdir()
                         if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not audio_files:
        raise SongInputError(path, f"no audio file ({', '.join(AUDIO_SUFFIXES)}) in the folder")
    song = max(audio_files, key=_seconds)  # the song, not a hitsound sample beside it
    if unnamed:  # maps that lost their AudioFilename line: their metadata and timing still hold
        template = _template(_template_source(unnamed))
        template.general["AudioFilename"] = song.name
        return SongInput(path, song, template)
    template = fresh_template(song, folder=path.name)
    image = background_of(path)
    if image is not None:  # the picture a mapper put beside the song is its background
        template.events = [f'0,0,"{image}",0,0']
    return SongInput(path, song, template)


def map_files(folder: Path) -> list[Path]:
    """The .osu files in `folder` worth reading: regular files (a named pipe would block the
    read for ever) of at most MAX_MAP_BYTES."""
    out = []
    for osu in sorted(folder.glob("*.osu")):
        try:
            if osu.is_file() and osu.stat().st_size <= MAX_MAP_BYTES:
                out.append(osu)
        except OSError:  # gone, or unreadable: like a map that does not parse
            continue
    return out


def set_siblings(audio: Path, beatmap: Beatmap, stars: float) -> list[Beatmap]:
    """The other hitsounded osu!standard difficulties beside `audio` that play it, nearest
    `stars` first: the set a continued `beatmap` belongs to (its own file, of the same Version,
    left out; an unreadable, oversized or unratable one skipped), whose hitsounds a
    continuation copies (core.hitsound_copy)."""
    rated = []
    for osu in map_files(audio.parent):
        try:
            sibling = parse_file(osu).beatmap
            if (sibling.mode is not Mode.OSU or sibling.version == beatmap.version
                    or (sibling.audio_filename or "").strip().lower() != audio.name.lower()
                    or not hitsounded(sibling)):
                continue
            rated.append((abs(star_rating(sibling) - stars), sibling))
        except (OSError, BeatmapError, ValueError, ArithmeticError):
            continue  # a file the folder has but nothing can be copied from
    return [sibling for _, sibling in sorted(rated, key=lambda r: r[0])]


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def background_of(folder: Path) -> str | None:
    """The name of the background picture of a song folder that has no map yet: an image named
    bg or background if there is one, else its largest image (a cover); None without one."""
    try:
        images = [p for p in folder.iterdir()  # osu! splits an event line on commas
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(c in p.name for c in ',"')]
        named = [p for p in images if p.stem.lower() in ("bg", "background")]
        return max(named or images, key=lambda p: (p.stat().st_size, p.name)).name \
            if images else None
    except OSError:
        return None


def _template_source(maps: list[Beatmap]) -> Beatmap:
    """An osu!standard difficulty first; else a taiko, catch or mania one: its timing is the
    song's all the same, and the new difficulty is osu!standard. The most timed one."""
    return max(maps, key=lambda b: (b.mode is Mode.OSU,
                                    sum(p.uninherited for p in b.timing_points)))


def _template(source: Beatmap) -> Beatmap:
    template = copy.deepcopy(source)
    template.hit_objects = []
    template.general["Mode"] = str(int(Mode.OSU))
    # Break periods belonged to the old objects.
    template.events = [e for e in template.events if break_span(e) is None]
    return template


def check_audio_name(audio: Path) -> None:
    """SongInputError for an audio file a map cannot name: osu! trims AudioFilename's value,
    so a name that starts or ends with a space is never found (kiai's parser trims it too).
    Asked before a map is written; timing it is fine."""
    if audio.name != audio.name.strip():
        raise SongInputError(audio, "osu! trims the spaces around a map's AudioFilename, so it "
                                    f"could not load {audio.name!r}: rename the file without them")


def _seconds(audio: Path) -> float:
    """The file's duration from its header (0 where it cannot be read: decoding says why)."""
    try:
        return float(soundfile.info(str(audio)).duration)
    except (RuntimeError, OSError, ValueError):  # LibsndfileError is a RuntimeError
        return 0.0


def find_file(folder: Path, name: str) -> Path | None:
    """`name` in `folder`, ignoring case as osu! on Windows does (an exact match first)."""
    exact = folder / name
    try:
        if exact.is_file():
            return exact
        lowered = name.lower()
        for candidate in folder.iterdir():
            if candidate.name.lower() == lowered and candidate.is_file():
                return candidate
    except (OSError, RuntimeError):  # a name too long for the file system, a symlink loop
        pass
    return None


def fresh_template(audio: Path, folder: str | None = None) -> Beatmap:
    """A new map's settings for a bare audio file. Title and artist come from its tags (ID3,
    Vorbis comments, WAV INFO) where it has them, else from the name of its song `folder`
    written as osu! names song folders, `1234567 Artist - Title` (a mapper names a new song
    so), else from the file's name written `Artist - Title`, else the file's name and Unknown."""
    tags = read_tags(audio)
    artist, title = ((folder and artist_and_title(folder))
                     or artist_and_title(audio.stem, set_id=False) or ("", ""))
    title, artist = tags.title or title or audio.stem, tags.artist or artist or "Unknown"
    beatmap = Beatmap()
    beatmap.general = {"AudioFilename": audio.name, "AudioLeadIn": "0", "PreviewTime": "-1",
                       "Countdown": "0", "SampleSet": "Soft", "StackLeniency": "0.7",
                       "Mode": "0", "LetterboxInBreaks": "0", "WidescreenStoryboard": "0"}
    beatmap.metadata = {"Title": _ascii(title) or audio.stem, "TitleUnicode": title,
                        "Artist": _ascii(artist) or "Unknown", "ArtistUnicode": artist,
                        "Creator": "kiai", "Version": "kiai",
                        "Source": "", "Tags": "kiai", "BeatmapID": "0", "BeatmapSetID": "-1"}
    beatmap.editor = {"DistanceSpacing": "1", "BeatDivisor": "4", "GridSize": "4",
                      "TimelineZoom": "1"}
    beatmap.difficulty = Difficulty()
    return beatmap


def artist_and_title(name: str, set_id: bool = True) -> tuple[str, str] | None:
    """("Artist", "Title") of a name written `Artist - Title`, after a beatmap set id where
    `set_id` allows one (`1234567 Artist - Title`: osu!'s song folders; a shorter number is
    the artist's, as in `50 Cent - ...`); None for any other name."""
    name = " ".join(name.split())
    if set_id:
        name = _SET_ID.sub("", name)
    match = _ARTIST_TITLE.match(name)
    return (match.group(1), match.group(2)) if match else None


def _ascii(text: str) -> str:
    """osu!'s romanised field: the text if it is ASCII, else empty (the mapper romanises it)."""
    return text if text.isascii() else ""
