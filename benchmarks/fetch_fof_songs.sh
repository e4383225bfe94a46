#!/bin/sh
# Fetch the Frets on Fire songs Debian packages (8 CC-BY-SA metal songs with their composers'
# MIDI tempo maps: real music with known tempo for benchmarks/timing_accuracy.py and
# generated_maps.py) and unpack their songs into DIR (default build/fof). Needs apt-get and
# dpkg-deb (Debian, Ubuntu); nothing is installed.
#     benchmarks/fetch_fof_songs.sh [DIR] && .venv/bin/python benchmarks/timing_accuracy.py --fof DIR
set -eu
dir=${1:-build/fof}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download fretsonfire-songs-muldjord fretsonfire-songs-sectoid)
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done
mkdir -p "$dir"
cp -r "$work/root/usr/share/games/fretsonfire/data/songs/." "$dir/"
echo "$(find "$dir" -name notes.mid | wc -l) songs in $dir"
