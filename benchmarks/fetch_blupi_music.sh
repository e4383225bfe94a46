#!/bin/sh
# Fetch Planet Blupi's music Debian packages (10 GPL-3+ game tunes, each as MIDI and as the Ogg
# rendered from it: real arrangements with exact tempo, 3 of them slow; see
# benchmarks/midi_songs.py) and unpack the tunes into DIR (default build/blupi). Needs apt-get
# and dpkg-deb (Debian, Ubuntu); nothing is installed.
#     benchmarks/fetch_blupi_music.sh [DIR] && .venv/bin/python benchmarks/timing_accuracy.py --blupi DIR
set -eu
dir=${1:-build/blupi}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download planetblupi-music-midi planetblupi-music-ogg)
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done
mkdir -p "$dir"
cp "$work"/root/usr/share/planetblupi/music/music* "$dir/"
echo "$(find "$dir" -name 'music*.mid' | wc -l) tunes in $dir"
