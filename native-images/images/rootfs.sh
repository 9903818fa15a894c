#!/usr/bin/env bash
# A minimal root filesystem from Debian bookworm's packages, distroless style: the packages of
# the named sets in packages.conf are downloaded with apt (its own configuration and state under
# the work directory, so the host's apt is neither used nor changed) and unpacked with
# `dpkg-deb -x`: no maintainer scripts, no dpkg, no shell beyond dash, no package manager.
#
#   rootfs.sh WORKDIR SET... > listing     e.g. rootfs.sh target/images/base jvm net
#
# Leaves WORKDIR/root-<sets>/ and prints "package version" of what it unpacked. Needs apt-get,
# dpkg-deb and Debian's archive keyring (debian-archive-keyring), all on any Debian machine.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$1"; shift
sets=("$@")
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "rootfs: $keyring missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

apt_dir="$work/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/debs" "$apt_dir/etc/preferences.d"
cat >"$apt_dir/sources.list" <<EOF
deb [signed-by=$keyring] $mirror bookworm main
deb [signed-by=$keyring] $mirror bookworm-updates main
deb [signed-by=$keyring] $security_mirror bookworm-security main
EOF
: >"$apt_dir/status"
apt_opts=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
  -o "Dir::State=$apt_dir" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir" -o "Dir::Cache::Archives=$apt_dir/archives" -o Debug::NoLocking=true
  -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Languages=none)
# The package lists, refreshed when older than a day (security updates land in between).
if [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  echo "rootfs: apt-get update (bookworm, bookworm-updates, bookworm-security)" >&2
  apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 \
    || { cat "$apt_dir/update.log" >&2; echo "rootfs: apt-get update failed" >&2; exit 1; }
fi

# The set's lines: "package [path...]".
lines="$(for s in "${sets[@]}"; do
  awk -v want="[$s]" '/^\[/ {on = ($1 == want); next} on && NF && $1 !~ /^#/ {print}' "$here/packages.conf"
done)"
[ -n "$lines" ] || { echo "rootfs: no packages in sets ${sets[*]}" >&2; exit 1; }

name="root-$(IFS=-; echo "${sets[*]}")"
root="$work/$name"
rm -rf "$root" "$work/unpack"
mkdir -p "$root"
# Debian's merged /usr: the top-level directories are links into /usr.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/etc "$root"/var/lib/dpkg/status.d "$root"/tmp "$root"/root
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 1777 "$root/tmp"
chmod 700 "$root/root"

# Every package's candidate version, in one look-up.
declare -A candidate=()
while read -r p v; do candidate[$p]="$v"; done < <(apt-cache "${apt_opts[@]}" policy $(awk '{print $1}' <<<"$lines") \
  | awk '/^[^ ]/ {sub(":$", "", $1); p = $1} /Candidate:/ {print p, $2}')

while read -r pkg paths; do
  version="${candidate[$pkg]:-}"
  [ -n "$version" ] && [ "$version" != "(none)" ] || { echo "rootfs: $pkg is not in bookworm" >&2; exit 1; }
  deb=""
  for f in "$apt_dir/debs/${pkg}_"*.deb; do
    [ -f "$f" ] && [ "$(dpkg-deb -f "$f" Package)" = "$pkg" ] && [ "$(dpkg-deb -f "$f" Version)" = "$version" ] && deb="$f"
  done
  if [ -z "$deb" ]; then
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download "$pkg=$version" >>"$apt_dir/download.log" 2>&1) \
      || { tail -5 "$apt_dir/download.log" >&2; echo "rootfs: could not download $pkg=$version" >&2; exit 1; }
    for f in "$apt_dir/debs/${pkg}_"*.deb; do
      [ "$(dpkg-deb -f "$f" Package)" = "$pkg" ] && [ "$(dpkg-deb -f "$f" Version)" = "$version" ] && deb="$f"
    done
    [ -n "$deb" ] || { echo "rootfs: $pkg=$version downloaded but not found" >&2; exit 1; }
  fi
  u="$work/unpack/$pkg"
  mkdir -p "$u"
  dpkg-deb -x "$deb" "$u"
  if [ -n "$paths" ]; then
    keep="$work/unpack/$pkg.keep"
    mkdir -p "$keep"
    for p in $paths; do
      if [ -e "$u/$p" ] || [ -L "$u/$p" ]; then
        mkdir -p "$keep/$(dirname "$p")"
        cp -a "$u/$p" "$keep/$p"
      fi
    done
    rm -rf "$u"; mv "$keep" "$u"
  fi
  # Merged /usr: what the package puts under /bin, /lib, ... goes under /usr.
  for d in bin sbin lib lib64; do
    if [ -d "$u/$d" ] && [ ! -L "$u/$d" ]; then cp -a "$u/$d/." "$root/usr/$d/"; rm -rf "${u:?}/$d"; fi
  done
  # Documentation, manuals, translations, lintian overrides, iconv modules (Java does its own
  # charsets): nothing in the image reads them.
  rm -rf "$u/usr/share/doc" "$u/usr/share/man" "$u/usr/share/info" "$u/usr/share/locale" \
    "$u/usr/share/lintian" "$u/usr/share/bash-completion" "$u/usr/lib/x86_64-linux-gnu/gconv" \
    "$u/usr/share/common-licenses" "$u/usr/share/bug"
  cp -a "$u/." "$root/"
  rm -rf "$u"
  # For scanners that read what is installed (distroless's layout): the package's control fields.
  { dpkg-deb -f "$deb" Package Version Architecture Source Maintainer Homepage; echo "Status: install ok installed"; } \
    >"$root/var/lib/dpkg/status.d/$pkg"
  echo "$pkg $version"
done <<<"$lines"
rm -rf "$work/unpack"

# What dpkg's maintainer scripts would have done and the services need.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
ambient:x:1337:1337:ambient mesh:/nonexistent:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
ambient:x:1337:
nogroup:x:65534:
EOF
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
[ -e "$root/usr/bin/dash" ] && ln -sf dash "$root/usr/bin/sh"
if [ -e "$root/usr/sbin/xtables-nft-multi" ]; then
  # update-alternatives' links: iptables is the nf_tables backend.
  for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf xtables-nft-multi "$root/usr/sbin/$t"
  done
fi
# Drop what iptables' extensions and the loader caches do not need.
find "$root" -name '*.a' -delete
echo "$root" >"$work/$name.path"
