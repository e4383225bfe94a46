"""Shared fixtures. `corpus` is the read-only corpus of real osu! files (see corpus_files.py);
`model` and `library` are the daemon tests' checkpoint and synthetic song folders, and
`dataset_songs` and `built_dataset` the data set tests' Songs folder and its build,
`starter_generator` and `timed_song` the companion.mapping tests' generator and song, and
`training_set` the training tests' data set, made once per session (copy them; never change
them). `one_thread` runs a module's tests on one torch thread."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from corpus_files import require_corpus, resource
from daemon_support import make_library, make_model
from test_songs import RENATUS_QUICK, corpus_archive, synth_songs, variant

from companion.mapping import load_generator
from core.beatmap.parser import parse_file
from core.dataset import BuildConfig, build
from core.generate import Generator
from core.songs import discover
from core.synth.config import SynthConfig
from core.synth.songs import write_song
from core.tokens.vocab import DEFAULT

SYNTHETIC = 3  # synthetic songs in dataset_songs


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy 2-core machine OpenMP's
    threads wait on each other: a step can take 50x longer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def training_set(tmp_path_factory) -> Path:
    """Two synthetic songs of 20 s, five difficulties each, built as a data set."""
    songs = tmp_path_factory.mktemp("TrainingSongs")
    synth_songs(songs, 2, seed=5, duration_s=20.0)
    out = tmp_path_factory.mktemp("training_set")
    build(discover(songs)[0], BuildConfig(out=out, vocab=DEFAULT, workers=1))
    return out


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The corpus folder: $KIAI_TEST_CORPUS, else ../shared/corpus beside the checkout.

    Tests that use it are skipped, with the reason, where it is absent.
    """
    return require_corpus()


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> Path:
    """The starter model if built, else a tiny random checkpoint (daemon_support.make_model)."""
    return make_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> dict[str, Path]:
    """Synthetic song folders `short` (20 s) and `long` (90 s) to copy into a Songs folder."""
    return make_library(tmp_path_factory.mktemp("library"))


@pytest.fixture(scope="session")
def dataset_songs(tmp_path_factory) -> Path:
    """A Songs folder for the data set tests: SYNTHETIC synthetic songs, a copy sharing one's
    audio, corpus archives (triangles, an empty map, Renatus) and the folders a build skips."""
    root = tmp_path_factory.mktemp("Songs")
    synthetic = synth_songs(root, SYNTHETIC, seed=21, duration_s=24.0)
    shutil.copytree(synthetic[0], root / "999 Copy - Same Audio")  # shares its audio's hash
    for name in ("triangles.osz", "ogg-beatmap.osz", RENATUS_QUICK):
        shutil.copy(corpus_archive(name), root / name)
    variant(synthetic[1], root / "1 Missing - Audio", ("audio.ogg", "nothere.mp3"), "audio.ogg")
    variant(synthetic[1], root / "2 Mania - Map", ("Mode: 0", "Mode: 3"), "audio.ogg")
    bad = variant(synthetic[1], root / "3 Bad - Audio", ("Mode: 0", "Mode: 0"), None)
    shutil.copy(resource(require_corpus(), "corrupt.wav"), bad / "audio.ogg")
    return root


@pytest.fixture(scope="session")
def built_dataset(dataset_songs, tmp_path_factory):
    """(out, discovery report, build result) of the whole Songs folder, in this process."""
    out = tmp_path_factory.mktemp("dataset")
    sets, report = discover(dataset_songs)
    result = build(sets, BuildConfig(out=out, vocab=DEFAULT, workers=1))
    return out, report, result


@pytest.fixture(scope="session")
def synth_song_folder(tmp_path_factory):
    """seed -> the folder of a 30 s synthetic song (audio, Easy and Insane maps), made once."""
    root = tmp_path_factory.mktemp("synth_songs")
    made: dict[int, Path] = {}

    def get(seed: int) -> Path:
        if seed not in made:
            made[seed] = write_song(SynthConfig(out=root / str(seed), seed=seed, duration_s=30.0,
                                                difficulties=("Easy", "Insane")), 0)
        return made[seed]

    return get


@pytest.fixture(scope="session")
def starter_generator() -> Generator:
    """The shipped starter model's generator."""
    return load_generator(None)


@pytest.fixture(scope="session")
def timed_song(tmp_path_factory):
    """A 30 s synthetic song folder (maps + audio) and its true uninherited timing."""
    folder = write_song(SynthConfig(out=tmp_path_factory.mktemp("songs"), seed=3,
                                    duration_s=30.0), 0)
    truth = [p for p in parse_file(next(folder.glob("*.osu"))).beatmap.timing_points
             if p.uninherited]
    return folder, truth
