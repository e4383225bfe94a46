"""Training windows from a data set that core.dataset built (DESIGN §7, §8).

A window is `window_s` seconds of a song's audio features and the tokens of the map's objects in
it, as `tokenize_window` writes them: SOS, the objects before a random split point as prefix,
then the objects from the split to the window's end (the loss targets), then EOS. Windows start on
a feature frame, so the first frame is centred on the window's start (time 0 of its tokens).

Each map gives ceil(song / window) windows per epoch, their starts stratified over the song (one
uniform draw inside each of as many equal slices), so an epoch covers every song about once
whatever its length. Everything random about item i comes from (seed, epoch, i): the same seed
and epoch give the same windows in any worker, in any order.

Cheap per item. Parsing a whole map costs ~20 µs an object (a 1,000-object map 20 ms, the
corpus's 6,500-object marathon 160 ms) and a parsed map ~1.8 kB an object, so a cache of parsed
maps either thrashes under a shuffled epoch or holds gigabytes per worker. Instead each worker
keeps, per map (an LRU of `cached_maps`), a `MapText`: its header (format version, difficulty,
timing) parsed once and its [HitObjects] lines as text with their times; a window parses only
its own lines (~1.5 ms for 16 s of the marathon), and a test checks that its tokens equal those
of the whole map's parse. Each song's float16 features are memory-mapped; a window slices only
its frames.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import json
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from core.audio import FRAME_MS, LATENCY_FRAMES, N_MELS
from core.beat_grid import grid_classes
from core.beatmap.model import Beatmap
from core.beatmap.parser import parse_bytes, parse_text
from core.beatmap.timing import annotate_sliders
from core.dataset import FORMAT, FORMAT_VERSION, INDEX_DIR, MANIFEST, DatasetError
from core.tokens.timeline import cursor_times
from core.tokens.tokenizer import tokenize_window
from core.tokens.vocab import Category, Vocab, VocabConfig

PAD = 0  # the token language's PAD id (DESIGN §4); collate pads with it
# MapText.window's object lines reach this far past the window on each side, in the times as
# written: more than the +24 ms that the parser adds to maps before format v5.
WINDOW_MARGIN_MS = 50.0
# Features lie in [-1, 1] with -1 the floor 80 dB below the song's peak (core.audio): audio
# before a song's start and after its end is silence, as osu! plays it.
SILENCE = -1.0


@dataclass(frozen=True)
class WindowConfig:
    """How windows are cut. Frozen: a training run records it."""

    # The window: DESIGN §8 asks for ~10-20 s; 16 s holds a few bars at any osu! tempo.
    window_s: float = 16.0
    # The prefix: "often none", the case of a map's first window and of auto-generation; other
    # windows split at a uniform time inside, so the prefix runs from nothing to all of it.
    no_prefix_p: float = 0.5
    # Randomness: item i of epoch e depends on (seed, e, i) only.
    seed: int = 0
    # Caches, per worker process.
    cached_maps: int = 256  # MapTexts: ~0.1 MB for 1,000 objects
    cached_features: int = 64  # memory-mapped feature files

    def __post_init__(self) -> None:
        self._verify()

    def _verify(self) -> None:
        if not self.window_s > 0 or self.frames < 1:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if not 0.0 <= self.no_prefix_p <= 1.0:
            raise ValueError(f"no_prefix_p must lie in [0, 1], got {self.no_prefix_p}")
        if self.seed < 0 or self.cached_maps < 1 or self.cached_features < 1:
            raise ValueError("seed must be >= 0 and cache sizes >= 1")

    @property
    def frames(self) -> int:
        """Feature frames per window: window_s * 1000 / FRAME_MS."""
        return round(self.window_s * 1000 / FRAME_MS)

    @property
    def window_ms(self) -> int:
        return self.frames * FRAME_MS


@dataclass(frozen=True)
class MapRef:
    """Where one difficulty's data lies, from its set's record."""

    shard: Path
    index: int  # `map.<index>` in the shard
    difficulty: tuple[float, ...]  # (AR, CS, OD, HP, stars)
    features: Path | None  # None: a map kept without its audio (its windows are silent)
    frames: int  # audio feature frames (an audio-less map's: to its last object and a tail)
    windows: int  # windows per epoch
    source: str
    set_name: str = ""  # its set's folder (or archive) name: the same wherever the Songs folder is


class WindowDataset(torch.utils.data.Dataset):
    """Item i of the current epoch: a dict with `tokens` (T,) int64, `prefix_length` (SOS and
    the prefix), `audio` (N_MELS, frames) float32, `grid` (frames / 2,) int64 (the beat grid
    at the encoder's positions, core.beat_grid), `difficulty` (5,) float32 and the window's
    `map`, `start_ms`, `split_ms`, `end_ms` (ms in the song)."""

    def __init__(self, root: str | Path, config: WindowConfig = WindowConfig(),
                 vocab: VocabConfig | None = None):
        self.root = Path(root)
        self.config = config
        manifest = _manifest(self.root)
        # The maps are stored as text: any vocabulary can cut windows, the built one by default.
        self.vocab = Vocab(vocab or VocabConfig.from_dict(manifest["vocab"]))
        if self.vocab.id(Category.PAD) != PAD:
            raise DatasetError(f"vocabulary {self.vocab.config.name!r} puts PAD at "
                               f"{self.vocab.id(Category.PAD)}, not {PAD}")
        self.maps = _map_refs(self.root, config)
        self._ends = list(itertools.accumulate(m.windows for m in self.maps))
        self.epoch = 0
        self._start_caches()

    def _start_caches(self) -> None:
        self._texts = _Lru(self.config.cached_maps, lambda i: MapText(self._map_bytes(i),
                                                                      self.maps[i].source))
        self._features = _Lru(self.config.cached_features, _map_features)
        self._beatmaps = _Lru(4, lambda i: parse_bytes(self._map_bytes(i),
                                                       self.maps[i].source).beatmap)

    def __getstate__(self) -> dict:
        """Without the caches: DataLoader workers that are spawned get the dataset pickled,
        and each starts its own caches."""
        return {k: v for k, v in self.__dict__.items()
                if k not in ("_texts", "_features", "_beatmaps")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._start_caches()

    def set_epoch(self, epoch: int) -> None:
        """Draw the windows of `epoch` from now on (call it before each epoch, as with
        DistributedSampler)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, i: int) -> dict:
        map_index, start_frame, split_ms = self.window(i)
        ref = self.maps[map_index]
        start_ms = start_frame * FRAME_MS
        end_ms = start_ms + self.config.window_ms
        beatmap = self._texts.get(map_index).window(start_ms, end_ms)
        window = tokenize_window(beatmap, self.vocab, start_ms, split_ms, end_ms)
        return {"tokens": torch.tensor(window.ids, dtype=torch.long),
                "times": torch.tensor(cursor_times(window.ids, self.vocab), dtype=torch.float32),
                "prefix_length": window.prefix_length,
                "audio": self.audio(map_index, start_frame),
                "grid": torch.from_numpy(grid_classes(beatmap.timing_points, start_ms,
                                                      -(-self.config.frames // 2))),
                "difficulty": torch.tensor(ref.difficulty, dtype=torch.float32),
                "map": map_index, "start_ms": start_ms, "split_ms": split_ms, "end_ms": end_ms}

    def window(self, i: int) -> tuple[int, int, int]:
        """(map index, start frame, split in ms) of item i in this epoch."""
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} of {len(self)}")
        map_index = bisect.bisect_right(self._ends, i)
        j = i - (self._ends[map_index - 1] if map_index else 0)
        ref = self.maps[map_index]
        rng = np.random.default_rng([self.config.seed, self.epoch, i])
        span = max(0, ref.frames - self.config.frames)  # start frames that keep it in the song
        start_frame = math.floor((j + rng.random()) * span / ref.windows)
        start_ms = start_frame * FRAME_MS
        if rng.random() < self.config.no_prefix_p:
            return map_index, start_frame, start_ms
        return map_index, start_frame, start_ms + int(rng.integers(0, self.config.window_ms))

    def beatmap(self, map_index: int) -> Beatmap:
        """The whole map, parsed (the last few are cached): for checks and tools; windows are
        cut from MapText."""
        return self._beatmaps.get(map_index)

    def audio(self, map_index: int, start_frame: int) -> torch.Tensor:
        """(N_MELS, frames) float32 of the window whose beatmap time starts at `start_frame`
        (the audio's LATENCY_MS later), silence past the song's end (and for a map kept
        without its audio)."""
        window = np.full((N_MELS, self.config.frames), SILENCE, dtype=np.float32)
        if self.maps[map_index].features is None:
            return torch.from_numpy(window)
        features = self._features.get(self.maps[map_index].features)
        first = start_frame + LATENCY_FRAMES
        piece = features[:, first:first + self.config.frames]
        window[:, :piece.shape[1]] = piece
        return torch.from_numpy(window)

    def _map_bytes(self, map_index: int) -> bytes:
        ref = self.maps[map_index]
        with safe_open(str(ref.shard), framework="numpy") as shard:
            return shard.get_tensor(f"map.{ref.index}").tobytes()


class MapText:
    """A map ready to be cut into windows: `header` is the map without its objects (everything
    outside [HitObjects], parsed), `lines` its object lines as written and `times` their time
    fields (ms as written; nan where unreadable: such lines always go to the parser)."""

    def __init__(self, data: bytes, source: str = "<bytes>"):
        text = data.decode("utf-8-sig", errors="replace")  # as parse_bytes decodes
        header, self.lines = _split_objects(text)
        self.header = parse_text(header, source).beatmap
        self.source = source
        self.times = np.array([_time_field(line) for line in self.lines], dtype=np.float64)

    def window(self, start_ms: float, end_ms: float) -> Beatmap:
        """The map with only the objects near [start_ms, end_ms) (WINDOW_MARGIN_MS more on each
        side), parsed and annotated as in the whole map: tokenize_window of it is the same."""
        low, high = start_ms - WINDOW_MARGIN_MS, end_ms + WINDOW_MARGIN_MS
        keep = ~((self.times < low) | (self.times >= high))  # nan compares false: kept
        text = "\n".join([f"osu file format v{self.header.format_version}", "[HitObjects]",
                          *(self.lines[i] for i in np.flatnonzero(keep))])
        objects = parse_text(text, self.source).beatmap.hit_objects
        beatmap = dataclasses.replace(self.header, hit_objects=objects)
        annotate_sliders(beatmap)  # slider durations need the header's difficulty and timing
        return beatmap


def _split_objects(text: str) -> tuple[str, list[str]]:
    """(the text without the lines of its [HitObjects] sections, those lines but blank ones)."""
    header, objects = [], []
    section = ""
    for line in text.splitlines():
        starts = _section_started(line, section)
        if starts is not None:  # section lines stay in the header, [HitObjects] too: a file
            section = starts  # of objects alone has a section all the same
            header.append(line)
        else:
            (objects if section == "HitObjects" else header).append(line)
    return "\n".join(header), [line for line in objects if line.strip()]


def _section_started(raw: str, section: str) -> str | None:
    """The section that `raw` starts, read as core.beatmap.parser reads it, or None."""
    stripped = raw.strip()
    if not stripped or stripped.startswith("//"):
        return None
    line = raw
    if section != "Metadata":  # the parser keeps "//" in [Metadata]: titles may hold it
        cut = line.find("//")
        if cut > 0:
            line = line[:cut]
    line = line.rstrip()
    return line[1:-1] if line.startswith("[") and line.endswith("]") else None


def _time_field(line: str) -> float:
    try:
        return float(line.split(",")[2])
    except (IndexError, ValueError):
        return math.nan


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Stack items into a batch; token sequences are right-padded with PAD.

    Returns `tokens` (B, T) int64, `token_mask` (B, T) bool (true on real tokens), `loss_mask`
    (B, T) bool (true after SOS and the prefix, false on PAD), `prefix_length` (B,), `audio`
    (B, N_MELS, frames) float32, `grid` (B, frames / 2) int64, `difficulty` (B, 5) float32, and
    `map`, `start_ms`, `split_ms`, `end_ms` (B,).
    """
    lengths = torch.tensor([len(item["tokens"]) for item in items])  # (B,)
    prefix = torch.tensor([item["prefix_length"] for item in items])  # (B,)
    tokens = torch.full((len(items), int(lengths.max())), PAD, dtype=torch.long)  # (B, T)
    times = torch.zeros(tokens.shape, dtype=torch.float32)  # (B, T), 0 under PAD
    for row, item in enumerate(items):
        tokens[row, :len(item["tokens"])] = item["tokens"]
        if "times" in item:
            times[row, :len(item["times"])] = item["times"]
    positions = torch.arange(tokens.shape[1])[None, :]  # (1, T)
    token_mask = positions < lengths[:, None]  # (B, T)
    return {"tokens": tokens, "times": times, "token_mask": token_mask,
            "loss_mask": token_mask & (positions >= prefix[:, None]),
            "prefix_length": prefix,
            "audio": torch.stack([item["audio"] for item in items]),  # (B, N_MELS, frames)
            **({"grid": torch.stack([item["grid"] for item in items])}  # (B, frames / 2)
               if all("grid" in item for item in items) else {}),
            "difficulty": torch.stack([item["difficulty"] for item in items]),  # (B, 5)
            **{key: torch.tensor([item[key] for item in items])
               for key in ("map", "start_ms", "split_ms", "end_ms")}}


def _map_features(path: Path) -> np.ndarray:
    """A song's float16 (N_MELS, frames) features, memory-mapped: slicing reads only a window."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _manifest(root: Path) -> dict:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{root}: not a data set ({MANIFEST}: {e})") from e
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise DatasetError(f"{root / MANIFEST}: not a {FORMAT} v{FORMAT_VERSION} manifest")
    return manifest


def _map_refs(root: Path, config: WindowConfig) -> list[MapRef]:
    """Every map of every completed set, ordered by the set's folder name (then its path): the
    same songs give the same items wherever their Songs folder is. (Records are named by a
    digest of the set's absolute path; in that order a data set built from a moved or newly
    checked-out folder drew other windows for the same seed.)"""
    records = []
    for path in (root / INDEX_DIR).glob("*.json"):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path}: unreadable record ({e})") from e
    records.sort(key=lambda r: (Path(r["source"]).name, r["source"], r["key"]))
    refs = []
    for record in records:
        for index, meta in enumerate(record.get("maps", [])):
            frames, features = meta["audio"]["frames"], meta["audio"]["features"]
            refs.append(MapRef(root / record["shard"], index, tuple(meta["difficulty"]),
                               None if features is None else root / features, frames,
                               max(1, math.ceil(frames / config.frames)), meta["source"],
                               Path(record["source"]).name))
    return refs


class _Lru:
    """A small least-recently-used cache of `load(key)`."""

    def __init__(self, size: int, load: Callable):
        self.size, self.load = size, load
        self.items: OrderedDict = OrderedDict()

    def get(self, key):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = self.items[key] = self.load(key)
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value
