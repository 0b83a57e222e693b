#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Lays out the root filesystem of the meshtrace image (the build context of deploy/Dockerfile,
# which is FROM scratch): the agent binary, stripped; every shared library it loads, at the path
# the dynamic loader finds it (ldd), and the loader itself; the few /etc files libc and libcurl
# read. No shell, no package manager: nothing in it but what the agent runs.
# The tests build their containerised peer (redis-server) the same way.
#   image_rootfs.sh BINARY DIR [NAME]   (installs BINARY as DIR/usr/bin/NAME, default its basename)
set -euo pipefail

usage="usage: image_rootfs.sh BINARY DIR [NAME]"
bin=${1:?$usage}
root=${2:?$usage}
name=${3:-$(basename "$bin")}

rm -rf "$root"
mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
strip --strip-debug -o "$root/usr/bin/$name" "$(readlink -f "$bin")"

# "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" and the loader's own line
# "/lib64/ld-linux-x86-64.so.2 (0x...)". Each is copied (dereferenced) to the path ldd printed,
# so the loader's built-in search directories find it without an ld.so.cache.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
if ldd "$bin" | grep -q "not found"; then
	echo "image_rootfs: $bin needs a library that is not installed:" >&2
	ldd "$bin" | grep "not found" >&2
	exit 2
fi
for lib in $libs; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

# Name resolution for the collector's host name (glibc >= 2.34 has files and dns built in), and
# the CA bundle for an https:// collector. The kubelet bind-mounts /etc/hosts and resolv.conf.
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/usr/bin/$name\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
else
	echo "image_rootfs: no /etc/ssl/certs/ca-certificates.crt (ca-certificates): an https" \
		"collector will fail certificate checks" >&2
fi
du -sh "$root" | awk '{print "image_rootfs: " $1 " in " $2}'
