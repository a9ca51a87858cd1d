# shellcheck shell=bash
# Stand-ins for the registry images docker-compose.yml names, for a machine whose Docker can reach
# no registry (sourced by scripts/compose-check). Each is built only when the image is neither
# present locally nor pullable, and from Debian's own packages:
#   python:3.11-slim-bookworm  a bookworm from debootstrap with a venv at /usr/local (python, pip
#                              where the official image has them), trusting the host's extra CAs
#   lingxi-check/postgres      Debian's postgresql-15 honouring the POSTGRES_* variables
# Qdrant gets none: the check runs websearch on its embedded Qdrant (docker-compose.check.yml).

STANDINS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/standins"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

pullable() { timeout 60 docker pull -q "$1" >/dev/null 2>&1; }

standin_python() {
  local image=python:3.11-slim-bookworm rootfs
  have_image "$image" && return 0
  pullable "$image" && return 0
  say "no registry: building a stand-in $image with debootstrap"
  rootfs="$(mktemp -d /var/tmp/lingxi-bookworm.XXXXXX)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2
    rm -rf "$rootfs" "$rootfs.log"
    return 1
  }
  # pip in the image verifies PyPI against the same CAs as this machine (a TLS-inspecting proxy's too)
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$rootfs" update-ca-certificates >/dev/null
  chroot "$rootfs" python3 -m venv /usr/local
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$image" >/dev/null
  rm -rf "$rootfs" "$rootfs.log"
}

standin_postgres() {
  local image=lingxi-check/postgres:15
  have_image "$image" && return 0
  say "building the stand-in $image (Debian's postgresql-15)"
  docker build -q --network host -t "$image" -f "$STANDINS/postgres.Dockerfile" "$STANDINS" >/dev/null
}
