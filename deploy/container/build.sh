#!/usr/bin/env bash
# `make image`: build the medops image with buildah from a Debian base made by debootstrap,
# state its size, write its SBOM and smoke-test it on a fresh PostgreSQL database.
#
#   deploy/container/build.sh
#
# Needs root, buildah, debootstrap, a reachable Debian mirror and PyPI, the PostgreSQL at
# 127.0.0.1:5432 (user postgres, trust) and .venv (`make setup`). A missing tool FAILS the
# stage; nothing is skipped.
#
# Environment:
#   DEBIAN_MIRROR           Debian mirror (default: the one this machine's apt uses)
#   DEBIAN_SECURITY_MIRROR  Debian security mirror (default: likewise)
#   MEDOPS_IMAGE            the image's name (default localhost/medops:<version>)
#   MEDOPS_IMAGE_SOURCE     org.opencontainers.image.source (default: git's origin URL)
#   MEDOPS_IMAGE_KEEP=1     keep the built image and base in buildah's store (default: removed
#                           on exit, as CI wants; push it before, e.g. `buildah push`)
#   MEDOPS_BUILD_CA_BUNDLE  CA bundle pip and uv trust while building (a TLS-inspecting
#                           proxy's CA); default: $SSL_CERT_FILE, else Debian's bundle here.
#                           A build secret: it is in no layer of the image.
#   MEDOPS_IMAGE_REUSE_BASE=1  reuse a base left by MEDOPS_IMAGE_KEEP=1 (local iterations;
#                           CI makes it afresh)
#   MEDOPS_SMOKE_POSTGRES   admin URL of the PostgreSQL for the smoke test
#                           (default postgresql://postgres@127.0.0.1:5432/postgres)
#
# Writes image-report/size.txt (the image's size and the build time) and
# image-report/sbom.cdx.json (CycloneDX: the venv's Python packages and the Debian packages).
set -euo pipefail
cd "$(dirname "$0")/../.."

started=$SECONDS
say() { echo "== image: $*"; }
# Prefix each line with the seconds since the stage began (the build's log shows where time goes).
elapsed() {
    local line
    while IFS= read -r line; do printf '%4d s| %s\n' "$((SECONDS - started))" "$line"; done
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# -- what the stage needs (fail, never skip) --------------------------------------------
[ "$(id -u)" = 0 ] || fail "build.sh runs as root (debootstrap, buildah's chroot isolation, mounts)"
for tool in buildah debootstrap unshare chroot git; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (Debian: apt-get install $tool)"
done
[ -x .venv/bin/python ] || fail ".venv is missing: run make setup"

version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/medops/__init__.py)"
uv_version="$(sed -n 's/^UV_VERSION := //p' Makefile)"
[ -n "$version" ] || fail "no __version__ in src/medops/__init__.py"
[ -n "$uv_version" ] || fail "no UV_VERSION in the Makefile"
grep -q "^uv==${uv_version} " deploy/container/uv-requirements.txt \
    || fail "deploy/container/uv-requirements.txt does not pin uv==${uv_version} (the Makefile's)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    revision="${revision}-dirty"
fi
# Reproducible-ish: the image's creation time is the commit's.
epoch="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
created="$(date -u -d "@${epoch}" +%Y-%m-%dT%H:%M:%SZ)"
source_url="${MEDOPS_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo https://example.invalid/medops)}"
image="${MEDOPS_IMAGE:-localhost/medops:${version}}"
base="localhost/medops-base:bookworm"

# The mirrors this machine's apt uses (deb822 debian.sources or sources.list), else Debian's.
apt_uri() {
    local suite_re="$1"
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk -v re="$suite_re" '/^URIs:/ {u=$2} /^Suites:/ && $0 ~ re {print u; exit}'
}
mirror="${DEBIAN_MIRROR:-$(apt_uri ' bookworm( |$)')}"
mirror="${mirror:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-$(apt_uri 'bookworm-security')}"
security="${security:-http://deb.debian.org/debian-security}"

report=image-report
mkdir -p "$report"
work="$(mktemp -d /var/tmp/medops-image.XXXXXX)"
base_ctr=""
cleanup() {
    local rc=$?
    set +e  # clean up everything, whatever fails
    [ -n "$base_ctr" ] && buildah rm "$base_ctr" >/dev/null 2>&1
    if mountpoint -q "$work"; then umount "$work" || umount -l "$work"; fi
    rm -rf "$work"
    if [ "${MEDOPS_IMAGE_KEEP:-0}" != 1 ]; then
        buildah rmi -f "$image" "$base" >/dev/null 2>&1
        buildah rmi --prune >/dev/null 2>&1
    fi
    if [ "$rc" = 0 ]; then say "PASS in $((SECONDS - started)) s"; else echo "FAIL: make image (exit $rc)" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- 1. the base: debootstrap minbase bookworm, imported with buildah -----------------------
debootstrap_s=0
if [ "${MEDOPS_IMAGE_REUSE_BASE:-0}" = 1 ] && buildah inspect --type image "$base" >/dev/null 2>&1; then
    say "reusing $base (MEDOPS_IMAGE_REUSE_BASE=1)"
else
# Into a tmpfs: dpkg's fsyncs cost nothing there.
mount -t tmpfs -o size=3g,mode=0755 tmpfs "$work" || true
rootfs="$work/rootfs"
debs="${XDG_CACHE_HOME:-$HOME/.cache}/medops-image/debootstrap"
mkdir -p "$debs"
say "debootstrap --variant=minbase bookworm from $mirror"
t0=$SECONDS
debootstrap --variant=minbase --cache-dir="$debs" bookworm "$rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    fail "debootstrap failed (mirror $mirror)"
}
debootstrap_s=$((SECONDS - t0))

cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
# apt and dpkg as slim images set them: no recommends, no package caches, no docs beyond the
# copyright files, no man pages or translations; dpkg without fsync (an image build is redone,
# not recovered).
cat >"$rootfs/etc/apt/apt.conf.d/90medops-image" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90medops-image" <<'EOF'
force-unsafe-io
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
    "$rootfs"/debootstrap "$rootfs"/dev/*
# The runtime provides these; an empty machine-id, as systemd expects in images.
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id"

say "importing the base as $base"
base_ctr="$(buildah from scratch)"
mnt="$(buildah mount "$base_ctr")"
tar -C "$rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
buildah umount "$base_ctr" >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash \
    --label org.opencontainers.image.title=medops-base \
    --label "org.opencontainers.image.description=Debian 12 bookworm minbase (debootstrap)" \
    "$base_ctr"
buildah commit --quiet --rm --timestamp "$epoch" --identity-label=false "$base_ctr" "$base" >/dev/null
base_ctr=""
rm -rf "$rootfs"
fi
say "base ready after $((SECONDS - started)) s"

# -- 2. the image ------------------------------------------------------------------------
say "buildah bud $image (base $base, uv $uv_version)"
t0=$SECONDS
ca_bundle="${MEDOPS_BUILD_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
[ -s "$ca_bundle" ] || fail "no CA bundle at $ca_bundle (set MEDOPS_BUILD_CA_BUNDLE)"
buildah bud --isolation chroot --format docker --pull=never --layers=false \
    --identity-label=false --timestamp "$epoch" \
    --ignorefile deploy/container/Containerfile.dockerignore \
    -f deploy/container/Containerfile \
    --secret id=ca-bundle,src="$ca_bundle" \
    --build-arg BASE="$base" \
    --build-arg UV_VERSION="$uv_version" \
    --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" \
    --build-arg SOURCE="$source_url" \
    -t "$image" . 2>&1 | elapsed
bud_s=$((SECONDS - t0))
build_s=$((SECONDS - started))

# -- 3. size, SBOM and the smoke test ----------------------------------------------------
.venv/bin/python deploy/container/report.py "$image" \
    --out "$report" --build-seconds "$build_s" \
    --stage-seconds "debootstrap=$debootstrap_s" --stage-seconds "bud=$bud_s"
.venv/bin/python deploy/container/smoke.py "$image"
