#!/usr/bin/env bash
# The main job on a built-in example: hot reload with state kept.
#
# `smf dev` compiles a small C program with the system C compiler, packs it into a reloadable
# module and calls its `tick` function every 300 ms. The script then edits the source three
# times, as a person would: a new message (the counter keeps counting), a syntax error (the
# old code keeps running), and a fix that also changes the step.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cc >/dev/null || { echo "reload-demo: needs a C compiler (cc); install gcc" >&2; exit 1; }

echo "== building smf: cargo build --release -p smf (a few minutes the first time, cargo shows each crate)"
cargo build --release -p smf
echo "== built target/release/smf"
smf="$PWD/target/release/smf"
work=$(mktemp -d)
trap 'kill "$dev" 2>/dev/null || true; rm -rf "$work"' EXIT
src="$work/counter.c"

version() { # version MESSAGE STEP
  cat > "$src.tmp" <<C
#include <stdio.h>
long ticks;                       /* state: kept across reloads */
void tick(void) {
    ticks += $2;
    printf("[$1] ticks = %ld\n", ticks);
}
C
  mv "$src.tmp" "$src"
}

version "version 1" 1
echo "== smf dev --call tick --every 300 counter.c"
"$smf" dev --call tick --every 300 "$src" &
dev=$!
sleep 1.6

echo "== edit: new message"
version "version 2, edited" 1
sleep 1.6

echo "== edit: a syntax error (the running code is kept)"
printf '#include <stdio.h>\nlong ticks;\nvoid tick(void) { ticks += 1 printf("oops"); }\n' > "$src.tmp" && mv "$src.tmp" "$src"
sleep 1.6

echo "== edit: fixed, counting by 10"
version "version 3, by tens" 10
sleep 1.6
echo "== done"
