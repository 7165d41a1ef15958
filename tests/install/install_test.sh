#!/bin/sh
# Installs the build into a temporary prefix, then builds and runs a small
# consumer program against it: through find_package (shared and static
# targets), through add_subdirectory of the source tree, and through
# pkg-config.
#   install_test.sh BUILD_DIR THIS_DIR CC CMAKE
set -eu
build=${1:?}; here=${2:?}; cc=${3:?}; cmake=${4:?}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; exit 1; }
for f in include/mailproto/mailproto.h include/mailproto/store.h \
         include/mailproto/memstore.h; do
  [ -f "$prefix/$f" ] || { echo "missing $f after install"; exit 1; }
done
libdir=$(dirname "$(find "$prefix" -name 'libmailproto.so' | head -n 1)")
[ -f "$libdir/libmailproto.a" ] || { echo "static library not installed"; exit 1; }
[ -f "$libdir/pkgconfig/mailproto.pc" ] || { echo "mailproto.pc not installed"; exit 1; }
# No internal header may leak into the installed tree.
if find "$prefix/include" -name '*.h' | grep -v '/include/mailproto/'; then
  echo "unexpected headers installed"; exit 1
fi

echo "== find_package"
"$cmake" -S "$here/consumer" -B "$work/consumer-build" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
"$cmake" --build "$work/consumer-build" >>"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log"; exit 1; }
"$work/consumer-build/consumer"
"$work/consumer-build/consumer_static"

echo "== add_subdirectory"
"$cmake" -S "$here/consumer" -B "$work/subdir-build" \
  -DMAILPROTO_SOURCE_DIR="$(cd "$here/../.." && pwd)" -DCMAKE_C_COMPILER="$cc" \
  >"$work/subdir.log" 2>&1 || { cat "$work/subdir.log"; exit 1; }
"$cmake" --build "$work/subdir-build" -j2 >>"$work/subdir.log" 2>&1 ||
  { cat "$work/subdir.log"; exit 1; }
"$work/subdir-build/consumer"
"$work/subdir-build/consumer_static"

echo "== pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
"$cc" -o "$work/consumer-pc" "$here/consumer/consumer.c" \
  $(pkg-config --cflags --libs mailproto)
LD_LIBRARY_PATH="$libdir" "$work/consumer-pc"
# shellcheck disable=SC2046
"$cc" -o "$work/consumer-pc-static" "$here/consumer/consumer.c" \
  $(pkg-config --static --cflags mailproto) "$libdir/libmailproto.a"
"$work/consumer-pc-static"
# The C++ compiler must accept the public headers too.
if command -v c++ >/dev/null 2>&1; then
  echo "== headers as C++"
  for h in "$prefix"/include/mailproto/*.h; do
    printf '#include <mailproto/%s>\n' "$(basename "$h")"
  done >"$work/all.cpp"
  c++ -fsyntax-only -Wall -Wextra -Werror -I"$prefix/include" "$work/all.cpp"
fi
echo "install test passed"
