#!/usr/bin/env bash
# Capture a real sample under QEMU (shared/reference/qemu-capture.md): a stock Debian kernel,
# a busybox initramfs (init beside this script) running the static C workload, which writes
# its VmPTE to the trace marker; the trace comes back over the second serial port.
#   traces/qemu/capture.sh 6.1   # bookworm's linux-image-amd64: no PT_RECLAIM
#   traces/qemu/capture.sh 7.3   # trixie-backports 7.3.4 cloud kernel: PT_RECLAIM, fprobes
# Needs: apt-get install qemu-system-x86 busybox-static; gcc with a static libc; xz. ~40-70 s
# a run under TCG. Other suites are reached through a private apt state; the machine's own apt
# configuration is not touched.
# Writes the raw ftrace text, xz -9e, to traces/raw/qemu-<which>-vmpte-steps.txt.xz (the tests
# re-import it: tests/test_real_raw.py), then the sample traces/real-<which>-x86_64-qemu-
# vmpte-steps.msgpack converted from that same text (replacing both).
#   KEEP_TEXT=<dir>  also copy trace.txt and console.log into that directory
#   TEXT_ONLY=1      only capture: copy the text to KEEP_TEXT (required), write nothing in traces/
#   PROBES=none      7.3 without probes: stock tracepoints only, as on a user's kernel (with
#                    TEXT_ONLY=1: the samples in traces/ are the probe-rich capture)
#   PTVIZ, PYTHON    the ptviz command and the Python that imports ptviz (default: the repo's
#                    .venv, else on PATH)
set -euo pipefail
WHICH=${1:?6.1 or 7.3}
case "$WHICH" in 6.1|7.3) ;; *) echo "capture.sh: 6.1 or 7.3, not $WHICH" >&2; exit 2;; esac
if [ "${TEXT_ONLY:-0}" = 1 ] && [ ! -d "${KEEP_TEXT:-}" ]; then
  echo "capture.sh: TEXT_ONLY=1 needs KEEP_TEXT=<an existing directory>" >&2; exit 2; fi
if [ "${PROBES:-}" = none ] && [ "${TEXT_ONLY:-0}" != 1 ]; then
  echo "capture.sh: PROBES=none needs TEXT_ONLY=1" >&2; exit 2; fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV="$ROOT/.venv/bin"   # the repo's venv when there is one, else what is on PATH
PTVIZ=${PTVIZ:-$([ -x "$VENV/ptviz" ] && echo "$VENV/ptviz" || echo ptviz)}
PYTHON=${PYTHON:-$([ -x "$VENV/python" ] && echo "$VENV/python" || echo python3)}
"$PYTHON" -c 'import ptviz.ftrace.probes' && [ "${TEXT_ONLY:-0}" = 1 -o -n "$(command -v "$PTVIZ")" ] || {
  echo "capture.sh: needs ptviz (set PTVIZ and PYTHON)" >&2; exit 2; }
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
if [ "$WHICH" = 7.3 ] && [ "${PROBES:-}" != none ]; then   # fprobes (qemu-capture.md)
  "$PYTHON" -c 'from ptviz.ftrace.probes import definitions
print("\n".join(definitions("fprobe")))' > root/probes
fi
chmod +x root/init
(cd root && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > ../initramfs.cpio.gz)
# Under TCG with thread=multi a boot now and then dies early (seen once on 7.3.4: "Oops: int3"
# in set_next_task_fair, a static-key patch site): try up to 3 times, keeping only a run whose
# trace reached the workload's last marker.
for attempt in 1 2 3; do
  rm -f console.log trace.raw trace.txt
  timeout 300 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1024 -machine q35 \
    -nodefaults -display none -no-reboot -kernel "$KERNEL" -initrd initramfs.cpio.gz \
    -append "console=ttyS0 panic=-1 mitigations=off transparent_hugepage=never" \
    -serial file:console.log -serial file:trace.raw || echo "capture.sh: QEMU exit status $?" >&2
  touch trace.raw; tr -d '\r' < trace.raw > trace.txt
  grep -q 'tracing_mark_write: VmPTE: .* munmap' trace.txt && break
  echo "capture.sh: attempt $attempt: no 'munmap' marker in the trace; console.log ends:" >&2
  tail -5 console.log >&2 || true
  if [ "$attempt" = 3 ]; then
    [ -n "${KEEP_TEXT:-}" ] && cp trace.txt console.log "$KEEP_TEXT"/
    exit 1
  fi
done
if [ -n "${KEEP_TEXT:-}" ]; then cp trace.txt console.log "$KEEP_TEXT"/; fi   # a directory
if grep -q '^overrun: [1-9]' console.log; then
  echo "capture.sh: the ring buffer overran: events were lost (see console.log)" >&2; exit 1; fi
[ "${TEXT_ONLY:-0}" = 1 ] && exit 0
$PTVIZ convert --force --pt-reclaim $RECLAIM trace.txt \
  "$ROOT/traces/real-$WHICH-x86_64-qemu-vmpte-steps.msgpack"
mkdir -p "$ROOT/traces/raw"
RAW="$ROOT/traces/raw/qemu-$WHICH-vmpte-steps.txt.xz"
xz -9e -T1 -c trace.txt > "$RAW.tmp" && mv "$RAW.tmp" "$RAW"
