#!/usr/bin/env bash
# Makes self-contained archives of pipeline-node and pipeline for boards that have no .NET:
#   tools/publish.sh [--rid linux-arm64|linux-x64|all] [--out DIR] [--version V]
# Each archive, DIR/pipelineactors-VERSION-RID.tar.gz, unpacks to one folder holding bin/ (both
# commands, the .NET runtime, ONNX Runtime's native library for RID, the bundled models), systemd/
# (unit and env file), hocon/reference.conf (every default, for reading: the binaries embed it) and
# install.sh. Intermediate files go to DIR/.build, so a second run is incremental and the working tree's
# bin/ and obj/ folders are never touched.
set -euo pipefail

fail() {
  echo "publish.sh: $1" >&2
  exit 2
}

usage() {
  echo "usage: tools/publish.sh [--rid linux-arm64|linux-x64|all] [--out DIR] [--version V]"
}

rid_arg="all"
out=""
version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rid)
      [ $# -ge 2 ] || fail "--rid needs a value: linux-arm64, linux-x64 or all."
      rid_arg="$2"; shift 2 ;;
    --out)
      [ $# -ge 2 ] || fail "--out needs a folder."
      out="$2"; shift 2 ;;
    --version)
      [ $# -ge 2 ] || fail "--version needs a value, e.g. 1.2.0."
      version="$2"; shift 2 ;;
    -h|--help)
      usage; exit 0 ;;
    *)
      fail "unknown argument '$1'; $(usage)" ;;
  esac
done

case "$rid_arg" in
  linux-arm64|linux-x64) rids=("$rid_arg") ;;
  all) rids=(linux-arm64 linux-x64) ;;
  *) fail "--rid is '$rid_arg'; write linux-arm64, linux-x64 or all." ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -n "$out" ] || out="$repo/out"
command -v dotnet >/dev/null 2>&1 || fail "dotnet is not on PATH; install the .NET SDK named in global.json."
command -v tar >/dev/null 2>&1 || fail "tar is not on PATH."
if [ -z "$version" ]; then
  # No release tags yet: the commit names the build (with -dirty for uncommitted changes).
  version="$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)"
fi
[[ "$version" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || fail "--version '$version' may hold only letters, digits and . _ + -."

mkdir -p "$out" 2>/dev/null || fail "cannot create the output folder '$out'."
out="$(cd "$out" && pwd)"
build="$out/.build"
artifacts="$build/artifacts"
mkdir -p "$build"

# 'file' names the machine an ELF file is for; the archive must carry the RID's native libraries.
expected_machine() {
  case "$1" in
    linux-arm64) echo "ARM aarch64" ;;
    linux-x64) echo "x86-64" ;;
  esac
}

publish_project() {
  local project="$1" rid="$2" dest="$3" log="$4"
  if ! dotnet publish "$repo/src/$project" -c Release -r "$rid" --self-contained \
      --artifacts-path "$artifacts" -o "$dest" -nologo -v minimal >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    local refused
    refused="$(grep -o 'error NU1[0-9]*: [^[]*' "$log" | sort -u | head -n 3 || true)"
    if [ -n "$refused" ]; then
      fail "restoring $project for $rid failed (a package the feed does not serve: $refused); full log: $log"
    fi
    fail "dotnet publish of $project for $rid failed; full log: $log"
  fi
}

for rid in "${rids[@]}"; do
  name="pipelineactors-$version-$rid"
  stage="$build/$name"
  rm -rf "$stage"
  mkdir -p "$stage/bin" "$stage/systemd" "$stage/hocon"
  started=$SECONDS
  echo "publishing $name ..."
  # The CLI carries the node's assemblies (pipeline run starts node processes from its own folder) but not
  # pipeline-node.deps.json; the node's own publish, second, adds that and leaves the node's files as it makes them.
  publish_project PipelineActors.Cli "$rid" "$stage/bin" "$build/publish-cli-$rid.log"
  publish_project PipelineActors.Node "$rid" "$stage/bin" "$build/publish-node-$rid.log"

  for binary in pipeline pipeline-node libonnxruntime.so; do
    [ -f "$stage/bin/$binary" ] || fail "the $rid publish has no bin/$binary; see $build/publish-*-$rid.log."
  done
  if command -v file >/dev/null 2>&1; then
    machine="$(expected_machine "$rid")"
    for binary in pipeline pipeline-node libonnxruntime.so; do
      file -b "$stage/bin/$binary" | grep -q "$machine" \
        || fail "bin/$binary of the $rid archive is not built for $machine: $(file -b "$stage/bin/$binary")"
    done
  else
    echo "warning: 'file' is not installed, so the native libraries' machine was not checked" >&2
  fi

  cp "$repo/tools/install.sh" "$stage/install.sh"
  chmod 0755 "$stage/install.sh"
  cp "$repo/tools/systemd/pipeline-node.service" "$repo/tools/systemd/pipeline-node.env" "$stage/systemd/"
  cp "$repo/hocon/reference.conf" "$stage/hocon/"
  cp "$repo/LICENSE" "$stage/"
  cp -r "$repo/models/LICENSES" "$stage/bin/models/"
  commit="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
  printf 'version=%s\nrid=%s\ncommit=%s\n' "$version" "$rid" "$commit" >"$stage/VERSION"

  # Written whole or not at all: a half-written archive never carries the final name.
  archive="$out/$name.tar.gz"
  tar -C "$build" --owner=0 --group=0 --numeric-owner -czf "$archive.partial" "$name"
  mv -f "$archive.partial" "$archive"
  size="$(du -m "$archive" | cut -f1)"
  echo "$archive ($size MB, $((SECONDS - started)) s)"
done
