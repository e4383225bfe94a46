"""Song discovery on a Songs folder built in tmp_path: synthetic songs, corpus archives copied in,
and folders made to be skipped (missing audio, a mania map, a binary .osu, a hostile archive)."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
from corpus_files import require_corpus

from core.songs import (
    MISSING_AUDIO,
    NO_BEATMAPS,
    OTHER_MODE,
    UNPARSABLE,
    UNREADABLE,
    UNREADABLE_MAP,
    UNSAFE_MEMBER,
    SongsError,
    discover,
    safe_member,
)
from core.synth import SynthConfig, write_song

RENATUS_QUICK = "241526 Soleily - Renatus_virtual_quick.osz"  # 3 of 12 maps are osu!standard


def synth_songs(out: Path, count: int, seed: int, duration_s: float = 20.0) -> list[Path]:
    """`count` synthetic song folders in `out`, five difficulties each."""
    config = SynthConfig(out=out, count=count, seed=seed, duration_s=duration_s,
                         sample_rate=22_050)
    return [write_song(config, index) for index in range(count)]


def variant(source: Path, folder: Path, replace: tuple[str, str], audio_name: str | None,
            version: str = "Easy") -> Path:
    """A one-map set made from a synthetic song's `version` with a line replaced; `audio_name`
    names the audio copy (None: no audio)."""
    folder.mkdir(parents=True)
    osu = next(source.glob(f"*[[]{version}].osu"))
    text = osu.read_text(encoding="utf-8")
    assert replace[0] in text
    (folder / osu.name).write_text(text.replace(*replace), encoding="utf-8")
    if audio_name is not None:
        audio = next(p for p in source.iterdir() if p.name.startswith("audio."))
        shutil.copy(audio, folder / audio_name)
    return folder


def corpus_archive(name: str) -> Path:
    root = require_corpus()
    matches = sorted(root.rglob(name))
    if not matches:
        pytest.skip(f"{name} is not in the corpus")
    return matches[0]


def evil_archive(path: Path) -> Path:
    """An .osz whose members try to leave it, beside one honest map and its audio."""
    good = (b"osu file format v14\n\n[General]\nAudioFilename: Audio.OGG\nMode: 0\n\n"
            b"[HitObjects]\n256,192,1000,1,0\n")
    sneaky = good.replace(b"Audio.OGG", b"../outside.ogg")
    with zipfile.ZipFile(path, "w") as z:
        for name in ("../evil.osu", "/abs/evil.osu", "sub/../../evil2.osu", "C:/win.osu",
                     "a\\..\\..\\back.osu"):
            z.writestr(zipfile.ZipInfo(name), good)
        z.writestr("ok/../fine.osu", good)  # normalises to fine.osu: inside, kept
        z.writestr("sneaky.osu", sneaky)  # names audio outside the archive
        z.writestr("audio.ogg", b"OggS not really")
        z.writestr("__MACOSX/._fine.osu", b"\x00\x05\x16\x07 resource fork")
    return path


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    """A Songs folder; the expected discovery is spelt out in test_discovery_counts."""
    root = tmp_path_factory.mktemp("Songs")
    first, _ = synth_songs(root, 2, seed=11)  # 10 maps
    variant(first, root / "1 Case - Insensitive", ("audio.ogg", "AUDIO.Ogg"), "audio.ogg")
    variant(first, root / "2 Missing - Audio", ("audio.ogg", "nothere.mp3"), "audio.ogg")
    variant(first, root / "3 Mania - Map", ("Mode: 0", "Mode: 3"), "audio.ogg")
    binary = variant(first, root / "4 Binary - Map", ("Mode: 0", "Mode: 0"), "audio.ogg")
    (binary / "broken.osu").write_bytes(b"osu file format v14\n\x00\x00\x00")
    (root / "5 Empty folder").mkdir()
    synth_songs(root / "Pack" / "Inner", 1, seed=12)  # a pack folder two levels deep: 5 maps
    hidden = root / ".staging"
    hidden.mkdir()
    shutil.copytree(first, hidden / first.name)  # hidden: never a set
    (root / "not-a-zip.osz").write_bytes(b"this is not a zip archive")
    evil_archive(root / "evil.osz")
    shutil.copy(corpus_archive(RENATUS_QUICK), root / RENATUS_QUICK)
    return root


def test_discovery_counts(songs):
    sets, report = discover(songs)
    names = sorted(s.name for s in sets)
    assert len(names) == 6, names  # 2 synthetic, case, binary's good map, inner, evil.osz
    assert {"1 Case - Insensitive", "4 Binary - Map", "evil.osz"} <= set(names)
    assert report.sets == 6
    assert report.maps == 10 + 1 + 1 + 5 + 1
    assert dict(report.skipped) == {
        OTHER_MODE: 9 + 1,  # Renatus's taiko, catch and mania maps; the mania folder
        MISSING_AUDIO: 3 + 1 + 1,  # Renatus names "virtual"; nothere.mp3; ../outside.ogg
        UNPARSABLE: 1,  # broken.osu (NUL bytes); Renatus's __MACOSX/._*.osu forks are ignored
        NO_BEATMAPS: 1,  # the empty folder
        UNREADABLE: 1,  # not-a-zip.osz
        UNSAFE_MEMBER: 5,
    }
    assert report.examples[MISSING_AUDIO][0] == (
        f"{songs / '2 Missing - Audio' / next((songs / '2 Missing - Audio').glob('*.osu')).name}"
        " (AudioFilename 'nothere.mp3')")
    assert all(e.startswith(f"{songs / RENATUS_QUICK}::") and e.endswith(("(taiko)", "(catch)",
               "(mania)")) for e in report.examples[OTHER_MODE])
    assert all(".staging" not in str(s.path) for s in sets)


def test_report_lines_name_reasons_counts_and_paths(songs):
    _, report = discover(songs)
    text = "\n".join(report.lines())
    assert f"skipped {sum(report.skipped.values())}:" in text
    for reason, count in report.skipped.items():
        assert any(line.split() == [*reason.split(), str(count)] for line in report.lines())
    assert "not-a-zip.osz" in text and "5 Empty folder" in text


def test_audio_is_matched_ignoring_case(songs):
    sets, _ = discover(songs)
    case = next(s for s in sets if s.name == "1 Case - Insensitive")
    [entry] = case.maps
    assert entry.audio == "audio.ogg"  # as the folder spells it, not as AudioFilename does
    assert case.read(entry.audio)[:4] == b"OggS"
    with case.open() as read, pytest.raises(KeyError):
        read("../2 Missing - Audio/audio.ogg")  # a file outside the set, by a relative name


def test_each_map_names_its_audio_and_reads(songs):
    sets, _ = discover(songs)
    for song_set in sets:
        with song_set.open() as read:
            for entry in song_set.maps:
                assert read(entry.member).lstrip(b"\xef\xbb\xbf").startswith(b"osu file format")
                assert len(read(entry.audio)) > 0


def test_archive_members_never_leave_the_archive(tmp_path):
    songs = tmp_path / "Songs"
    songs.mkdir()
    evil_archive(songs / "evil.osz")
    (tmp_path / "outside.ogg").write_bytes(b"OggS outside")  # what sneaky.osu names
    (tmp_path / "evil.osu").write_bytes(b"osu file format v14\n")  # what ../evil.osu names
    sets, report = discover(songs)
    [evil] = sets
    assert [(m.member, m.audio) for m in evil.maps] == [("fine.osu", "audio.ogg")]
    assert dict(report.skipped) == {UNSAFE_MEMBER: 5, MISSING_AUDIO: 1}
    assert report.examples[UNSAFE_MEMBER] == [
        f"{songs / 'evil.osz'}::{name}" for name in ("../evil.osu", "/abs/evil.osu",
                                                    "sub/../../evil2.osu")]
    assert report.examples[MISSING_AUDIO] == [
        f"{songs / 'evil.osz'}::sneaky.osu (AudioFilename '../outside.ogg')"]
    with evil.open() as read:
        assert read("fine.osu").startswith(b"osu file format")
        for name in ("../evil.osu", "/abs/evil.osu", "../outside.ogg", "__MACOSX/._fine.osu"):
            with pytest.raises(KeyError):
                read(name)


def test_other_modes_are_named(songs):
    _, report = discover(songs / "3 Mania - Map")
    [osu] = (songs / "3 Mania - Map").glob("*.osu")
    assert dict(report.skipped) == {OTHER_MODE: 1}
    assert report.examples[OTHER_MODE] == [f"{osu} (mania)"]


@pytest.mark.parametrize(("name", "expected"), [
    ("map.osu", "map.osu"),
    ("sub/audio.mp3", "sub/audio.mp3"),
    ("sub\\audio.mp3", "sub/audio.mp3"),
    ("ok/../fine.osu", "fine.osu"),
    ("./a.osu", "a.osu"),
    ("../evil.osu", None),
    ("..", None),
    ("sub/../../evil.osu", None),
    ("a\\..\\..\\back.osu", None),
    ("/abs/evil.osu", None),
    ("\\abs\\evil.osu", None),
    ("C:/win.osu", None),
    ("c:win.osu", None),
    ("", None),
])
def test_safe_member(name, expected):
    assert safe_member(name) == expected


def test_a_set_folder_can_be_given_itself(tmp_path):
    [folder] = synth_songs(tmp_path, 1, seed=13)
    (folder / "storyboard").mkdir()  # a set's own subfolder is not an empty set
    sets, report = discover(folder)
    assert [s.path for s in sets] == [folder]
    assert report.maps == 5 and not report.skipped


def test_corpus_archives_read_in_place(tmp_path):
    """triangles.osz (mp3) is one set; ogg-beatmap.osz's resource fork is not a map."""
    for name in ("triangles.osz", "ogg-beatmap.osz"):
        shutil.copy(corpus_archive(name), tmp_path / name)
    sets, report = discover(tmp_path)
    assert [(s.name, [m.audio for m in s.maps]) for s in sets] == [
        ("ogg-beatmap.osz", ["track.ogg"]), ("triangles.osz", ["audio.mp3"])]
    assert not report.skipped
    assert len(sets[1].read("audio.mp3")) == 3_549_639  # the member's size in the archive


def test_fingerprint_follows_the_files(tmp_path):
    [folder] = synth_songs(tmp_path, 1, seed=14)
    before = discover(tmp_path)[0][0].fingerprint
    assert discover(tmp_path)[0][0].fingerprint == before
    osu = next(folder.glob("*.osu"))
    osu.write_text(osu.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert discover(tmp_path)[0][0].fingerprint != before


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_songs_folder_that_is_not_one(tmp_path, kind):
    path = tmp_path / "Songs"
    if kind == "file":
        path.write_text("not a folder")
    with pytest.raises(SongsError, match="no such folder" if kind == "missing" else "not a folder"):
        discover(path)


def test_sets_reached_again_through_links_count_once(tmp_path):
    """A link back to Songs found every set three times, and a link to a set or an archive
    inside Songs twice (QA round 9); a link to a set elsewhere still counts."""
    root = tmp_path / "Songs"
    root.mkdir()
    first, _ = synth_songs(root, 2, seed=11)
    shutil.copy(evil_archive(tmp_path / "honest.osz"), root / "0 archive.osz")
    outside = synth_songs(tmp_path / "elsewhere", 1, seed=12)[0]
    plain_sets, plain = discover(root)
    (root / "zz loop").symlink_to(root, target_is_directory=True)
    (root / "a link to the first").symlink_to(first, target_is_directory=True)
    (root / "b link.osz").symlink_to(root / "0 archive.osz")
    (root / "c outside").symlink_to(outside, target_is_directory=True)
    (root / "Favourites").mkdir()  # only a link to a set found anyway: not "no beatmaps"
    (root / "Favourites" / "fav").symlink_to(first, target_is_directory=True)
    sets, report = discover(root)
    assert len(sets) == len(plain_sets) + 1 and report.maps == plain.maps + 5
    assert report.skipped == plain.skipped
    assert len({os.path.realpath(s.path) for s in sets}) == len(sets)


def test_one_unreadable_map_leaves_the_rest_of_its_set(tmp_path, monkeypatch):
    """A difficulty the system refuses to read had dropped its whole set (QA round 9)."""
    (first,) = synth_songs(tmp_path, 1, seed=11)
    locked = sorted(first.glob("*.osu"))[0]
    read_bytes = Path.read_bytes

    def refusing(path: Path) -> bytes:
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refusing)
    (song_set,), report = discover(tmp_path)
    assert len(song_set.maps) == 4 and locked.name not in {m.member for m in song_set.maps}
    assert report.examples[UNREADABLE_MAP] == [f"{locked} (Permission denied)"]


def test_an_empty_folder_is_named_at_its_outermost(tmp_path):
    """A storyboard-only set was reported by its storyboard subfolder (QA round 9); an empty
    folder inside a pack is still named."""
    root = tmp_path / "Songs"
    (root / "778 Storyboard Only" / "sb").mkdir(parents=True)
    (root / "778 Storyboard Only" / "sb" / "bg.png").write_bytes(b"\x89PNG")
    synth_songs(root / "Pack", 1, seed=11)
    (root / "Pack" / "Empty").mkdir()
    _, report = discover(root)
    assert sorted(report.examples[NO_BEATMAPS]) == [str(root / "778 Storyboard Only"),
                                                     str(root / "Pack" / "Empty")]
