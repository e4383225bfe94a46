"""Where a client finds the daemon and its token: shared by the daemon and every client.

The daemon listens on ws://127.0.0.1:DEFAULT_PORT/ and writes a random token to
`<config dir>/token`, readable by the user alone. A client reads that file and sends the token in
an `Authorization: Bearer <token>` header (or, when it cannot set headers, as a browser cannot,
in `initialize`'s `token`). Tokens never go in URLs, which end up in logs.

`config_dir_for` is pure (the platform, environment and home folder are arguments);
`default_config_dir` applies it to this process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

DEFAULT_HOST = "127.0.0.1"
# Near tosu's 24050 (which tosu uses alone); the daemon's --port overrides it.
DEFAULT_PORT = 24060
APP_NAME = "kiai"
TOKEN_FILE_NAME = "token"


def websocket_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    return f"ws://{host}:{port}/"


def config_dir_for(platform: str, environ: Mapping[str, str], home: str) -> PurePath:
    """kiai's config folder for a platform (a sys.platform value):

    Windows  %APPDATA%\\kiai (home\\AppData\\Roaming\\kiai when APPDATA is unset)
    macOS    ~/Library/Application Support/kiai
    others   $XDG_CONFIG_HOME/kiai, or ~/.config/kiai (the XDG Base Directory default, also
             when XDG_CONFIG_HOME is relative, which the specification says to ignore)
    """
    if platform == "win32":
        appdata = environ.get("APPDATA")
        base = PureWindowsPath(appdata) if appdata else PureWindowsPath(home, "AppData", "Roaming")
        return base / APP_NAME
    if platform == "darwin":
        return PurePosixPath(home, "Library", "Application Support", APP_NAME)
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and PurePosixPath(xdg).is_absolute():
        return PurePosixPath(xdg, APP_NAME)
    return PurePosixPath(home, ".config", APP_NAME)


def default_config_dir() -> Path:
    """This process's config folder (config_dir_for with sys.platform, os.environ, the home)."""
    return Path(config_dir_for(sys.platform, os.environ, str(Path.home())))


def token_path(config_dir: PurePath | str) -> PurePath:
    """Where the daemon keeps its token inside a config folder."""
    return PurePath(config_dir) / TOKEN_FILE_NAME


def bearer_header(token: str) -> dict[str, str]:
    """The handshake header carrying a token (websockets: `additional_headers=`)."""
    return {"Authorization": f"Bearer {token}"}


def parse_bearer(header: str | None) -> str | None:
    """The token of an `Authorization` header value, or None. The scheme is case-insensitive
    (RFC 7235 §2.1). Compare the result with hmac.compare_digest, never ==."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
