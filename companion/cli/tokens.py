"""`kiai tokenize`, `kiai detokenize`, `kiai roundtrip`: the token language from the shell."""

from __future__ import annotations

import json
from pathlib import Path

import click

from core.beatmap.model import Beatmap
from core.beatmap.parser import BeatmapError, parse_file
from core.beatmap.writer import save
from core.tokens.detokenizer import DetokenizeError, detokenize
from core.tokens.tokenizer import UnsupportedModeError, tokenize
from core.tokens.vocab import PRESETS, Vocab, preset

_VOCAB = click.option("--vocab", "vocab_name", type=click.Choice(sorted(PRESETS)),
                      default="default", show_default=True, help="Token language preset.")
_OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                       required=True, help="Where to write the .osu (never overwritten).")


def load_beatmap(path: Path) -> Beatmap:
    """Parse `path`, printing its parse issues to stderr; a bad file becomes a click error."""
    try:
        result = parse_file(path)
    except BeatmapError as e:
        raise click.ClickException(str(e)) from e
    for issue in result.issues:
        click.echo(f"warning: {issue}", err=True)
    return result.beatmap


def _tokens(beatmap: Beatmap, vocab: Vocab) -> list[int]:
    try:
        return tokenize(beatmap, vocab)
    except UnsupportedModeError as e:
        raise click.ClickException(str(e)) from e


def _save(beatmap: Beatmap, output: Path) -> None:
    try:
        save(beatmap, output)
    except OSError as e:  # FileExistsError included: kiai never overwrites
        raise click.ClickException(str(e)) from e
    click.echo(f"wrote {output} ({len(beatmap.hit_objects)} objects)", err=True)


@click.command("tokenize")
@click.argument("beatmap_path", metavar="MAP.osu", type=click.Path(path_type=Path))
@_VOCAB
def tokenize_command(beatmap_path: Path, vocab_name: str) -> None:
    """Print MAP.osu's tokens as a JSON list of token names."""
    vocab = Vocab(preset(vocab_name))
    ids = _tokens(load_beatmap(beatmap_path), vocab)
    click.echo(json.dumps([vocab.name(i) for i in ids]))


@click.command("detokenize")
@click.argument("tokens_path", metavar="TOKENS.json", type=click.Path(path_type=Path))
@click.option("--template", "template_path", metavar="MAP.osu", type=click.Path(path_type=Path),
              required=True, help="Supplies metadata, difficulty and timing.")
@_OUTPUT
@_VOCAB
def detokenize_command(tokens_path: Path, template_path: Path, output: Path,
                       vocab_name: str) -> None:
    """Write the beatmap that TOKENS.json (token names or ids) describes."""
    vocab = Vocab(preset(vocab_name))
    ids = _read_tokens(tokens_path, vocab)
    template = load_beatmap(template_path)
    try:
        beatmap = detokenize(ids, template, vocab)
    except DetokenizeError as e:
        raise click.ClickException(f"{tokens_path}: {e}") from e
    _save(beatmap, output)


@click.command("roundtrip")
@click.argument("beatmap_path", metavar="MAP.osu", type=click.Path(path_type=Path))
@_OUTPUT
@_VOCAB
def roundtrip_command(beatmap_path: Path, output: Path, vocab_name: str) -> None:
    """Tokenize MAP.osu and write it back from its tokens, to see what the language keeps."""
    vocab = Vocab(preset(vocab_name))
    beatmap = load_beatmap(beatmap_path)
    ids = _tokens(beatmap, vocab)
    _save(detokenize(ids, beatmap, vocab), output)
    click.echo(f"{len(beatmap.hit_objects)} objects, {len(ids)} tokens", err=True)


def _read_tokens(path: Path, vocab: Vocab) -> list[int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise click.ClickException(f"{path}: cannot read: {e.strerror or e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise click.ClickException(f"{path}: not JSON: {e}") from e
    if not isinstance(data, list):
        raise click.ClickException(f"{path}: expected a JSON list of token names or ids")
    ids = []
    for position, item in enumerate(data):
        try:
            if isinstance(item, str):
                ids.append(vocab.token(item))
            elif isinstance(item, int) and not isinstance(item, bool):
                ids.append(item)
            else:
                raise ValueError(f"{item!r} is neither a token name nor an id")
        except ValueError as e:
            raise click.ClickException(f"{path}: item {position}: {e}") from e
    return ids
