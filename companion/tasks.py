"""What the daemon's jobs do: map.continue and map.generate as work for the job queue.

A request is checked on the event loop before its job is queued (paths inside Songs, the file's
MD5, decoding options), so that those mistakes are answered at once as JSON-RPC errors; what
needs reading a whole file, the audio or the model happens in the job, on the worker thread, and
ends as job.failed. core's errors become the protocol's here (`protocol_error`):

    BeatmapError, UnsupportedModeError  BEATMAP_PARSE_ERROR  data {file, line}
    UnusableTimingError (no red line)   BEATMAP_PARSE_ERROR  data {file}
    FileNotFoundError (a file gone)     FILE_NOT_FOUND
    AudioError, SongInputError          AUDIO_ERROR          data {file}
    TimingError (no beat to time)       AUDIO_ERROR          data {file}
    CheckpointError, NoModelError       MODEL_ERROR
    OSError while writing (disk full)   WRITE_ERROR          data {path: the folder}
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from companion.audio_cache import FeatureCache
from companion.continuation import (
    UnusableTimingError,
    audio_of,
    check_continuable,
    continue_beatmap,
    continued_version,
)
from companion.jobs import JobContext, Outcome
from companion.mapping import NoModelError, Target, as_new_difficulty, generate_beatmap
from companion.safety import (
    OwnWrites,
    SongsFolder,
    check_md5,
    write_in_place,
    write_new_difficulty,
)
from core.audio import AudioError as CoreAudioError
from core.beatmap.parser import BeatmapError, parse_bytes
from core.checkpoint import CheckpointError
from core.decoding import DecodingOptions
from core.difficulty import star_rating
from core.song_input import AUDIO_SUFFIXES, SongInputError, resolve
from core.songs import MAX_MAP_BYTES
from core.tempo import TimingError
from core.tokens.tokenizer import UnsupportedModeError
from protocol import (
    AudioError,
    BeatmapParseError,
    InvalidParamsError,
    MissingFileError,
    ModelError,
    ProtocolError,
    WriteError,
)

Work = Callable[[JobContext], Outcome]
FILE_GONE = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
CORE_ERRORS = (BeatmapError, UnsupportedModeError, UnusableTimingError, CoreAudioError,
               TimingError, SongInputError, CheckpointError, NoModelError, *FILE_GONE)


@dataclass(frozen=True)
class Workspace:
    """Where jobs read and write: the Songs folder and the record of the daemon's writes; the
    audio features of recent songs."""

    songs: SongsFolder
    own: OwnWrites
    features: FeatureCache = field(default_factory=FeatureCache)


def protocol_error(error: Exception, songs: SongsFolder, file: str = ""
                   ) -> ProtocolError | None:
    """core's exception as the protocol's, with paths relative to Songs; None if not core's."""
    if isinstance(error, BeatmapError):
        return BeatmapParseError(str(error), _relative(Path(error.file), songs), error.line_no)
    if isinstance(error, (UnsupportedModeError, UnusableTimingError)):
        return BeatmapParseError(f"{file}: {error}" if file else str(error), file, None)
    if isinstance(error, (CoreAudioError, TimingError, SongInputError)):  # (file, reason)
        file = _relative(Path(error.file), songs)
        file = "Songs" if file == "." else file  # the Songs folder itself, given as a song
        return AudioError(f"{file}: {error.reason}", {"file": file})
    if isinstance(error, (CheckpointError, NoModelError)):
        return ModelError(str(error))
    if isinstance(error, FILE_GONE):  # deleted (or made a folder) while the job ran
        if not error.filename:
            return MissingFileError(file or "a file of the job")
        gone = Path(error.filename)
        if gone.name.startswith(".") and gone.name.endswith(".tmp"):  # a write's temp file:
            gone = gone.parent  # its folder went away
        if gone.is_absolute() and not gone.is_relative_to(songs.root):
            return None  # not the client's: the model's checkpoint, say (INTERNAL_ERROR)
        return MissingFileError(_relative(gone, songs))
    return None


def _relative(path: Path, songs: SongsFolder) -> str:
    if not path.is_absolute():  # already as the client named it
        return path.as_posix()
    try:
        return path.relative_to(songs.root).as_posix()
    except ValueError:
        return path.name


@contextlib.contextmanager
def as_protocol_errors(songs: SongsFolder, file: str = "") -> Iterator[None]:
    """core's errors raised inside become the protocol's (protocol_error); the rest pass."""
    try:
        yield
    except CORE_ERRORS as e:
        error = protocol_error(e, songs, file)
        if error is None:  # a file outside Songs gone: the caller's INTERNAL_ERROR
            raise
        raise error from e


def _guarded(work: Work, songs: SongsFolder, file: str = "") -> Work:
    def run(context: JobContext) -> Outcome:
        with as_protocol_errors(songs, file):
            return work(context)
    return run


@contextlib.contextmanager
def _writing(songs: SongsFolder, folder: Path) -> Iterator[None]:
    """A write's OS errors (a full disk, no permission) as an error naming the folder; a file
    gone stays FILE_NOT_FOUND (as_protocol_errors)."""
    try:
        yield
    except (*FILE_GONE, FileExistsError):
        raise
    except OSError as e:
        raise WriteError(_relative(folder, songs), e.strerror or str(e)) from e


def _decoding(context: JobContext) -> Callable[[float], None]:
    return lambda fraction: context.progress("decoding", 100.0 * fraction)


# map.continue


@dataclass(frozen=True)
class ContinueRequest:
    beatmap: Path  # the real path, inside Songs
    relative: str  # as the client named it
    from_ms: float
    until_ms: float | None
    expected_md5: str | None
    in_place: bool
    options: DecodingOptions


def check_continue(space: Workspace, beatmap: str, expected_md5: str | None, in_place: bool
                   ) -> Path:
    """The checks answered at once: the map is a .osu inside Songs, unchanged if an MD5 is given
    (required for inPlace)."""
    path = space.songs.file(beatmap)
    if path.suffix.lower() != ".osu":
        raise InvalidParamsError(f"{beatmap!r} is not a .osu file", "params.beatmap")
    if path.stat().st_size > MAX_MAP_BYTES:  # read on the event loop below: keep it small
        raise InvalidParamsError(f"{beatmap!r} is too large to be a beatmap", "params.beatmap")
    if in_place and expected_md5 is None:
        raise InvalidParamsError("inPlace writes need expectedMd5, the MD5 of the file you saw",
                                 "params.expectedMd5")
    if expected_md5 is not None:
        check_md5(path, expected_md5, beatmap)
    return path


def continue_work(space: Workspace, request: ContinueRequest) -> Work:
    def work(context: JobContext) -> Outcome:
        # its folder may have been swapped for a link out of Songs while the job was queued
        r = dataclasses.replace(request, beatmap=space.songs.contain(request.beatmap))
        if not r.beatmap.is_file():  # ... or for a named pipe, whose read would block
            raise MissingFileError(r.relative, "is not a regular file")
        if r.expected_md5 is not None:  # it may have changed while the job was queued
            data = check_md5(r.beatmap, r.expected_md5, r.relative)
        else:
            data = r.beatmap.read_bytes()
        beatmap = parse_bytes(data, r.relative).beatmap
        check_continuable(beatmap)
        audio = space.songs.contain(audio_of(beatmap, r.beatmap.parent))
        generator = context.generator()
        context.progress("decoding", 0.0)
        result = continue_beatmap(generator, beatmap, audio, r.from_ms, r.until_ms, r.options,
                                  progress=_decoding(context), should_stop=context.should_stop,
                                  features=space.features)
        context.commit()
        backup = None
        r = dataclasses.replace(r, beatmap=space.songs.contain(r.beatmap))  # ... or while it ran
        with _writing(space.songs, r.beatmap.parent):
            if r.in_place:  # check_continue required an MD5; "" would match no file
                backup = write_in_place(result, r.beatmap, r.expected_md5 or "", r.relative,
                                        space.own)
                written = r.beatmap
            else:
                written = write_new_difficulty(as_new_difficulty(result), r.beatmap.parent,
                                               continued_version(beatmap), space.own)
        return Outcome(space.songs.relative(written), len(result.hit_objects),
                       star_rating(result),
                       None if backup is None else space.songs.relative(backup))

    return _guarded(work, space.songs, request.relative)


# map.generate (and the watcher's new songs)


def check_generate(space: Workspace, song_folder: str | None, audio: str | None,
                   writes: bool = True) -> Path:
    """The song folder or audio file, checked to be inside Songs. A folder is refused when a
    link in it leads outside: core.song_input reads every .osu in it. Where the request
    `writes` a map beside the audio, an audio file must be in a song folder, not in Songs
    itself (osu! would never see the map)."""
    if song_folder is not None:
        folder = space.songs.folder(song_folder)
        space.songs.check_links(folder)
        return folder
    if audio is None:
        raise InvalidParamsError("give songFolder or audio", "params")
    path = space.songs.file(audio)
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise InvalidParamsError(f"{audio!r} is not an audio file ({', '.join(AUDIO_SUFFIXES)})",
                                 "params.audio")
    if writes and path.parent == space.songs.root:
        raise InvalidParamsError(f"{audio!r} is directly in Songs: put it in a song folder, "
                                 "where osu! finds the map written beside it", "params.audio")
    return path


def generate_work(space: Workspace, song: Path, target: Target, options: DecodingOptions,
                  bpm: float | None = None, meter: int | None = None) -> Work:
    """A new difficulty for the song folder or audio file `song` (a real path inside Songs),
    timed at `bpm` and with `meter` where they are given (companion.mapping.song_timing)."""
    def work(context: JobContext) -> Outcome:
        # the folder may have been swapped for a link out of Songs while the job was queued
        checked = space.songs.contain(song)
        if checked.is_dir():
            space.songs.check_links(checked)
        source = resolve(checked)
        source = dataclasses.replace(source, audio=space.songs.contain(source.audio))
        audio_before = _stamp(source.audio)
        generator = context.generator()
        context.progress("decoding", 0.0)
        stage = ["decoding"]

        def retry(attempt: int, _stars: float) -> None:  # the stars missed: decoding restarts
            stage[0] = f"retry {attempt}"
            context.progress(stage[0], 0.0)

        generated = generate_beatmap(
            generator, source, target, options,
            progress=lambda fraction: context.progress(stage[0], 100.0 * fraction),
            should_stop=context.should_stop, features=space.features, on_retry=retry, bpm=bpm,
            meter=meter)
        if _stamp(source.audio) != audio_before:  # a copy still going on: watcher re-arms
            raise CoreAudioError(source.audio, "changed while it was being mapped (a copy "
                                               "still going on?); not written")
        context.commit()
        beatmap = generated.beatmap
        folder = space.songs.contain(source.folder)  # ... or while it ran
        with _writing(space.songs, folder):
            written = write_new_difficulty(beatmap, folder, beatmap.version, space.own)
        return Outcome(space.songs.relative(written), len(beatmap.hit_objects), generated.stars,
                       timing=generated.timing, attempts=generated.attempts,
                       alternative_bpm=generated.alternative_bpm, bpm_tag=generated.bpm_tag,
                       tempo_from=generated.tempo_from)

    return _guarded(work, space.songs)


def _stamp(path: Path) -> tuple[int, int]:
    """(size, mtime ns) of a file: whether it changed since."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns
