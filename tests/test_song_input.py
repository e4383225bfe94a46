"""core.song_input: what `kiai generate` maps when pointed at a folder."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from companion.cli import main as cli
from core.beatmap.parser import parse_file
from core.difficulty import slider_multiplier_for_stars, star_rating
from core.song_input import (
    SPEED_KEEP_STARS,
    SongInputError,
    check_audio_name,
    find_file,
    resolve,
)
from core.synth.config import SynthConfig
from core.synth.songs import write_song


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """A 30 s synthetic song folder: maps and audio.ogg."""
    return write_song(SynthConfig(out=tmp_path_factory.mktemp("songs"), seed=3,
                                  duration_s=30.0), 0)


def test_a_folder_picks_its_song_not_a_hitsound_sample(song, tmp_path):
    """Hitsound samples sit beside the song: without maps the longest audio is the song (a
    clap sorts first); with maps whose song is missing, the folder is refused (a 2-object map of
    D_Clap.wav was written for ppy's Renatus_virtual archive)."""
    folder = song
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(folder / "audio.ogg", bare / "song.ogg")
    sf.write(bare / "a-clap.wav", np.zeros(4410) + 0.1, 44_100)
    assert resolve(bare).audio.name == "song.ogg"
    mapped = tmp_path / "mapped"
    mapped.mkdir()
    shutil.copy(bare / "a-clap.wav", mapped / "a-clap.wav")
    shutil.copy(next(folder.glob("*[[]Hard[]].osu")), mapped / "map.osu")  # names audio.ogg
    with pytest.raises(SongInputError, match=r"audio file \(audio.ogg\) is not in the folder"):
        resolve(mapped)


def test_a_bare_audio_files_tags_name_the_map(tmp_path):
    tagged = tmp_path / "track01.ogg"
    with sf.SoundFile(tagged, "w", 44_100, 1, format="OGG", subtype="VORBIS") as f:
        f.title, f.artist = "Blue Zenith", "xi"
        f.write(np.zeros(44_100, dtype=np.float32))
    metadata = resolve(tagged).template.metadata
    assert (metadata["Artist"], metadata["Title"]) == ("xi", "Blue Zenith")
    assert (metadata["ArtistUnicode"], metadata["TitleUnicode"]) == ("xi", "Blue Zenith")
    japanese = tmp_path / "track02.wav"
    with sf.SoundFile(japanese, "w", 44_100, 1) as f:
        f.title = "夜に駆ける"
        f.write(np.zeros(44_100, dtype=np.float32))
    metadata = resolve(japanese).template.metadata
    # the romanised fields must be ASCII: the file's name until the mapper romanises it
    assert (metadata["Title"], metadata["TitleUnicode"]) == ("track02", "夜に駆ける")
    assert (metadata["Artist"], metadata["ArtistUnicode"]) == ("Unknown", "Unknown")


def test_an_untagged_audio_file_is_named_by_its_song_folder(tmp_path):
    # `kiai generate "Songs/1234 Artist - Title/audio.mp3"` had written "Unknown - audio"
    folder = tmp_path / "1234567 Camellia - Exit This Earth's Atomosphere"
    folder.mkdir()
    audio = folder / "audio.wav"
    sf.write(audio, np.zeros(44_100, dtype=np.float32), 44_100)
    metadata = resolve(audio).template.metadata
    assert (metadata["Artist"], metadata["Title"]) == ("Camellia",
                                                       "Exit This Earth's Atomosphere")
    plain = tmp_path / "downloads"
    plain.mkdir()
    named = plain / "xi - Blue Zenith.wav"
    sf.write(named, np.zeros(44_100, dtype=np.float32), 44_100)
    metadata = resolve(named).template.metadata  # no song folder: the file's own name
    assert (metadata["Artist"], metadata["Title"]) == ("xi", "Blue Zenith")


def test_a_bare_song_folders_picture_is_its_background(tmp_path):
    """The picture beside the song is the new map's background: one named bg first, else the
    largest (a cover beside a small thumbnail); none in a folder without one, nor for an audio
    file given alone (a Downloads folder's pictures are not the song's)."""
    folder = tmp_path / "song"
    folder.mkdir()
    sf.write(folder / "song.wav", np.zeros(44_100, dtype=np.float32), 44_100)
    assert resolve(folder).template.events == []
    (folder / "thumb.png").write_bytes(b"\x89PNG" + bytes(100))
    (folder / "cover art.JPG").write_bytes(b"\xff\xd8" + bytes(5000))
    assert resolve(folder).template.events == ['0,0,"cover art.JPG",0,0']
    (folder / "big, wide.png").write_bytes(b"\x89PNG" + bytes(9000))  # no event line holds it
    assert resolve(folder).template.events == ['0,0,"cover art.JPG",0,0']
    (folder / "BG.jpeg").write_bytes(b"\xff\xd8" + bytes(10))
    assert resolve(folder).template.events == ['0,0,"BG.jpeg",0,0']
    assert resolve(folder / "song.wav").template.events == []


def test_an_audio_name_too_long_for_the_file_system_is_a_missing_file(tmp_path):
    """An AudioFilename over 255 bytes makes the OS refuse to even look it up (ENAMETOOLONG):
    that map's audio is missing, not an error that sinks the whole folder."""
    (tmp_path / "audio.ogg").write_bytes(b"OggS")
    assert find_file(tmp_path, "a" * 300 + ".mp3") is None
    assert find_file(tmp_path, "AUDIO.OGG") == tmp_path / "audio.ogg"


def test_a_map_that_lost_its_audio_line_still_gives_its_metadata_and_timing(song, tmp_path):
    """A map without AudioFilename in a folder with one song: its title and red lines are the
    template's, and the new map names the song (they had been dropped for 'Unknown - song' at
    an estimated tempo, silently)."""
    source = next(song.glob("*[[]Hard[]].osu"))
    lines = [line for line in source.read_text(encoding="utf-8").splitlines()
             if not line.startswith("AudioFilename")]
    folder = tmp_path / "lost"
    folder.mkdir()
    (folder / source.name).write_text("\n".join(lines), encoding="utf-8")
    shutil.copy(song / "audio.ogg", folder / "song.ogg")
    picked = resolve(folder)
    original = parse_file(source).beatmap
    assert picked.audio == folder / "song.ogg"
    assert picked.template.general["AudioFilename"] == "song.ogg"
    assert picked.template.metadata["Title"] == original.metadata["Title"]
    assert picked.template.timing_points == original.timing_points


def test_an_audio_name_with_spaces_around_it_is_refused_naming_them(song, tmp_path):
    """osu! trims AudioFilename's value: a map naming ' my song.ogg' would never load it, and
    kiai's own parser did not find the file either after writing such a map. Timing it writes
    no map: that is fine."""
    bare = tmp_path / "spaced"
    bare.mkdir()
    shutil.copy(song / "audio.ogg", bare / " my song.ogg")
    for given in (bare, bare / " my song.ogg"):
        picked = resolve(given)
        assert picked.audio.name == " my song.ogg"
        with pytest.raises(SongInputError, match="rename the file"):
            check_audio_name(picked.audio)
    result = CliRunner().invoke(cli, ["generate", str(bare)])
    assert result.exit_code == 1 and "rename the file" in result.output
    assert sorted(p.name for p in bare.iterdir()) == [" my song.ogg"]
    shutil.copy(next(song.glob("*[[]Hard[]].osu")), bare / "map.osu")  # names audio.ogg
    (bare / " my song.ogg").rename(bare / " audio.ogg")
    with pytest.raises(SongInputError, match="spaces around its name"):
        resolve(bare)


def test_a_new_difficulty_takes_its_slider_speed_from_the_nearest_sibling(song):
    """The template is the most timed map (the Easy, where all are timed alike); a 6-star map
    had got the Easy's SliderMultiplier and crawled. The sibling nearest the stars asked for
    gives slider speed, and the objects whose snap a new map's joins (core.beat_feel)."""
    picked = resolve(song)
    maps = {parse_file(p).beatmap.version: parse_file(p).beatmap for p in song.glob("*.osu")}
    assert len(picked.siblings) == len(maps) >= 3
    by_stars = sorted(picked.siblings, key=star_rating)
    easiest, hardest = by_stars[0], by_stars[-1]
    assert star_rating(easiest) < star_rating(hardest)
    assert picked.template_for(0.5).version == easiest.version
    assert picked.template_for(9.0).version == hardest.version
    assert picked.template_for(9.0).difficulty.slider_multiplier == maps[
        hardest.version].difficulty.slider_multiplier
    assert not picked.template_for(9.0).hit_objects  # a template: no objects
    assert picked.sibling_for(9.0).hit_objects == hardest.hit_objects


def test_slider_speed_comes_from_a_near_sibling_else_from_the_stars(song, tmp_path):
    """A bare song's default SliderMultiplier (1.4) made 5-6 star sliders crawl (ranked maps
    there use 1.7-2.0), and a lone Easy's 1.0 did too: a sibling lends its speed only within
    SPEED_KEEP_STARS of the stars asked for; else the speed is the one typical at the stars."""
    picked = resolve(song)
    rated = sorted((star_rating(b), b.difficulty.slider_multiplier) for b in picked.siblings)
    (low, low_speed), (high, high_speed) = rated[0], rated[-1]
    assert picked.slider_multiplier_for(low) == low_speed
    assert picked.slider_multiplier_for(high + SPEED_KEEP_STARS - 0.01) == high_speed
    far = high + SPEED_KEEP_STARS + 0.5
    assert picked.slider_multiplier_for(far) == slider_multiplier_for_stars(far)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(song / "audio.ogg", bare / "song.ogg")
    speeds = [resolve(bare).slider_multiplier_for(stars) for stars in (1.0, 2.0, 4.0, 6.0)]
    assert speeds == sorted(speeds) and speeds[0] < 1.4 < speeds[-1]
    assert 1.7 <= speeds[-1] <= 2.0
