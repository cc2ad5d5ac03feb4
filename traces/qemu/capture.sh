#!/usr/bin/env bash
# Capture a real sample under QEMU (shared/reference/qemu-capture.md): a stock Debian kernel,
# a busybox initramfs (init beside this script) running the static C workload, which writes
# its VmPTE to the trace marker; the trace comes back over the second serial port.
#   traces/qemu/capture.sh 6.1   # bookworm's linux-image-amd64: no PT_RECLAIM
#   traces/qemu/capture.sh 7.3   # trixie-backports 7.3.4 cloud kernel: PT_RECLAIM, fprobes
# Needs: apt-get install qemu-system-x86 busybox-static; gcc with a static libc. ~20 s a run
# under TCG. Other suites are reached through a private apt state; the machine's own apt
# configuration is not touched.
set -euo pipefail
WHICH=${1:?6.1 or 7.3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PTVIZ=${PTVIZ:-ptviz}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
if [ "$WHICH" = 6.1 ]; then
  apt-get download "$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2}')"
  dpkg -x linux-image-6.1*.deb k
  KERNEL=$(ls k/boot/vmlinuz-*); RECLAIM=n
else
  mkdir -p apt/lists/partial apt/cache/archives/partial
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" > apt/sources.list
  A="-o Dir::Etc::sourcelist=$WORK/apt/sources.list -o Dir::Etc::sourceparts=- -o Dir::State::Lists=$WORK/apt/lists -o Dir::Cache=$WORK/apt/cache"
  apt-get $A update
  apt-get $A download linux-binary-unsigned-7.3.4+deb13-cloud-amd64
  dpkg -x linux-binary-unsigned-*.deb k
  KERNEL=$(ls k/usr/lib/modules/*/vmlinuz*); RECLAIM=y
fi
gcc -O2 -static -o vmpte_steps "$ROOT/traces/workloads/vmpte_steps.c"
mkdir -p root/bin root/proc root/sys root/dev
cp /bin/busybox root/bin/busybox
cp vmpte_steps root/
cp "$HERE/init" root/init
if [ "$WHICH" = 7.3 ]; then   # fprobes (qemu-capture.md): each reclaim step seen directly
  "${PYTHON:-python3}" -c 'from ptviz.ftrace.probes import definitions
print("\n".join(definitions("fprobe")))' > root/probes
fi
chmod +x root/init
(cd root && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > ../initramfs.cpio.gz)
timeout 300 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1024 -machine q35 \
  -nodefaults -display none -no-reboot -kernel "$KERNEL" -initrd initramfs.cpio.gz \
  -append "console=ttyS0 panic=-1 mitigations=off transparent_hugepage=never" \
  -serial file:console.log -serial file:trace.raw
tr -d '\r' < trace.raw > trace.txt
if [ -n "${KEEP_TEXT:-}" ]; then cp trace.txt console.log "$KEEP_TEXT"/; fi   # a directory
$PTVIZ convert --pt-reclaim $RECLAIM trace.txt \
  "$ROOT/traces/real-$WHICH-x86_64-qemu-vmpte-steps.msgpack"
