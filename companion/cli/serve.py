"""`kiai serve`: the daemon (companion.server) from the shell."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import click

from companion.config import ConfigError, load_config, write_default_config
from companion.instance import AlreadyRunning
from companion.server import run_daemon
from core.incremental import PRECISIONS
from protocol import default_config_dir


@click.command("serve")
@click.option("--songs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The osu! Songs folder (config: songs).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port on 127.0.0.1 (config: port; default 24060).")
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Config, token, lock and state (default: {default_config_dir()}).")
@click.option("--watch/--no-watch", default=None,
              help="Generate for new song folders (config: watch).")
@click.option("--model", type=click.Path(path_type=Path), default=None,
              help="A checkpoint directory (config: model; default: the starter model).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="The model's arithmetic (config: precision; default auto: int8 where the "
                   "CPU runs it faster).")
@click.option("-v", "--verbose", is_flag=True, help="Log every job and connection.")
def serve_command(songs: Path | None, port: int | None, config_dir: Path | None,
                  watch: bool | None, model: Path | None, precision: str | None,
                  verbose: bool) -> None:
    """Run the daemon: a websocket on 127.0.0.1 for clients, and the Songs folder watcher."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config_dir = config_dir or default_config_dir()
    try:
        written = write_default_config(config_dir)
        if written is not None:
            click.echo(f"wrote the default config to {written}", err=True)
        config = load_config(config_dir).override(songs=songs, port=port, watch=watch,
                                                  model=model, precision=precision)
    except (ConfigError, OSError) as e:
        raise click.ClickException(str(e)) from e
    if not config.songs.is_dir():
        raise click.ClickException(f"the Songs folder {config.songs} does not exist: pass "
                                   f"--songs or set songs in {config_dir / 'config.toml'}")
    try:
        run_daemon(config, config_dir)
    except AlreadyRunning as e:
        raise click.ClickException(str(e)) from e
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise click.ClickException(f"port {config.port} on 127.0.0.1 is in use: is another "
                                       "program listening there? Choose one with --port") from e
        raise click.ClickException(str(e)) from e
    except KeyboardInterrupt:  # Windows, where Ctrl+C is not a signal handler
        pass
