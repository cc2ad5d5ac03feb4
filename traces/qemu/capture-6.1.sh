#!/usr/bin/env bash
# Capture the real 6.1 sample under QEMU (shared/reference/qemu-capture.md): Debian's stock
# 6.1 kernel (no PT_RECLAIM), a busybox initramfs, the static C workload writing its VmPTE
# to the trace marker; the trace comes back over the second serial port.
# Needs: apt-get install qemu-system-x86 busybox-static; gcc with static libc. ~20 s.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PTVIZ=${PTVIZ:-ptviz}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
apt-get download "$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2}')"
dpkg -x linux-image-6.1*.deb k
KERNEL=$(ls k/boot/vmlinuz-*)
gcc -O2 -static -o vmpte_steps "$ROOT/traces/workloads/vmpte_steps.c"
mkdir -p root/bin root/proc root/sys root/dev
cp /bin/busybox root/bin/busybox
cp vmpte_steps root/
cp "$HERE/init" root/init
chmod +x root/init
(cd root && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > ../initramfs.cpio.gz)
timeout 300 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1024 -machine q35 \
  -nodefaults -display none -no-reboot -kernel "$KERNEL" -initrd initramfs.cpio.gz \
  -append "console=ttyS0 panic=-1 mitigations=off transparent_hugepage=never" \
  -serial file:console.log -serial file:trace.raw
tr -d '\r' < trace.raw > trace.txt
$PTVIZ convert --pt-reclaim n trace.txt "$ROOT/traces/real-6.1-x86_64-qemu-vmpte-steps.msgpack"
