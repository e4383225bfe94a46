"""The `kiai` command line. Each command group lives in its own module; errors become one line
on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import click

from companion.cli.dataset import dataset_group
from companion.cli.generate import continue_command, generate_command
from companion.cli.preview import preview_command
from companion.cli.serve import serve_command
from companion.cli.starter import build_starter_command
from companion.cli.synth import synth_command
from companion.cli.timing import timing_command
from companion.cli.tokens import detokenize_command, roundtrip_command, tokenize_command
from companion.cli.train import train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kiai")
def main() -> None:
    """kiai: an AI mapping companion for osu!."""


main.add_command(tokenize_command)
main.add_command(detokenize_command)
main.add_command(roundtrip_command)
main.add_command(synth_command)
main.add_command(dataset_group)
main.add_command(train_command)
main.add_command(generate_command)
main.add_command(continue_command)
main.add_command(preview_command)
main.add_command(timing_command)
main.add_command(serve_command)
main.add_command(build_starter_command)
