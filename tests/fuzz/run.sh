#!/bin/sh
# Runs one libFuzzer target for N seconds, starting from its seed corpus.
#   tests/fuzz/run.sh BUILD_DIR TARGET SECONDS
# New inputs go to a scratch directory, never into the committed corpus.
set -eu
build=${1:?build dir}; target=${2:?target}; seconds=${3:-20}
here=$(cd "$(dirname "$0")" && pwd)
bin="$build/tests/fuzz/fuzz_$target"
[ -x "$bin" ] || { echo "run.sh: $bin not built (configure with the fuzz preset)" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dict=""
[ -f "$here/$target.dict" ] && dict="-dict=$here/$target.dict"
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 $dict "$scratch" "$here/corpus/$target"
