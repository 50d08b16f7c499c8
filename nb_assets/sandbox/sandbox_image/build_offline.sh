#!/usr/bin/env bash
# Builds the sandbox image without a container registry:
#   debootstrap a minimal Debian bookworm (python3 only), install the pinned
#   wheels into it under chroot (finalize.sh, shared with the Dockerfile),
#   then `tar | docker import` it as a single-layer image.
# Only Debian's mirror and PyPI are contacted, and both only on a cold
# cache: the .debs (debootstrap --make-tarball) and the wheels are kept under
# $NB_ASSETS_CACHE (default ~/.cache/nb_assets), keyed by what they depend on.
#
#   sudo build_offline.sh TAG [PYTHON_WITH_PIP]
# Usually called by `nb-assets sandbox build`, which computes TAG.
set -euo pipefail

TAG=${1:?usage: build_offline.sh TAG [PYTHON_WITH_PIP]}
HOST_PY=${2:-python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${NB_ASSETS_CACHE:-$HOME/.cache/nb_assets}
# debootstrap's own default mirror, unless NB_ASSETS_DEBIAN_MIRROR names another.
MIRROR=${NB_ASSETS_DEBIAN_MIRROR:-}
SUITE=bookworm            # its python3 is 3.11, like the wheels below
PY_VERSION=3.11
PIP_VERSION=26.3          # runs once from its wheel; not installed
PACKAGES=python3

say() { printf '[build_offline %4ss] %s\n' "$SECONDS" "$*"; }
die() { printf '[build_offline] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot); or build with the Dockerfile"
command -v docker >/dev/null || die "the docker CLI is missing"
if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

DEB_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
case $(uname -m) in
    x86_64) WHEEL_ARCH=x86_64 ;;
    aarch64) WHEEL_ARCH=aarch64 ;;
    *) die "unsupported machine $(uname -m)" ;;
esac
mkdir -p "$CACHE"

# Scratch space on disk; removed on every exit path. Mounts debootstrap may
# have left are undone first, and rm never crosses into another filesystem.
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/nb-assets-rootfs.XXXXXX")
ROOTFS=$WORK/rootfs
cleanup() {
    local m
    for m in $(awk -v w="$WORK" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # exiting runs the EXIT trap

# 1. Debian packages: fetched once into a tarball, then unpacked offline.
DEBS=$CACHE/debootstrap-$SUITE-$DEB_ARCH-minbase-${PACKAGES//,/-}.tgz
if [ ! -s "$DEBS" ]; then
    say "downloading Debian $SUITE packages from ${MIRROR:-the debootstrap default mirror} (cached as $DEBS)"
    debootstrap --variant=minbase --include="$PACKAGES" --make-tarball="$DEBS.part" \
        "$SUITE" "$WORK/download" ${MIRROR:+"$MIRROR"} >"$WORK/debootstrap-download.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap-download.log"; die "debootstrap download failed"; }
    mv "$DEBS.part" "$DEBS"
fi
say "debootstrap --variant=minbase $SUITE + $PACKAGES"
debootstrap --variant=minbase --include="$PACKAGES" --unpack-tarball="$DEBS" \
    "$SUITE" "$ROOTFS" ${MIRROR:+"$MIRROR"} >"$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log"; die "debootstrap failed"; }
say "base system: $(du -sh --one-file-system "$ROOTFS" | cut -f1)"

# 2. Wheels for the image's python (cp311, manylinux), whatever the host's
# python is. Keyed by the requirements, so a warm cache needs no network.
REQ_KEY=$(cat "$HERE/requirements.txt" <(echo "$PIP_VERSION $PY_VERSION $WHEEL_ARCH") | sha256sum | cut -c1-16)
WHEELS=$CACHE/wheels-$REQ_KEY
if [ ! -f "$WHEELS/.complete" ]; then
    say "downloading wheels into $WHEELS"
    PLATFORMS=()
    for minor in $(seq 36 -1 17); do PLATFORMS+=(--platform "manylinux_2_${minor}_$WHEEL_ARCH"); done
    PLATFORMS+=(--platform "manylinux2014_$WHEEL_ARCH")
    [ "$WHEEL_ARCH" = x86_64 ] && PLATFORMS+=(--platform manylinux2010_x86_64 --platform manylinux1_x86_64)
    "$HOST_PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        --python-version "$PY_VERSION" --implementation cp --abi "cp${PY_VERSION/./}" "${PLATFORMS[@]}" \
        --dest "$WHEELS" -r "$HERE/requirements.txt" "pip==$PIP_VERSION"
    touch "$WHEELS/.complete"
fi
# Wheels of older requirements are dead weight (~120 MB each).
find "$CACHE" -maxdepth 1 -name 'wheels-*' ! -name "wheels-$REQ_KEY" -exec rm -rf {} +
say "wheels: $(ls "$WHEELS"/*.whl | wc -l) files, $(du -sh "$WHEELS" | cut -f1)"

# 3. Install and trim inside the new root, exactly as the Dockerfile does.
mkdir -p "$ROOTFS/tmp/nb-build/wheels"
cp "$HERE/requirements.txt" "$HERE/finalize.sh" "$ROOTFS/tmp/nb-build/"
cp "$WHEELS"/*.whl "$ROOTFS/tmp/nb-build/wheels/"
chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root /bin/sh /tmp/nb-build/finalize.sh /tmp/nb-build
say "image root: $(du -sh --one-file-system "$ROOTFS" | cut -f1)"

# 4. One layer, configured like the Dockerfile's final stage.
say "docker import as $TAG"
tar --numeric-owner --one-file-system -C "$ROOTFS" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' -c . \
  | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV HOME=/home/nb' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENV MPLBACKEND=Agg' \
    --change 'LABEL org.opencontainers.image.title=nb-assets-sandbox' \
    --change 'LABEL nb_assets.build=offline' \
    --change 'WORKDIR /nb/work' \
    --change 'USER 1000:1000' \
    --change 'CMD ["python3"]' \
    --message "nb_assets sandbox image (offline build)" - "$TAG" >/dev/null
SIZE=$(docker image inspect --format '{{.Size}}' "$TAG")
say "built $TAG: $((SIZE / 1000000)) MB"
