#!/usr/bin/env bash
# Usage: macos_libomp.sh SUBDIR PREFIX
# Unpacks conda-forge's llvm-openmp for SUBDIR (osx-64 or osx-arm64) into
# PREFIX (PREFIX/include/omp.h, PREFIX/lib/libomp.dylib), once. These builds
# target macOS 10.9 (osx-64) and 11.0 (osx-arm64), older than the wheels'
# MACOSX_DEPLOYMENT_TARGET, so delocate can bundle libomp without raising the
# wheel's minimum macOS (Homebrew's libomp targets the runner's own macOS).
set -euo pipefail
subdir=$1
prefix=$2
case "$subdir" in
  osx-64) pkg=llvm-openmp-11.1.0-hda6cdc1_1.tar.bz2 ;;
  osx-arm64) pkg=llvm-openmp-11.1.0-hf3c4609_1.tar.bz2 ;;
  *) echo "unknown conda subdir: $subdir" >&2; exit 2 ;;
esac
if [ -f "$prefix/lib/libomp.dylib" ]; then exit 0; fi
mkdir -p "$prefix"
curl -fsSL --retry 3 -o "$prefix/$pkg" \
  "https://anaconda.org/conda-forge/llvm-openmp/11.1.0/download/$subdir/$pkg"
tar -xjf "$prefix/$pkg" -C "$prefix"
rm "$prefix/$pkg"
ls -l "$prefix/lib/libomp.dylib" "$prefix/include/omp.h"
