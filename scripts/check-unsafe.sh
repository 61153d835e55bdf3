#!/usr/bin/env bash
# Fails if the Rust sources outside kext/ mention `unsafe` in any form (an unsafe block, fn,
# impl or trait, or a lint attribute that would allow them), except logic/'s
# `#![forbid(unsafe_code)]`. kext/ is the only layer that may hold unsafe code; Kbuild makes the
# unsafe_code lint an error for the modules, and this check keeps anyone from allowing it back.
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(git grep -n -I -e unsafe -- '*.rs' ':!kext/' \
    | grep -v -E '^logic/lib\.rs:[0-9]+:#!\[forbid\(unsafe_code\)\]$' || true)
# Untracked files too (a new module file that is not committed yet).
extra=$(git ls-files -o --exclude-standard -- '*.rs' | grep -v '^kext/' | xargs -r grep -n -H unsafe || true)
if [ -n "$hits$extra" ]; then
    printf 'unsafe outside kext/:\n%s\n%s\n' "$hits" "$extra" >&2
    exit 1
fi
