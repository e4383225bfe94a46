"""An audio file's own tags: its title, artist and tempo (ID3 in mp3 and wav, Vorbis comments).

Why mutagen (a small pure-Python library, maintained since 2005, no dependencies): libsndfile
reads a few tags of a few formats and no tempo at all. triangles' mp3 (the corpus) carries an
ID3 TBPM frame saying 160, its true tempo, which soundfile does not see. A BPM tag is set by
the producer's tools or the store that sold the file; it is the one cue beyond the audio that
settles an octave a beat tracker cannot (core.tempo.follow_hint). WAV INFO chunks, which
mutagen does not read, still come from libsndfile. The tempo is ID3's TBPM frame (or a TXXX
frame named BPM) or a `BPM` or `TEMPO` comment, in any case (FLAC and Opus alike, though
osu! plays mp3, ogg and wav).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import mutagen
import soundfile
from mutagen.id3 import ID3

MIN_TAG_BPM, MAX_TAG_BPM = 40.0, 400.0  # a tag outside is no tempo (0, a typo, a key)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_KEYS = {"title": ("title", "tit2"), "artist": ("artist", "tpe1"),  # Vorbis names, ID3 frames
         "bpm": ("bpm", "tempo", "tbpm", "txxx:bpm")}


@dataclass(frozen=True)
class AudioTags:
    """What an audio file says about itself ("" or None where it says nothing)."""

    title: str = ""
    artist: str = ""
    bpm: float | None = None


def read_tags(path: str | os.PathLike) -> AudioTags:
    """The file's tags; an unreadable or untagged file gives empty ones (decoding it is what
    reports a broken file, not this)."""
    tags = _mutagen_tags(path)
    values = {key: _first(tags, names) for key, names in _KEYS.items()}
    if not values["title"] or not values["artist"]:
        libsndfile = _libsndfile_tags(path)
        values["title"] = values["title"] or libsndfile.get("title", "")
        values["artist"] = values["artist"] or libsndfile.get("artist", "")
    return AudioTags(title=values["title"], artist=values["artist"],
                     bpm=parse_bpm(values["bpm"]))


def parse_bpm(text: str) -> float | None:
    """A tag's tempo: "160", "127.98", "174 BPM" or "128,5"; None for no number or one outside
    MIN_TAG_BPM..MAX_TAG_BPM."""
    match = _NUMBER.search(text or "")
    if match is None:
        return None
    bpm = float(match.group().replace(",", "."))
    return bpm if MIN_TAG_BPM <= bpm <= MAX_TAG_BPM else None


def _mutagen_tags(path: str | os.PathLike) -> dict[str, list]:
    """The tags by lower-case name: ID3 frames (tit2, tbpm, txxx:bpm) or Vorbis comments."""
    try:
        audio = mutagen.File(path)
    except Exception:  # tags are optional, and mutagen's parsers raise more than MutagenError
        # on a damaged file (IndexError on an Ogg comment whose length overruns its packet):
        # such a file is just untagged here; decoding it reports what is wrong
        return {}
    tags = getattr(audio, "tags", None)
    if tags is None:
        return {}
    if isinstance(tags, ID3):
        return {key.lower(): list(getattr(frame, "text", [])) for key, frame in tags.items()}
    try:
        return {str(key).lower(): list(value) for key, value in tags.items()}
    except (TypeError, ValueError):  # a tag type that is no mapping of lists
        return {}


def _first(tags: dict[str, list], names: tuple[str, ...]) -> str:
    for name in names:
        for value in tags.get(name, []):
            text = " ".join(str(value).split())
            if text:
                return text
    return ""


def _libsndfile_tags(path: str | os.PathLike) -> dict[str, str]:
    try:
        with soundfile.SoundFile(str(path)) as f:
            tags = f.copy_metadata()
    except (RuntimeError, OSError, ValueError):
        return {}
    return {k: " ".join(str(v).split()) for k, v in tags.items() if k in ("title", "artist")}
