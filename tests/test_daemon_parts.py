"""The daemon's parts on their own: config, paths and safe writes, the rate limit, and the
generate/continue logic the CLI shares with the daemon."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from click.testing import CliRunner
from daemon_support import md5, tree

import companion.safety as safety
from companion.cli import main
from companion.config import (
    CONFIG_FILE_NAME,
    Config,
    ConfigError,
    default_config,
    default_songs_dir,
    load_config,
    write_default_config,
)
from companion.jobs import JobQueue, Outcome
from companion.safety import OwnWrites, SongsFolder, write_in_place, write_new_difficulty
from companion.session import RateLimiter
from companion.tasks import protocol_error
from core.beatmap.parser import parse_file
from protocol import (
    FileChangedError,
    InvalidParamsError,
    JobFailed,
    MissingFileError,
    PathOutsideSongsError,
    encode_notification,
)


@pytest.fixture
def song(tmp_path, library):
    folder = tmp_path / "Songs" / "1 Song"
    shutil.copytree(library["short"], folder)
    return folder


# Config


def test_a_missing_config_is_the_defaults_and_the_written_template_reads_back(tmp_path):
    assert load_config(tmp_path) == default_config()
    path = write_default_config(tmp_path)
    assert path == tmp_path / CONFIG_FILE_NAME
    text = path.read_text(encoding="utf-8")
    assert text.count("\n# ") > 10  # commented
    assert load_config(tmp_path) == default_config()
    path.write_text("# mine\nport = 1234\n", encoding="utf-8")
    assert write_default_config(tmp_path) is None  # never replaces the user's file
    assert load_config(tmp_path).port == 1234


@pytest.mark.parametrize("text, message", [
    ("prot = 1\n", "unknown key 'prot'"),
    ("port = '24060'\n", "port = '24060': expected an integer"),
    ("watch = 1\n", "watch = 1: expected true or false"),
    ("port = true\n", "expected an integer"),
    ("port = 70000\n", "port must be 0..65535"),
    ("allowed_origins = ['http://x/']\n", "is not an origin"),
    ("queue_capacity = 0\n", "queue_capacity must be"),
    ("precision = 'int4'\n", "precision must be one of auto, float32, int8, got 'int4'"),
    ("port = \n", "config.toml"),
])
def test_config_errors_name_the_file_and_the_key(tmp_path, text, message):
    (tmp_path / CONFIG_FILE_NAME).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)


def test_config_values_and_overrides(tmp_path):
    (tmp_path / CONFIG_FILE_NAME).write_text(
        'songs = "~/osu/Songs"\nmodel = ""\nallowed_origins = []\nauto_stars = 5\n'
        'precision = "int8"\n', encoding="utf-8")
    config = load_config(tmp_path)
    assert config.precision == "int8"
    assert config.songs == Path.home() / "osu" / "Songs" and config.model is None
    assert config.allowed_origins == () and config.auto_stars == 5
    changed = config.override(port=0, watch=False, songs=None)
    assert (changed.port, changed.watch, changed.songs) == (0, False, config.songs)


def test_default_songs_folder_per_platform():
    assert default_songs_dir("win32", {"LOCALAPPDATA": r"C:\Users\me\AppData\Local"},
                             r"C:\Users\me") == PureWindowsPath(
        r"C:\Users\me\AppData\Local\osu!\Songs")
    assert default_songs_dir("win32", {}, r"C:\Users\me") == PureWindowsPath(
        r"C:\Users\me\AppData\Local\osu!\Songs")
    assert default_songs_dir("linux", {}, "/home/me") == PurePosixPath(
        "/home/me/.local/share/osu-wine/osu!/Songs")
    assert str(default_songs_dir("darwin", {}, "/Users/me")).endswith("drive_c/osu!/Songs")


# Paths


def test_songs_folder_resolution(song, tmp_path):
    songs = SongsFolder(song.parent)
    beatmap = next(song.glob("*.osu"))
    assert songs.file(f"1 Song/{beatmap.name}") == beatmap.resolve()
    assert songs.file(f"1 Song\\{beatmap.name}") == beatmap.resolve()  # a Windows client
    assert songs.relative(beatmap.resolve()) == f"1 Song/{beatmap.name}"
    assert songs.folder("1 Song/./") == song.resolve()
    with pytest.raises(MissingFileError):
        songs.file("1 Song/missing.osu")
    with pytest.raises(MissingFileError):
        songs.file("1 Song")  # a folder, not a file
    with pytest.raises(InvalidParamsError):
        songs.folder(".")
    with pytest.raises(PathOutsideSongsError):
        songs.file("../../etc/passwd")
    with pytest.raises(PathOutsideSongsError):
        songs.contain(tmp_path / "elsewhere.mp3")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SongsFolder(tmp_path / "no Songs here")


def test_symlink_loops_are_missing_files_not_crashes(song):
    """A link to itself (legal on every POSIX system) resolves nowhere: FILE_NOT_FOUND for a
    path a client names through it, and a song folder holding one is still a song folder
    (before Python 3.13, pathlib raised RuntimeError on loops)."""
    songs = SongsFolder(song.parent)
    (song / "loop").symlink_to("loop")
    (song.parent / "Looping").symlink_to("Looping")
    with pytest.raises(MissingFileError):
        songs.file("1 Song/loop")
    with pytest.raises(MissingFileError):
        songs.file("1 Song/loop/map.osu")
    with pytest.raises(MissingFileError):
        songs.folder("Looping")
    songs.check_links(song)  # no error: the loop leads nowhere, not outside


# Safe writes


def test_in_place_writes_back_up_once_per_write_and_never_overwrite(song):
    path = next(song.glob("*[[]Hard[]].osu"))
    original = path.read_bytes()
    beatmap = parse_file(path).beatmap
    beatmap.hit_objects = beatmap.hit_objects[:3]
    now = datetime(2025, 1, 31, 12, 0, 0)
    own = OwnWrites()
    first = write_in_place(beatmap, path, md5(path), "x", own, now=now)
    assert first.name == f"{path.name}.20250131-120000.bak"
    assert first.read_bytes() == original and path in own and first in own
    rewritten = path.read_bytes()
    beatmap.hit_objects = beatmap.hit_objects[:2]
    second = write_in_place(beatmap, path, md5(path), "x", now=now)
    assert second.name == f"{path.name}.20250131-120000-2.bak"
    assert second.read_bytes() == rewritten and first.read_bytes() == original
    assert len(parse_file(path).beatmap.hit_objects) == 2
    assert not list(song.glob(".*.tmp"))


def test_in_place_refuses_a_file_that_changed_even_at_the_last_moment(song, monkeypatch):
    path = next(song.glob("*[[]Hard[]].osu"))
    beatmap = parse_file(path).beatmap
    before = tree(song)
    with pytest.raises(FileChangedError):
        write_in_place(beatmap, path, "0" * 32, "x")
    assert tree(song) == before
    # The mapper saves in the editor while the daemon writes: after the backup, before the
    # rename. The write is refused, the backup removed, the mapper's save kept.
    expected = md5(path)
    temp_file = safety._temp_file

    def save_in_the_editor_meanwhile(target, data, mode):
        tmp = temp_file(target, data, mode)
        if target == path:
            path.write_bytes(path.read_bytes() + b"\r\n")
        return tmp

    monkeypatch.setattr(safety, "_temp_file", save_in_the_editor_meanwhile)
    with pytest.raises(FileChangedError):
        write_in_place(beatmap, path, expected, "x")
    after = tree(song)
    assert after.pop(path.name) == before[path.name] + b"\r\n"
    assert after == {k: v for k, v in before.items() if k != path.name}


def test_new_difficulties_get_a_unique_version(song):
    source = next(song.glob("*[[]Hard[]].osu"))
    beatmap = parse_file(source).beatmap
    names = [write_new_difficulty(beatmap, song, "Hard").name for _ in range(3)]
    assert names[0].endswith("[Hard 2].osu") and names[2].endswith("[Hard 4].osu")
    assert source.read_bytes() == (song / source.name).read_bytes()
    # a difficulty renamed by hand keeps its Version: that is what osu! tells them apart by
    renamed = song / "my renamed map.osu"
    (song / names[2]).rename(renamed)
    assert write_new_difficulty(beatmap, song, "Hard").name.endswith("[Hard 5].osu")


def test_long_cjk_names_are_cut_to_fit_the_file_system_and_stay_unique(song):
    """A title of 100 CJK characters is 300 UTF-8 bytes, over Linux's 255-byte names: the
    difficulty's file name is cut by bytes (the title first), its Version kept whole."""
    beatmap = parse_file(next(song.glob("*[[]Hard[]].osu"))).beatmap
    beatmap.metadata.update(Title="夜" * 100, Artist="歌" * 40, Creator="作" * 30)
    long_version = "難" * 60 + " (kiai)"
    paths = [write_new_difficulty(beatmap, song, long_version) for _ in range(2)]
    for path in paths:
        assert len(path.name.encode("utf-8")) <= 230
        assert parse_file(path).beatmap.metadata["Title"] == "夜" * 100  # the file says all
    assert len({p.name for p in paths}) == 2 and paths[1].name.endswith(" 2].osu")


def test_the_rate_limit_is_a_token_bucket():
    limiter = RateLimiter(rate_per_s=0.001, burst=3)
    assert [limiter.take() for _ in range(3)] == [None, None, None]
    retry = limiter.take()
    assert retry is not None and retry > 0


# The CLI on the shared logic


def test_cli_generate_and_continue_still_work(song, model, tmp_path_factory):
    runner = CliRunner()
    hard = next(song.glob("*[[]Hard[]].osu"))
    result = runner.invoke(main, ["continue", str(hard), "--from", "0:05", "--until", "0:12",
                                  "--model", str(model), "--seed", "1"])
    assert result.exit_code == 0, result.output
    written = song / hard.name.replace("[Hard]", "[Hard (kiai)]")
    continued = parse_file(written).beatmap
    source = parse_file(hard).beatmap
    new = [o for o in continued.hit_objects if 5000 <= o.time < 12000]
    kept = len(continued.hit_objects) - len(new)  # before 5 s and from 12 s on
    assert kept == sum(not 5000 <= o.time < 12000 for o in source.hit_objects)
    assert f"({kept} objects kept, {len(new)} new from 5000 ms to 12000 ms" in result.output
    assert continued.metadata["BeatmapID"] == "0"
    # -o names the file, and the Version is still made unique beside it
    named = song / "my continuation.osu"
    result = runner.invoke(main, ["continue", str(hard), "--from", "0:05", "--until", "0:12",
                                  "--model", str(model), "--seed", "1", "-o", str(named)])
    assert result.exit_code == 0, result.output
    assert parse_file(named).beatmap.version == "Hard (kiai) 2"
    result = runner.invoke(main, ["generate", str(song), "--stars", "2.5", "--model", str(model),
                                  "--sampling", "greedy"])
    assert result.exit_code == 0, result.output
    assert list(song.glob("*[[]kiai 2.5[]].osu"))
    result = runner.invoke(main, ["continue", str(hard), "--from", "1", "--model",
                                  str(tmp_path_factory.mktemp("empty"))])
    assert result.exit_code != 0 and "not a checkpoint" in result.output


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config(songs=Path("x")).port = 1  # type: ignore[misc]


def test_sampling_params_reach_the_decoder():
    """Each protocol Sampling field becomes its DecodingOptions field; absent ones are core's
    defaults (drawGaps, since 1.2, is the CLI's --draw-gaps)."""
    from companion.methods import _options
    from core.decoding import DecodingOptions
    from protocol import Sampling

    given = _options(Sampling(method="sample", temperature=0.8, top_k=20, top_p=0.9, seed=3,
                              draw_gaps=True), spacing=0.7)
    assert (given.method, given.temperature, given.top_k, given.top_p, given.seed,
            given.draw_gaps, given.spacing) == ("sample", 0.8, 20, 0.9, 3, True, 0.7)
    assert _options(None) == DecodingOptions()
    assert _options(None, precision="int8").precision == "int8"  # config.precision
    assert _options(Sampling(draw_gaps=False)).draw_gaps is False
    with pytest.raises(InvalidParamsError, match="beam_size"):
        _options(Sampling(beam_size=0))



def test_files_gone_while_a_job_ran_are_named_as_the_client_knows_them(song, tmp_path):
    """A deleted song folder shows in the write's temp file; the client is told the folder,
    relative to Songs. A file gone outside Songs (the model's) is no FILE_NOT_FOUND of theirs."""
    songs = SongsFolder(song.parent)
    folder = songs.root / "1 Song"
    temp = FileNotFoundError(2, "No such file", str(folder / ".A - B (kiai) [x].osu.h88l.tmp"))
    assert protocol_error(temp, songs).data == {"path": "1 Song"}
    gone = FileNotFoundError(2, "No such file", str(folder / "map.osu"))
    assert protocol_error(gone, songs).data == {"path": "1 Song/map.osu"}
    assert protocol_error(FileNotFoundError(2, "x", str(tmp_path / "model.pt")), songs) is None


def test_a_job_whose_result_cannot_be_sent_ends_failed_for_clients_and_job_list():
    """A folder name that is not UTF-8 (legal on Linux) makes a path the protocol cannot carry:
    the job had been listed finished while no client heard of it."""
    async def main():
        published = []
        queue = JobQueue(2, lambda: object(), published.append)
        job = queue.submit("map.generate", lambda context: Outcome("bad\udcff/x.osu", 1, 1.0))
        while not any(isinstance(n, JobFailed) for n in published):
            await asyncio.sleep(0.01)
        await queue.close()
        return job, published

    job, published = asyncio.run(main())
    (failed,) = [n for n in published if isinstance(n, JobFailed)]
    assert failed.code == -32603 and "cannot carry" in failed.message
    assert "\\udcff" in failed.message and job.state == "failed"
    encode_notification(failed)  # and that one can be sent
