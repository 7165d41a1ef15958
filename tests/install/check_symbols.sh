#!/bin/sh
# Fails if the shared library exports any symbol outside mailproto_*.
set -eu
lib=${1:?shared library}
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}')
[ -n "$syms" ] || { echo "no exported symbols found in $lib" >&2; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^mailproto_' || true)
if [ -n "$bad" ]; then
  echo "symbols exported outside the mailproto_ prefix:" >&2
  printf '%s\n' "$bad" >&2
  exit 1
fi
echo "$(printf '%s\n' "$syms" | wc -l) exported symbols, all mailproto_*"
