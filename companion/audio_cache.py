"""The audio features of the last few songs, kept between jobs.

"Continue from here" is asked again and again on the same song while a mapper works on it; its
log-mel features (a few hundred ms for a 3-minute song) are computed once and reused while the
file's size and mtime are unchanged. Keyed by the file's real path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from torch import Tensor

from core.audio import audio_features

SONGS_KEPT = 4  # a 3-minute song's features are ~10 MB


class FeatureCache:
    def __init__(self, capacity: int = SONGS_KEPT) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[Path, int, int], Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> Tensor:
        """audio_features(path), from the cache when the file has not changed (AudioError as
        audio_features raises it)."""
        try:
            stat = path.stat()
        except OSError:
            return audio_features(path)  # raises the AudioError that names the problem
        key = (path.resolve(), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        features = audio_features(path)
        with self._lock:
            self._entries[key] = features
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return features
