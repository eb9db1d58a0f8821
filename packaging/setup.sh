#!/usr/bin/env bash
# Installs what building and testing Guard needs on a Debian or Ubuntu host:
# clang and llvm (the BPF object), bpftool (vmlinux.h from this kernel's BTF),
# libbpf, libelf and zlib archives (linked into the native guard binary), and
# the tools the kernel tests drive (python3, util-linux's unshare, iproute2,
# socat for the relay tests, librandomx-dev for the RandomX tests' real hasher
# (tevador's reference implementation; never a miner: no network), rsyslog for the syslog output's tests: started by
# them on loopback with their own configuration, never as the host's syslog),
# and groff and zsh, which read the man page and the zsh completion the package
# ships (the .deb itself is built by dpkg-deb, part of every Debian system).
# Safe to run again; it installs only what is missing.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (sudo $0): it installs packages" >&2
  exit 1
fi

need=()
for pkg in clang llvm libbpf-dev libelf-dev zlib1g-dev librandomx-dev python3 util-linux iproute2 socat groff-base zsh; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
command -v bpftool >/dev/null 2>&1 || need+=(bpftool)
# systemd-analyze verifies packaging/systemd/guard.service in the tests.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)

if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Ubuntu ships bpftool in linux-tools rather than a package of its own.
  if ! apt-get install -y -qq "${need[@]}"; then
    apt-get install -y -qq "${need[@]/bpftool/linux-tools-common}" "linux-tools-$(uname -r)"
  fi
fi

# rsyslogd for the syslog output's tests, which start their own on loopback: installed
# without starting the package's service (policy-rc.d 101), so the host's syslog stays as it was.
if [ ! -x /usr/sbin/rsyslogd ]; then
  export DEBIAN_FRONTEND=noninteractive
  [ ${#need[@]} -gt 0 ] || apt-get update -qq
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends rsyslog || status=$?
  [ "$made_policy" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "${status:-0}" -eq 0 ] || exit "$status"
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET 10 SDK is required (https://dot.net/download); 'dotnet' is not on PATH" >&2
  exit 1
fi
if [ ! -e /sys/kernel/btf/vmlinux ]; then
  echo "setup: this kernel has no BTF (/sys/kernel/btf/vmlinux); Guard needs CONFIG_DEBUG_INFO_BTF=y" >&2
  exit 1
fi
echo "setup: ready ($(clang --version | head -n1); $(bpftool version | head -n1); dotnet $(dotnet --version))"
