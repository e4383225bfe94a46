#!/bin/sh
# Fetch a Debian package set of real music with known tempo (see benchmarks/midi_songs.py) and
# unpack it into DIR. Needs apt-get and dpkg-deb (Debian, Ubuntu); nothing is installed.
#   fof    Frets on Fire songs: 8 CC-BY-SA metal songs with their composers' MIDI tempo maps
#          (fretsonfire-songs-muldjord, -sectoid); DIR defaults to build/fof
#   blupi  Planet Blupi's music: 10 GPL-3+ tunes, each as MIDI and the Ogg rendered from it
#          (planetblupi-music-midi, -ogg); DIR defaults to build/blupi
#   gm     General MIDI songs: Freedoom's WADs (their music is MIDI) and OpenTTD's openmsx
#          MIDI files, with the FluidR3 GM soundfont that renders them (freedoom,
#          openttd-openmsx, fluid-soundfont-gm); rendering needs fluidsynth (apt install
#          fluidsynth); DIR defaults to build/gm
#     benchmarks/fetch_music.sh fof|blupi|gm [DIR] &&
#         .venv/bin/python benchmarks/timing_accuracy.py --fof|--blupi|--gm DIR
set -eu
case "${1:-}" in
    fof) packages="fretsonfire-songs-muldjord fretsonfire-songs-sectoid"
         inside=usr/share/games/fretsonfire/data/songs ;;
    blupi) packages="planetblupi-music-midi planetblupi-music-ogg"
           inside=usr/share/planetblupi/music ;;
    gm) packages="freedoom openttd-openmsx fluid-soundfont-gm"
        inside="usr/share/games/doom/freedoom1.wad usr/share/games/doom/freedoom2.wad
                usr/share/games/openttd/baseset/openmsx/*.mid usr/share/sounds/sf2/FluidR3_GM.sf2" ;;
    *) echo "usage: $0 fof|blupi|gm [DIR]" >&2; exit 2 ;;
esac
dir=${2:-build/$1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download $packages)
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done
mkdir -p "$dir"
set -f  # the patterns in $inside are matched under the unpacked packages only
for path in $inside; do
    set +f
    for found in "$work/root/"$path; do
        [ -e "$found" ] || { echo "$0: no $path in $packages" >&2; exit 1; }
        if [ -d "$found" ]; then cp -r "$found/." "$dir/"; else cp "$found" "$dir/"; fi
    done
    set -f
done
set +f
echo "$(find "$dir" -name '*.mid' | wc -l) MIDI files, $(find "$dir" -name '*.wad' | wc -l) WADs in $dir"
