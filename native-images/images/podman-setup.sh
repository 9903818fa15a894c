#!/usr/bin/env bash
# Makes this Debian machine (as root) able to build and run the mesh's images with podman:
# installs podman and runc (and Debian's archive keyring, which rootfs.sh checks packages with)
# when missing, and sets the two containers.conf settings this kind of machine needs, keeping
# every other setting of an existing file (idempotent):
#   [containers] default_ulimits = []   podman's default ulimits cannot be set here
#   [engine]     runtime = "runc"       crun refuses this machine's hybrid cgroups
# Used by .ci/run and by `meshbox up --images`; native-images/README.md.
set -euo pipefail
conf="${CONTAINERS_CONF_FILE:-/etc/containers/containers.conf}"

packages=(podman runc debian-archive-keyring)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "podman-setup: ${missing[*]} missing; run as root" >&2; exit 1; }
  log=/tmp/podman-setup-apt.log
  echo "podman-setup: installing ${missing[*]} (apt-get, log in $log)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1 \
    || { apt-get update -q >>"$log" 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; } \
    || { echo "podman-setup: apt-get could not install ${missing[*]}; see $log" >&2; exit 1; }
fi

# set_key SECTION KEY VALUE: the key's line in that TOML section becomes KEY = VALUE (replaced if
# present, added under the section header if not, the section appended if missing).
set_key() {
  local section="$1" key="$2" value="$3" tmp
  mkdir -p "$(dirname "$conf")"
  touch "$conf"
  tmp="$(mktemp "$conf.XXXXXX")"
  awk -v section="[$section]" -v key="$key" -v line="$key = $value" '
    function flush() { if (in_section && !done) { print line; done = 1 } }
    /^[[:space:]]*\[/ { flush(); in_section = ($1 == section); print; next }
    in_section && $0 ~ "^[[:space:]]*#?[[:space:]]*" key "[[:space:]]*=" {
      if ($0 ~ "^[[:space:]]*#") { print; next }     # a commented example stays as it is
      if ($0 ~ /\[/ && $0 !~ /\]/) skipping = 1
      if (!done) { print line; done = 1 }; next
    }
    skipping { if ($0 ~ /\]/) skipping = 0; next }   # rest of a replaced multi-line array
    { print }
    END { if (in_section) flush(); else if (!done) { print ""; print section; print line } }
  ' "$conf" >"$tmp"
  if cmp -s "$tmp" "$conf"; then rm -f "$tmp"; else cat "$tmp" >"$conf"; rm -f "$tmp"; echo "podman-setup: $conf: [$section] $key = $value" >&2; fi
}
set_key containers default_ulimits '[]'
set_key engine runtime '"runc"'
