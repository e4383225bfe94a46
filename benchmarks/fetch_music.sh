#!/bin/sh
# Fetch a Debian package set of real music with known tempo (see benchmarks/midi_songs.py) and
# unpack it into DIR. Needs apt-get and dpkg-deb (Debian, Ubuntu); nothing is installed.
#   fof    Frets on Fire songs: 8 CC-BY-SA metal songs with their composers' MIDI tempo maps
#          (fretsonfire-songs-muldjord, -sectoid); DIR defaults to build/fof
#   blupi  Planet Blupi's music: 10 GPL-3+ tunes, each as MIDI and the Ogg rendered from it
#          (planetblupi-music-midi, -ogg); DIR defaults to build/blupi
#     benchmarks/fetch_music.sh fof|blupi [DIR] &&
#         .venv/bin/python benchmarks/timing_accuracy.py --fof|--blupi DIR
set -eu
case "${1:-}" in
    fof) packages="fretsonfire-songs-muldjord fretsonfire-songs-sectoid"
         inside=usr/share/games/fretsonfire/data/songs ;;
    blupi) packages="planetblupi-music-midi planetblupi-music-ogg"
           inside=usr/share/planetblupi/music ;;
    *) echo "usage: $0 fof|blupi [DIR]" >&2; exit 2 ;;
esac
dir=${2:-build/$1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download $packages)
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done
mkdir -p "$dir"
cp -r "$work/root/$inside/." "$dir/"
echo "$(find "$dir" -name '*.mid' | wc -l) MIDI files in $dir"
