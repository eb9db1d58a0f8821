#!/usr/bin/env bash
# Builds guard_VERSION_amd64.deb with dpkg-deb: the native AOT binary, the
# systemd unit, /etc/guard/guard.toml and policy.toml (conffiles), bash and
# zsh completion and guard(1), the last three written by the binary itself
# from its command tree.
#
#   packaging/deb/build-deb.sh [--binary FILE] [--out DIR] [--version VERSION]
#
# --binary: a guard built by `dotnet publish cli -c Release -r linux-x64`
# (default: publish one now into artifacts/guard). --out: where the .deb goes
# (default: artifacts/). --version: the package version (default: <Version>
# in Directory.Build.props). Prints the .deb's path on the last line.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
binary='' out="$repo/artifacts" version=''
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binary=${2:?--binary needs a file}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --version) version=${2:?--version needs a version}; shift 2 ;;
    *) echo "build-deb: unknown argument '$1' (--binary FILE, --out DIR, --version VERSION)" >&2; exit 2 ;;
    esac
done
for tool in dpkg-deb gzip; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build-deb: $tool is missing (Debian's dpkg and gzip packages)" >&2; exit 1; }
done
if [ -z "$version" ]; then
    version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n1)
    [ -n "$version" ] || { echo "build-deb: no <Version> in Directory.Build.props; give --version" >&2; exit 1; }
fi
if [ -z "$binary" ]; then
    dotnet publish "$repo/cli" -c Release -r linux-x64 -o "$repo/artifacts/guard" >&2
    binary="$repo/artifacts/guard/guard"
fi
[ -x "$binary" ] || { echo "build-deb: $binary is not an executable file" >&2; exit 1; }
if ldd "$binary" 2>/dev/null | grep -qE 'libbpf|libcoreclr|libstdc'; then
    echo "build-deb: $binary is not the native AOT guard (it links $(ldd "$binary" | grep -oE 'libbpf|libcoreclr|libstdc' | head -n1))" >&2
    exit 1
fi

# Reproducible: file times and the man page's date from the last commit, when there is one.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
umask 022

install -D -m 0755 "$binary" "$stage/usr/bin/guard"
install -D -m 0644 "$repo/packaging/systemd/guard.service" "$stage/usr/lib/systemd/system/guard.service"
install -D -m 0644 "$repo/packaging/config/guard.toml" "$stage/etc/guard/guard.toml"
install -D -m 0644 "$repo/packaging/config/policy.toml" "$stage/etc/guard/policy.toml"
install -d -m 0755 "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/man/man1" "$stage/usr/share/doc/guard"
"$binary" completion bash > "$stage/usr/share/bash-completion/completions/guard"
"$binary" completion zsh > "$stage/usr/share/zsh/vendor-completions/_guard"
"$binary" man | gzip -9n > "$stage/usr/share/man/man1/guard.1.gz"
install -D -m 0755 "$repo/packaging/slurm/guard-slurm.sh" "$stage/usr/share/guard/slurm/guard-slurm.sh"
cat > "$stage/usr/share/doc/guard/copyright" <<'TEXT'
Guard: a host sensor that stops cryptocurrency miners on GPU training hosts.
The native binary links libbpf (LGPL-2.1 OR BSD-2-Clause), libelf (LGPL-3.0+)
and zlib (Zlib) statically; the BPF programs embedded in it are GPL-2.0.
TEXT
chmod 0644 "$stage"/usr/share/bash-completion/completions/guard "$stage"/usr/share/zsh/vendor-completions/_guard \
    "$stage"/usr/share/man/man1/guard.1.gz "$stage"/usr/share/doc/guard/copyright

install -d -m 0755 "$stage/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$repo/packaging/deb/$script" "$stage/DEBIAN/$script"
done
printf '/etc/guard/guard.toml\n/etc/guard/policy.toml\n' > "$stage/DEBIAN/conffiles"
# The binary needs glibc 2.34 or later (its newest versioned symbol); nothing else.
glibc=$(objdump -T "$binary" 2>/dev/null | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sed 's/GLIBC_//' | sort -V | tail -n1 || true)
cat > "$stage/DEBIAN/control" <<TEXT
Package: guard
Version: $version
Architecture: amd64
Maintainer: Guard maintainers <guard@localhost>
Section: admin
Priority: optional
Depends: libc6 (>= ${glibc:-2.34})
Recommends: systemd, python3
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Homepage: https://github.com/guard-sensor/guard
Description: eBPF sensor that stops cryptocurrency miners on GPU hosts
 Guard traces process execution, connections, first payload bytes, DNS
 queries and NVIDIA driver activity with eBPF, writes each event as an
 Elastic Common Schema JSON line, kills known miners before their first
 instruction and quarantines the job that launched one. Runs as the
 guard.service systemd unit (enabled and started on install).
TEXT
(cd "$stage" && find usr etc -type f -print0 | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb="$out/guard_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
