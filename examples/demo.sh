#!/usr/bin/env bash
# The main job on a built-in example: compile a real C program (a ~3,000-line scripting
# language interpreter, crates/smf/tests/programs/interp) with the system C compiler, pack
# its objects into an SMF executable, show what is inside, verify it, and run it — next to
# the same objects linked natively, so the two outputs can be compared.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cc >/dev/null || { echo "demo: needs a C compiler (cc); install gcc" >&2; exit 1; }

echo "== building smf: cargo build --release -p smf (a few minutes the first time, cargo shows each crate)"
cargo build --release -p smf
smf=target/release/smf
src=crates/smf/tests/programs/interp
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== compiling $src/*.c with cc -O2 -fPIC"
for c in "$src"/*.c; do cc -std=gnu11 -O2 -fPIC -c "$c" -o "$work/$(basename "${c%.c}").o"; done

echo "== smf pack --entry main --needed libm.so.6 -> interp.sme"
"$smf" pack -o "$work/interp.sme" --entry main --needed libm.so.6 "$work"/*.o
ls -l "$work/interp.sme" | awk '{print "   " $5 " bytes"}'

echo "== smf inspect (header and sections)"
"$smf" inspect "$work/interp.sme" | sed -n '1,/^Symbols/p' | sed '$d'

echo "== smf verify"
"$smf" verify "$work/interp.sme"

echo "== smf run interp.sme $src/script.sl"
set +e
"$smf" run "$work/interp.sme" "$src/script.sl" > "$work/smf.out"
smf_status=$?
cc -o "$work/native" "$work"/*.o -lm
"$work/native" "$src/script.sl" > "$work/native.out"
native_status=$?
set -e
tail -n 5 "$work/smf.out"
echo "== exit status: smf run $smf_status, native $native_status"
if cmp -s "$work/smf.out" "$work/native.out" && [ "$smf_status" = "$native_status" ]; then
  echo "== output identical to the native build ($(wc -l < "$work/smf.out") lines)"
else
  echo "== output DIFFERS from the native build" >&2
  diff "$work/native.out" "$work/smf.out" >&2 || true
  exit 1
fi
