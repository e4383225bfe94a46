"""Data sets from Songs folders (DESIGN §7): per difficulty the tokens, the difficulty vector,
metadata and the map itself; per audio file the log-mel features, once per content hash.

On disk (no pickle anywhere: JSON, .npy and safetensors):

    OUT/dataset.json            format, version, the vocabulary config, the features' id
    OUT/features/<sha256>-<features id>.npy
                                float16 (N_MELS, frames) log-mel, one per distinct audio content
                                (core.feature_cache: two sets sharing a song share the file)
    OUT/shards/<key>.safetensors one per song set: `tokens.<i>` int32 (the whole map, SOS..EOS),
                                `map.<i>` uint8 (the .osu file's bytes, for the loader to parse
                                and re-tokenize windows from), `difficulty` float32 (maps, 5)
    OUT/index/<key>.json        the set's completion record: source (as given, and absolute),
                                fingerprint, shard, and per
                                map the metadata, difficulty vector, counts, audio features
                                and frames (features null for a map kept without its audio,
                                core.songs.discover's audioless: its windows are silent); plus
                                the set's build-time skips

`<key>` is a digest of the set's absolute path. The record is written last, atomically: a set is
done when its record exists and its fingerprint matches the set's files, so a rerun skips done
sets and rebuilds any other (features already cached are reused by hash). Every file is written
to a `.tmp-*` name and renamed into place; an interrupt (Ctrl+C) deletes the temporary file, and
temporaries and shards without a record, left by a killed build or a failed clean-up
(core.dataset_prune), are swept when the next build starts. One build at a time per
output folder.

The difficulty vector is (AR, CS, OD, HP, stars): AR, CS, OD and HP as the map states them (AR
falls back to OD in maps that predate it, as osu! does) and the star rating of rosu-pp-py, the
community's port of lazer's difficulty calculator, for the map without mods.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rosu_pp_py
from safetensors.numpy import save_file

from core.audio import FEATURES_ID, FRAME_MS, AudioError
from core.beatmap.model import Beatmap
from core.beatmap.parser import BeatmapError, parse_bytes
from core.dataset_pool import run_each
from core.feature_cache import FeatureCache
from core.songs import UNPARSABLE, UNREADABLE, DiscoveryReport, MapEntry, SongSet
from core.tokens.tokenizer import tokenize
from core.tokens.vocab import Vocab, VocabConfig

FORMAT = "kiai-dataset"
FORMAT_VERSION = 1
DIFFICULTY_FIELDS = ("ar", "cs", "od", "hp", "stars")
MANIFEST = "dataset.json"
INDEX_DIR, SHARD_DIR, FEATURE_DIR = "index", "shards", "features"
AUDIOLESS_TAIL_MS = 2000  # an audio-less map's windows reach this far past its last object
TMP_PREFIX = ".tmp-"  # also core.feature_cache's prefix: one sweep clears both

# Build-time skip reasons (discovery's are in core.songs); each counts one .osu file.
NO_OBJECTS = "no hit objects"
BAD_AUDIO = "bad audio"
UNTOKENIZABLE = "untokenizable map"
NO_STARS = "no star rating"


class DatasetError(Exception):
    """The output folder cannot hold this data set, or a file cannot be written."""


@dataclass(frozen=True)
class BuildConfig:
    """One `kiai dataset build`: where, with which token language, on how many processes."""

    out: Path
    vocab: VocabConfig
    workers: int = 0  # processes; 0: one per core. 1 builds in this process.

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise DatasetError(f"workers must be 0 (one per core) or more, got {self.workers}")

    @property
    def processes(self) -> int:
        return self.workers or os.cpu_count() or 1


@dataclass
class SongOutcome:
    """What building one set gave: the set's key, its maps kept and its skips."""

    key: str
    maps: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, where, detail)


@dataclass
class BuildResult:
    built: int = 0  # sets built by this run
    done: int = 0  # sets already complete from an earlier run
    maps: int = 0  # difficulties in the data set from this run's sets and the done ones
    report: DiscoveryReport = field(default_factory=DiscoveryReport)  # build-time skips


def build(sets: list[SongSet], config: BuildConfig,
          on_song: Callable[[SongOutcome], None] = lambda outcome: None) -> BuildResult:
    """Build (or finish) the data set of `sets` in `config.out`; `on_song` sees each set as it
    is done, skipped ones included. Ctrl+C stops it with every finished set recorded."""
    out = prepare(config.out, config.vocab)
    result = BuildResult()
    todo, seen = [], set()
    for song_set in sets:
        if song_key(song_set) in seen:  # Songs folders given twice, or one inside another
            continue
        seen.add(song_key(song_set))
        record = read_record(out, song_set)
        if record is None:
            todo.append(song_set)
            continue
        result.done += 1
        outcome = _outcome_of(record)
        _count(result, outcome)
        on_song(outcome)
    for outcome in _run(todo, out, config):
        result.built += 1
        _count(result, outcome)
        on_song(outcome)
    return result


def prepare(out: Path, vocab: VocabConfig) -> Path:
    """Check or create OUT's manifest and folders; sweep temporaries of a killed build."""
    out = Path(out)
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "vocab": vocab.to_dict(),
                "features": FEATURES_ID, "difficulty_fields": list(DIFFICULTY_FIELDS)}
    path = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: not a folder")
    if path.exists():
        try:
            existing = read_json(path)
        except OSError as e:
            raise DatasetError(f"{path}: cannot be read ({e.strerror or e})") from e
        if existing.get("format") != FORMAT or existing.get("version") != FORMAT_VERSION:
            raise DatasetError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} manifest")
        if existing.get("vocab") != json.loads(json.dumps(manifest["vocab"])):
            raise DatasetError(f"{out} holds a data set of the "
                               f"{existing.get('vocab', {}).get('name')!r} vocabulary, not "
                               f"{vocab.name!r}; build into another folder")
        if existing.get("features") != FEATURES_ID:
            raise DatasetError(f"{out} holds features {existing.get('features')!r}, not "
                               f"{FEATURES_ID!r}; build into another folder")
    elif out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty and holds no {MANIFEST}: refusing to write there")
    try:
        for sub in (INDEX_DIR, SHARD_DIR, FEATURE_DIR):
            (out / sub).mkdir(parents=True, exist_ok=True)
            for stale in (out / sub).glob(f"{TMP_PREFIX}*"):
                stale.unlink(missing_ok=True)
        for shard in (out / SHARD_DIR).glob("*.safetensors"):  # its record gone: a build
            if not (out / INDEX_DIR / f"{shard.stem}.json").exists():  # killed, a failed drop
                shard.unlink(missing_ok=True)
        if not path.exists():
            write_json_atomic(path, manifest)
    except OSError as e:
        raise DatasetError(f"{out}: cannot be written ({e.strerror or e})") from e
    return out


def song_key(song_set: SongSet) -> str:
    """The set's name in OUT: a digest of its absolute path."""
    return hashlib.sha256(str(Path(song_set.path).resolve()).encode()).hexdigest()[:20]


def read_record(out: Path, song_set: SongSet) -> dict | None:
    """The set's completion record if the set is done and unchanged since, else None."""
    path = out / INDEX_DIR / f"{song_key(song_set)}.json"
    try:
        record = read_json(path)
    except (OSError, DatasetError):
        return None
    shard = record.get("shard")
    if record.get("fingerprint") != song_set.fingerprint or (shard and not (out / shard).exists()):
        return None
    return record


def build_song(song_set: SongSet, out: Path, vocab_config: VocabConfig) -> SongOutcome:
    """Build one set's shard and record (run in a worker). Unusable maps are skipped."""
    key = song_key(song_set)
    outcome = SongOutcome(key)
    record_path = out / INDEX_DIR / f"{key}.json"
    record_path.unlink(missing_ok=True)  # from here on the set is not done
    cache = FeatureCache(out / FEATURE_DIR)
    built: list[tuple[dict, np.ndarray, bytes]] = []
    try:
        with song_set.open() as read:
            audio = _AudioFiles(song_set, read, cache)
            for entry in song_set.maps:
                item = _build_map(song_set, entry, read, audio, _vocab(vocab_config), outcome)
                if item is not None:
                    built.append(item)
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as e:
        # The set changed or vanished since discovery: skip it whole, the next run retries.
        outcome.skipped = [(UNREADABLE, str(song_set.path), str(e))]
        return outcome
    shard = f"{SHARD_DIR}/{key}.safetensors" if built else None
    if built:
        _write_shard(out / shard, key, vocab_config, built)
    record = {"key": key, "source": str(song_set.path), "absolute": os.path.abspath(song_set.path),
              "archive": song_set.is_archive,
              "fingerprint": song_set.fingerprint, "shard": shard,
              "maps": [meta for meta, _, _ in built],
              "skipped": [list(skip) for skip in outcome.skipped]}
    write_json_atomic(record_path, record)
    outcome.maps = len(built)
    return outcome


class _AudioFiles:
    """The set's audio files' features, computed once each: member -> (meta, None) or
    (None, why it failed)."""

    def __init__(self, song_set: SongSet, read: Callable[[str], bytes], cache: FeatureCache):
        self.song_set, self.read, self.cache = song_set, read, cache
        self.known: dict[str, tuple[dict | None, str | None]] = {}

    def get(self, member: str) -> tuple[dict | None, str | None]:
        if member not in self.known:
            data = self.read(member)
            try:
                frames = self.cache.features(data, self.song_set.where(member)).shape[1]
            except AudioError as e:
                self.known[member] = (None, e.reason)
            else:
                digest = hashlib.sha256(data).hexdigest()
                features = self.cache.path_of(digest).relative_to(self.cache.directory.parent)
                self.known[member] = ({"member": member, "sha256": digest,
                                       "features": features.as_posix(), "frames": frames}, None)
        return self.known[member]


def _build_map(song_set: SongSet, entry: MapEntry, read: Callable[[str], bytes],
               audio: _AudioFiles, vocab: Vocab, outcome: SongOutcome
               ) -> tuple[dict, np.ndarray, bytes] | None:
    """(metadata, token ids, the file's bytes) of one difficulty, or None with the skip noted."""
    where = song_set.where(entry.member)
    data = read(entry.member)
    try:
        beatmap = parse_bytes(data, where).beatmap
    except BeatmapError as e:
        return _skip(outcome, UNPARSABLE, where, str(e))
    if not beatmap.hit_objects:
        return _skip(outcome, NO_OBJECTS, where)
    if entry.audio is None:  # kept without its audio (discover's audioless): silent windows
        end = max(o.end_time for o in beatmap.hit_objects) + AUDIOLESS_TAIL_MS
        features = {"member": None, "sha256": None, "features": None,
                    "frames": math.ceil(end / FRAME_MS)}
    else:
        features, why = audio.get(entry.audio)
        if features is None:
            return _skip(outcome, BAD_AUDIO, where, f"{entry.audio}: {why}")
    try:
        ids = np.asarray(tokenize(beatmap, vocab), dtype=np.int32)
    except Exception as e:
        # A map that trips a tokenizer bug is named in the report, not fatal to a build of
        # thousands; the example path makes it reproducible.
        return _skip(outcome, UNTOKENIZABLE, where, f"{type(e).__name__}: {e}")
    stars = _stars(data)
    if stars is None:
        return _skip(outcome, NO_STARS, where)
    meta = _metadata(beatmap, song_set, entry, where)
    meta |= {"difficulty": _difficulty(beatmap, stars), "objects": len(beatmap.hit_objects),
             "tokens": len(ids), "duration_ms": max(o.end_time for o in beatmap.hit_objects),
             "audio": features}
    return meta, ids, data


def _skip(outcome: SongOutcome, reason: str, where: str, detail: str = "") -> None:
    outcome.skipped.append((reason, where, detail))
    return None


def _stars(data: bytes) -> float | None:
    """rosu-pp-py's star rating (no mods), or None if it cannot rate the map."""
    try:
        stars = rosu_pp_py.Difficulty().calculate(rosu_pp_py.Beatmap(content=data)).stars
    except (rosu_pp_py.ParseError, rosu_pp_py.ConvertError, rosu_pp_py.ArgsError, ValueError):
        return None
    return stars if math.isfinite(stars) and stars >= 0 else None


def _difficulty(beatmap: Beatmap, stars: float) -> list[float]:
    """(AR, CS, OD, HP, stars), the order of DIFFICULTY_FIELDS."""
    d = beatmap.difficulty
    return [float(d.approach_rate), float(d.cs), float(d.od), float(d.hp), float(stars)]


def _metadata(beatmap: Beatmap, song_set: SongSet, entry: MapEntry, where: str) -> dict:
    meta = beatmap.metadata
    return {"member": entry.member, "source": where, "set": song_set.name,
            "title": meta.get("Title", ""), "artist": meta.get("Artist", ""),
            "version": meta.get("Version", ""), "creator": meta.get("Creator", ""),
            "beatmap_id": _int_or_none(meta.get("BeatmapID")),
            "beatmapset_id": _int_or_none(meta.get("BeatmapSetID"))}


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _write_shard(path: Path, key: str, vocab: VocabConfig,
                 built: list[tuple[dict, np.ndarray, bytes]]) -> None:
    tensors = {"difficulty": np.asarray([m["difficulty"] for m, _, _ in built], np.float32)}
    for i, (_, ids, data) in enumerate(built):
        tensors[f"tokens.{i}"] = ids
        tensors[f"map.{i}"] = np.frombuffer(data, dtype=np.uint8)
    metadata = {"format": FORMAT, "version": str(FORMAT_VERSION), "key": key,
                "vocab": vocab.name, "difficulty_fields": ",".join(DIFFICULTY_FIELDS)}
    with atomic_path(path) as temporary:
        save_file(tensors, temporary, metadata=metadata)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final` to write; renamed onto `final` when the block ends
    normally, deleted otherwise (KeyboardInterrupt included)."""
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=TMP_PREFIX, suffix=final.suffix)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: dict) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return data


def _outcome_of(record: dict) -> SongOutcome:
    return SongOutcome(record["key"], len(record.get("maps", [])),
                       [tuple(skip) for skip in record.get("skipped", [])])


def _count(result: BuildResult, outcome: SongOutcome) -> None:
    result.maps += outcome.maps
    result.report.sets += bool(outcome.maps)
    result.report.maps += outcome.maps
    for reason, where, detail in outcome.skipped:
        result.report.skip(reason, where, detail)


@functools.lru_cache(maxsize=4)
def _vocab(config: VocabConfig) -> Vocab:
    return Vocab(config)


def _run(todo: list[SongSet], out: Path, config: BuildConfig) -> Iterable[SongOutcome]:
    """Each set's outcome as it finishes (see core.dataset_pool)."""
    yield from run_each(_build_checked, todo, (out, config.vocab), config.processes,
                        preload=__name__)


def _build_checked(song_set: SongSet, out: Path, vocab: VocabConfig) -> SongOutcome:
    """`build_song`, with a failure to write the output turned into DatasetError."""
    try:
        return build_song(song_set, out, vocab)
    except OSError as e:
        raise DatasetError(f"cannot write the data set: {e}") from e
