"""The daemon's configuration: `config.toml` in kiai's config folder (DESIGN §10).

    <config dir>/config.toml   written once, with comments, on the first `kiai serve`

The config folder is protocol.default_config_dir() (`%APPDATA%\\kiai`, `~/.config/kiai`, ...) or
`--config-dir`. A missing file means the defaults; a missing key means that key's default; an
unknown key or a value of the wrong type is an error naming the file and the key, so a typo never
silently falls back to a default. `kiai serve`'s options override fields one to one
(`--songs` -> songs, `--port` -> port, `--no-watch` -> watch).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from protocol import DEFAULT_PORT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILE_NAME = "config.toml"
# tosu serves its overlays from here (https://github.com/tosuapp/tosu, default port 24050).
TOSU_ORIGINS = ("http://127.0.0.1:24050", "http://localhost:24050")
MAX_QUEUE = 512  # job.list answers at most 1024 jobs: the queue plus the recent history


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""


def default_songs_dir(platform: str, environ: Mapping[str, str], home: str) -> PurePath:
    """Where osu! stable keeps its Songs folder, by platform (a sys.platform value):

    Windows  %LOCALAPPDATA%\\osu!\\Songs (the installer's default)
    macOS    ~/Applications/osu!.app/Contents/Resources/drive_c/osu!/Songs (a guess: the
             common Wine wrapper's layout)
    others   ~/.local/share/osu-wine/osu!/Songs (a guess: osu-winello's default install)

    lazer keeps no Songs folder: point `songs` at the folder "edit externally" opens.
    """
    if platform == "win32":
        local = environ.get("LOCALAPPDATA")
        base = PureWindowsPath(local) if local else PureWindowsPath(home, "AppData", "Local")
        return base / "osu!" / "Songs"
    if platform == "darwin":
        return PurePosixPath(home, "Applications", "osu!.app", "Contents", "Resources",
                             "drive_c", "osu!", "Songs")
    return PurePosixPath(home, ".local", "share", "osu-wine", "osu!", "Songs")


@dataclass(frozen=True)
class Config:
    # Where the maps are. Every path a client names must resolve inside this folder.
    songs: Path
    # The websocket. Always bound to 127.0.0.1; port 0 picks a free one (tests).
    port: int = DEFAULT_PORT
    # Browser Origins allowed to connect (non-browser clients send none and are allowed).
    allowed_origins: tuple[str, ...] = TOSU_ORIGINS
    # Requests per second per connection (a token bucket of `rate_burst` requests).
    rate_per_s: float = 20.0
    rate_burst: int = 100
    # Jobs waiting or running; one more is refused with QUEUE_FULL.
    queue_capacity: int = 8
    # The watcher: a new song folder gets one difficulty at `auto_stars` once its files have
    # stopped changing for `settle_s` seconds (checked again one poll later).
    watch: bool = True
    auto_stars: float = 4.0
    settle_s: float = 1.5
    # A checkpoint directory; None: the shipped starter model.
    model: Path | None = None
    # The decoder's step arithmetic (core.incremental.PRECISIONS): auto, float32 or int8.
    precision: str = "auto"

    def __post_init__(self) -> None:
        self._verify()

    def _verify(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port}")
        if not 1 <= self.queue_capacity <= MAX_QUEUE:
            raise ConfigError(f"queue_capacity must be 1..{MAX_QUEUE}, got {self.queue_capacity}")
        if not 0 < self.auto_stars <= 20:
            raise ConfigError(f"auto_stars must lie in (0, 20], got {self.auto_stars}")
        if self.rate_per_s <= 0 or self.rate_burst < 1:
            raise ConfigError("rate_per_s must be > 0 and rate_burst >= 1")
        if not 0.05 <= self.settle_s <= 600:
            raise ConfigError(f"settle_s must be 0.05..600 seconds, got {self.settle_s}")
        from core.incremental import PRECISIONS  # here: the rest of this module needs no torch

        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, "
                              f"got {self.precision!r}")
        for origin in self.allowed_origins:
            if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
                raise ConfigError(f"allowed_origins: {origin!r} is not an origin "
                                  "(scheme://host[:port], no trailing slash)")

    def override(self, **changes: Any) -> Config:
        """A copy with the non-None `changes` applied (click options left unset are None)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def default_config() -> Config:
    return Config(songs=Path(default_songs_dir(sys.platform, os.environ, str(Path.home()))))


# TOML key -> (field, accepted types). Keys are the field names.
_TYPES: dict[str, tuple[type, ...]] = {
    "songs": (str,), "port": (int,), "allowed_origins": (list,), "rate_per_s": (int, float),
    "rate_burst": (int,), "queue_capacity": (int,), "watch": (bool,),
    "auto_stars": (int, float), "settle_s": (int, float), "model": (str,),
    "precision": (str,),
}


def load_config(config_dir: Path) -> Config:
    """The config in `config_dir` (defaults for whatever it does not set)."""
    path = config_dir / CONFIG_FILE_NAME
    try:
        with path.open("rb") as f:
            document = tomllib.load(f)
    except FileNotFoundError:
        return default_config()
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e
    return from_toml(document, path)


def from_toml(document: dict[str, Any], path: PurePath) -> Config:
    values: dict[str, Any] = {}
    for key, value in document.items():
        types = _TYPES.get(key)
        if types is None:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(_TYPES)})")
        # bool is an int in Python; TOML's true is not a port.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join({"str": "a string", "int": "an integer", "float": "a number",
                                    "bool": "true or false", "list": "a list"}[t.__name__]
                                   for t in types)
            raise ConfigError(f"{path}: {key} = {value!r}: expected {expected}")
        values[key] = value
    if "allowed_origins" in values:
        origins = values["allowed_origins"]
        if not all(isinstance(o, str) for o in origins):
            raise ConfigError(f"{path}: allowed_origins must be a list of strings")
        values["allowed_origins"] = tuple(origins)
    if "songs" in values:
        values["songs"] = Path(values["songs"]).expanduser()
    if "model" in values:
        values["model"] = Path(values["model"]).expanduser() if values["model"] else None
    try:
        return dataclasses.replace(default_config(), **values)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def write_default_config(config_dir: Path) -> Path | None:
    """Write the commented default config.toml unless one exists; its path, or None."""
    path = config_dir / CONFIG_FILE_NAME
    if path.exists():
        return None
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = _TEMPLATE.format(songs=_toml_string(str(default_config().songs)),
                            port=DEFAULT_PORT,
                            origins=", ".join(_toml_string(o) for o in TOSU_ORIGINS))
    try:
        with open(path, "x", encoding="utf-8") as f:  # never replace a user's file
            f.write(text)
    except FileExistsError:
        return None
    return path


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escaping is TOML-compatible for these characters)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_TEMPLATE = """\
# kiai daemon configuration (`kiai serve`). Every key is optional: delete one to get its default.
# Command-line options (--songs, --port, --no-watch) override these values.

# The osu! Songs folder. Every path a client names must lie inside it. The default is where
# osu! stable installs on this platform; osu!lazer users point it at the folder that
# "edit externally" opens (or its parent).
songs = {songs}

# The websocket port on 127.0.0.1 (the daemon never listens on other interfaces).
port = {port}

# Browser pages allowed to connect (their Origin header). Clients that are not browsers send
# no Origin and are allowed. tosu serves its overlays from port 24050.
allowed_origins = [{origins}]

# Requests per second per connection, and the burst allowed above that rate.
rate_per_s = 20.0
rate_burst = 100

# Jobs waiting or running at once; further requests are refused with QUEUE_FULL.
queue_capacity = 8

# Generate one new difficulty for every new song folder, at this star rating, once its files
# have stopped changing for settle_s seconds.
watch = true
auto_stars = 4.0
settle_s = 1.5

# A checkpoint directory; empty: the starter model shipped with kiai.
model = ""

# How the model computes: "int8" (int8 weights, bfloat16 arithmetic: up to twice as fast on
# CPUs with AVX-512 bfloat16, slower without; maps the same within ~1% of the logits),
# "float32" (as trained), or "auto": int8 where it is faster.
precision = "auto"
"""
