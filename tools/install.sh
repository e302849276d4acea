#!/usr/bin/env bash
# Installs an unpacked PipelineActors archive (made by tools/publish.sh) on this machine:
#   sudo ./install.sh [--prefix DIR]
# It creates the 'pipeline' system user, puts the archive's files in /opt/pipelineactors (bin/pipeline-node,
# bin/pipeline, linked from /usr/local/bin), the unit in /etc/systemd/system and the env file in
# /etc/pipelineactors, then runs systemctl daemon-reload. Running it again upgrades the binaries and the unit
# and keeps an edited env file. --prefix DIR installs under DIR instead of / (for tests and image builds):
# the user goes into DIR/etc/passwd when that file exists, and systemd is left alone.
set -euo pipefail

fail() {
  echo "install.sh: $1" >&2
  exit 2
}

prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix)
      [ $# -ge 2 ] || fail "--prefix needs a folder."
      prefix="$2"; shift 2 ;;
    -h|--help)
      echo "usage: sudo ./install.sh [--prefix DIR]"; exit 0 ;;
    *)
      fail "unknown argument '$1'; usage: sudo ./install.sh [--prefix DIR]" ;;
  esac
done

source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ -x "$source_dir/bin/pipeline-node" ] && [ -f "$source_dir/VERSION" ] \
  || fail "run install.sh from an unpacked archive made by tools/publish.sh (no bin/pipeline-node beside it)."
rid="$(sed -n 's/^rid=//p' "$source_dir/VERSION")"

if [ -n "$prefix" ]; then
  mkdir -p "$prefix" 2>/dev/null || fail "cannot create the prefix folder '$prefix'."
  prefix="$(cd "$prefix" && pwd)"
else
  [ "$(id -u)" -eq 0 ] || fail "install.sh writes to /opt and /etc: run it as root (sudo ./install.sh)."
  # A prefix may stage another machine's archive; the real thing must match this machine.
  case "$(uname -m)" in
    aarch64|arm64) machine_rid="linux-arm64" ;;
    x86_64|amd64) machine_rid="linux-x64" ;;
    *) machine_rid="unsupported ($(uname -m))" ;;
  esac
  [ "$rid" = "$machine_rid" ] || fail "this archive is for $rid but this machine is $machine_rid; use the matching archive."
fi

opt="$prefix/opt/pipelineactors"
etc="$prefix/etc/pipelineactors"
unit_dir="$prefix/etc/systemd/system"
bin_links="$prefix/usr/local/bin"

# The service runs as an unprivileged system user with no login and no home of its own.
user_args=(--system --user-group --no-create-home --home-dir /var/lib/pipelineactors --shell /usr/sbin/nologin)
if [ -z "$prefix" ]; then
  if id -u pipeline >/dev/null 2>&1; then
    echo "user pipeline exists"
  else
    command -v useradd >/dev/null 2>&1 || fail "useradd is not on PATH; create a system user 'pipeline' by hand."
    useradd "${user_args[@]}" pipeline
    echo "created system user pipeline"
  fi
elif [ -f "$prefix/etc/passwd" ]; then
  if grep -q '^pipeline:' "$prefix/etc/passwd"; then
    echo "user pipeline exists in $prefix/etc/passwd"
  else
    useradd --prefix "$prefix" "${user_args[@]}" pipeline
    echo "created system user pipeline in $prefix/etc/passwd"
  fi
else
  echo "no $prefix/etc/passwd: the pipeline user is not created"
fi

# The new tree is copied beside the old one and swapped in, so a failed copy leaves the old install whole
# and a running node keeps the files it has open.
mkdir -p "$prefix/opt"
rm -rf "$opt.new" "$opt.old"
mkdir "$opt.new"
cp -a "$source_dir/." "$opt.new/"
chmod -R u=rwX,go=rX "$opt.new"
# Whoever unpacked the archive, the service user may read the binaries but never change them.
[ -n "$prefix" ] || chown -R root:root "$opt.new"
if [ -e "$opt" ]; then
  mv "$opt" "$opt.old"
fi
mv "$opt.new" "$opt"
rm -rf "$opt.old"
echo "installed $(sed -n 's/^version=//p' "$opt/VERSION") ($rid) in $opt"

mkdir -p "$bin_links"
ln -sfn ../../../opt/pipelineactors/bin/pipeline "$bin_links/pipeline"
ln -sfn ../../../opt/pipelineactors/bin/pipeline-node "$bin_links/pipeline-node"

# The unit belongs to the package and is replaced; local changes go in a drop-in (systemctl edit pipeline-node).
install -D -m 0644 "$source_dir/systemd/pipeline-node.service" "$unit_dir/pipeline-node.service"

# The env file is the user's: written once, never overwritten. systemd reads it as root, so no one else needs to.
mkdir -p "$etc"
chmod 0755 "$etc"
if [ ! -e "$etc/pipeline-node.env" ]; then
  install -m 0640 "$source_dir/systemd/pipeline-node.env" "$etc/pipeline-node.env"
  echo "wrote $etc/pipeline-node.env: set PIPELINE_SEEDS, PIPELINE_ROLES and PIPELINE_PUBLIC_HOSTNAME there,"
  echo "  and put this node's TLS folder (pipeline certs issue ... --out DIR) in $etc/tls, owned by the pipeline user"
elif cmp -s "$source_dir/systemd/pipeline-node.env" "$etc/pipeline-node.env"; then
  echo "kept $etc/pipeline-node.env (unchanged)"
else
  install -m 0640 "$source_dir/systemd/pipeline-node.env" "$etc/pipeline-node.env.new"
  echo "kept your $etc/pipeline-node.env; this version's defaults are in pipeline-node.env.new"
fi

if [ -n "$prefix" ]; then
  echo "--prefix: systemd left alone (no daemon-reload)"
elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  echo "next: edit $etc/pipeline-node.env, then systemctl enable --now pipeline-node; journalctl -u pipeline-node -f"
else
  echo "systemd is not running here: run systemctl daemon-reload once it is"
fi
