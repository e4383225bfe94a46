"""core.audio_tags: an audio file's title, artist and BPM tag, in the containers osu! songs come
in; and a bare song's names from its tags or its folder's name (core.song_input)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import soundfile as sf
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TBPM, TIT2, TPE1, TXXX
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from core.audio_tags import AudioTags, parse_bpm, read_tags
from core.song_input import artist_and_title, resolve


def noise(path, seconds: float = 1.0):
    rate = 44_100
    sf.write(path, (np.random.default_rng(0).normal(0, 0.1, int(rate * seconds))), rate)
    return path


def test_vorbis_comments_in_any_case(tmp_path):
    ogg = OggVorbis(noise(tmp_path / "a.ogg"))
    ogg["BPM"], ogg["TITLE"], ogg["Artist"] = "174", "Tïtle", "Someone"
    ogg.save()
    assert read_tags(tmp_path / "a.ogg") == AudioTags("Tïtle", "Someone", 174.0)


def test_flac_tempo_key(tmp_path):
    flac = FLAC(noise(tmp_path / "a.flac"))
    flac["tempo"] = "128.5"
    flac.save()
    assert read_tags(tmp_path / "a.flac").bpm == 128.5


def test_a_txxx_bpm_frame_in_an_mp3(corpus, tmp_path):
    # some taggers write the tempo as a user text frame named BPM instead of TBPM
    with zipfile.ZipFile(corpus / "osu-resources" / "triangles.osz") as osz:
        (tmp_path / "audio.mp3").write_bytes(osz.read("audio.mp3"))
    tags = ID3(tmp_path / "audio.mp3")
    tags.delall("TBPM")
    tags.add(TXXX(encoding=3, desc="BPM", text=["161.5"]))
    tags.add(TIT2(encoding=3, text=["Triangles"]))
    tags.save()
    assert read_tags(tmp_path / "audio.mp3") == AudioTags("Triangles", "", 161.5)


def test_id3_frames_in_a_wav(tmp_path):
    wav = WAVE(noise(tmp_path / "a.wav"))
    wav.add_tags()
    wav.tags.add(TBPM(encoding=3, text=["90"]))
    wav.tags.add(TIT2(encoding=3, text=["Song"]))
    wav.tags.add(TPE1(encoding=3, text=["Band"]))
    wav.save()
    assert read_tags(tmp_path / "a.wav") == AudioTags("Song", "Band", 90.0)


def test_wav_info_chunk_through_libsndfile(tmp_path):
    with sf.SoundFile(tmp_path / "a.wav", "w", 44_100, 1) as f:
        f.title, f.artist = "Info title", "Info artist"
        f.write(np.zeros(4410))
    assert read_tags(tmp_path / "a.wav") == AudioTags("Info title", "Info artist", None)


def test_untagged_unreadable_and_missing_files_say_nothing(tmp_path):
    (tmp_path / "junk.mp3").write_bytes(b"\xff\xfb not an mp3 at all" * 10)
    # a Vorbis comment whose length runs past its packet: mutagen raises IndexError, not its
    # own error (found by fuzzing), and a daemon job must not fail on a tag
    ogg = OggVorbis(noise(tmp_path / "damaged.ogg"))
    ogg["artist"] = "Art"
    ogg.save()
    data = bytearray((tmp_path / "damaged.ogg").read_bytes())
    data[data.lower().index(b"artist=") - 2] = 0x75  # its 4-byte length: 10 -> 0x75000a
    (tmp_path / "damaged.ogg").write_bytes(data)
    for path in (noise(tmp_path / "a.wav"), tmp_path / "junk.mp3", tmp_path / "missing.ogg",
                 tmp_path / "damaged.ogg"):
        assert read_tags(path) == AudioTags()


@pytest.mark.parametrize("text, bpm", [("160", 160.0), ("127.98", 127.98), ("174 BPM", 174.0),
                                       ("128,5", 128.5), ("0", None), ("", None),
                                       ("fast", None), ("999", None), ("12", None)])
def test_parse_bpm(text, bpm):
    assert parse_bpm(text) == bpm


def test_triangles_mp3_carries_its_tempo(corpus, tmp_path):
    # ID3 TBPM 160, the hand-made map's tempo (libsndfile reads no tempo tag)
    with zipfile.ZipFile(corpus / "osu-resources" / "triangles.osz") as osz:
        (tmp_path / "audio.mp3").write_bytes(osz.read("audio.mp3"))
        osu = osz.read(next(n for n in osz.namelist() if n.endswith(".osu"))).decode()
    beat_ms = float(osu.split("[TimingPoints]")[1].split()[0].split(",")[1])
    assert read_tags(tmp_path / "audio.mp3").bpm == pytest.approx(60_000 / beat_ms)


@pytest.mark.parametrize("name, names", [
    ("1234567 Sectoid - Metal madness", ("Sectoid", "Metal madness")),
    ("Sectoid - Metal madness", ("Sectoid", "Metal madness")),
    ("  99999  DJ  X -  A - B ", ("DJ X", "A - B")),
    # a leading number under 4 digits is the artist's: osu!'s set ids passed 1000 in 2007
    ("50 Cent - In Da Club", ("50 Cent", "In Da Club")),
    ("100 gecs - money machine", ("100 gecs", "money machine")),
    ("2123456 100 gecs - money machine", ("100 gecs", "money machine")),
    ("audio", None), ("- x", None), ("x -", None)])
def test_artist_and_title_of_osu_folder_names(name, names):
    assert artist_and_title(name) == names


def test_a_file_name_has_no_set_id():
    assert artist_and_title("1349 - Riders of the Storm", set_id=False) == \
        ("1349", "Riders of the Storm")


def test_a_bare_song_is_named_by_its_tags_else_its_folder(tmp_path):
    folder = tmp_path / "2110511 Some Band - Some Song"
    folder.mkdir()
    noise(folder / "audio.ogg", 5.0)
    meta = resolve(folder).template.metadata
    assert (meta["Artist"], meta["Title"]) == ("Some Band", "Some Song")
    ogg = OggVorbis(folder / "audio.ogg")
    ogg["artist"], ogg["title"] = "Tagged Band", "Tagged Song"
    ogg.save()
    meta = resolve(folder).template.metadata
    assert (meta["Artist"], meta["Title"]) == ("Tagged Band", "Tagged Song")
    # a file given alone: its own name, where it is written so
    noise(tmp_path / "Solo Artist - Solo Song.wav", 5.0)
    meta = resolve(tmp_path / "Solo Artist - Solo Song.wav").template.metadata
    assert (meta["Artist"], meta["Title"]) == ("Solo Artist", "Solo Song")
