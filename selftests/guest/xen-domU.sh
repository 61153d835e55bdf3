#!/bin/sh
# Usage (inside a Xen PV dom0, as root): xen-domU.sh KERNEL RAMDISK "EXTRA_CMDLINE" BDF[,BDF...] TIMEOUT_SECONDS
#
# Brings up the Xen toolstack that scripts/xen-rootfs.sh put into the dom0 initramfs (modules from
# /lib/xendma-xen, xenfs on /proc/xen, devpts, xenstored, xen-init-dom0, xenconsoled), hands the PCI
# devices (a comma-separated list) to xen-pciback, `xl create`s a PV domU with them passed through, waits until the domU shuts down or
# TIMEOUT_SECONDS have elapsed, destroys it, and prints the domU console log between the lines
# @@XENDMA-DOMU-LOG-BEGIN and @@XENDMA-DOMU-LOG-END.
# Exit status: 0 when the domU powered off by itself; 1 otherwise (reason on stderr, prefixed "xen-domU:").
# Expects proc, sys and devtmpfs mounted. Environment: XEN_DOMU_MEMORY (MiB, default 256),
# XEN_DOMU_VCPUS (default 1), XEN_DOMU_NAME (default xendma-domU), XEN_DOMU_VERBOSE (0, 1 or 2; default 0).
# A second call in the same dom0 reuses the running toolstack.

PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
NAME=${XEN_DOMU_NAME:-xendma-domU}
MEMORY=${XEN_DOMU_MEMORY:-256}
VCPUS=${XEN_DOMU_VCPUS:-1}
MODDIR=/lib/xendma-xen
CFG=/var/lib/xen/$NAME.cfg
XLLOG=/var/log/xen/xl-create-$NAME.log
CONLOG=/var/log/xen/console/guest-$NAME.log

fail() { echo "xen-domU: $*" >&2; exit 1; }
# XEN_DOMU_VERBOSE=1: one line per phase, with dom0 uptime; 2: also libxl's debug log.
VERBOSE=${XEN_DOMU_VERBOSE:-0}
trace() { [ "$VERBOSE" = 0 ] || echo "xen-domU: [$(cut -d' ' -f1 /proc/uptime)] $*"; }
# Sets $now to whole seconds of uptime, without forking.
now_s() { read -r now _ < /proc/uptime; now=${now%.*}; }
mounted() { grep -q "^[^ ]* $1 " /proc/mounts; }

[ $# -eq 5 ] || fail "usage: xen-domU.sh KERNEL RAMDISK EXTRA_CMDLINE BDF[,BDF...] TIMEOUT_SECONDS"
kernel=$1 ramdisk=$2 extra=$3 bdfs=$4 timeout=$5
# Debian's 7.2 domU kernel sometimes loses its PCI device at pcifront's first connection (xenbus
# logs "state reset occurred, reconnecting": 7.x's xenbus compares the frontend state it read with
# the one pcifront set meanwhile, takes the difference for a toolstack reset and re-creates the
# device, whose second connection pciback never answers). The guest's /init then says
# @@XENDMA-PCIFRONT-NODEV and powers off, when xendma.retry_nodev=1 tells it that it may: the domU
# is created again, at most XEN_DOMU_ATTEMPTS (5) times; the last attempt runs whatever it finds.
# Seen on 2026-11-30: the device was lost in 4 of 10 first connections of the stock domU (never with
# the 6.12 test kernel); a lost attempt costs about 40 s.
attempt=${XENDMA_DOMU_ATTEMPT:-1}
ATTEMPTS=${XEN_DOMU_ATTEMPTS:-5}
extra_run=$extra
[ "$attempt" -lt "$ATTEMPTS" ] && extra_run="$extra xendma.retry_nodev=1"
[ -f "$kernel" ] || fail "no kernel $kernel"
[ -f "$ramdisk" ] || fail "no ramdisk $ramdisk"
case $timeout in ''|*[!0-9]*) fail "TIMEOUT_SECONDS must be a number: $timeout" ;; esac
# The devices, with their PCI domain; pciback's hide= list and xl's pci= list.
devs= hide= pcicfg=
for bdf in $(echo "$bdfs" | tr ',' ' '); do
    case $bdf in ????:??:??.?) ;; ??:??.?) bdf=0000:$bdf ;; *) fail "bad BDF $bdf (want 0000:00:03.0)" ;; esac
    [ -e /sys/bus/pci/devices/$bdf ] || fail "no PCI device $bdf in dom0"
    devs="$devs $bdf" hide="$hide($bdf)" pcicfg="$pcicfg${pcicfg:+, }'$bdf'"
done
[ -n "$devs" ] || fail "no BDF given"
case $extra in *\"*) fail "EXTRA_CMDLINE must not contain a double quote" ;; esac
[ -d /sys/hypervisor ] && [ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ] || fail "not running on Xen"

# xl (libuuid) waits up to 1 s per UUID while the kernel's CRNG is not ready; a blocking read of /dev/random
# makes the kernel generate entropy now instead of minutes later (immediate when the CPU has RDRAND).
head -c 1 /dev/random > /dev/null 2>&1 &

trace "loading modules"
# Kernel modules (module names use '_' in /sys/module).
load() {
    m=$1; shift
    [ -d "/sys/module/$(echo "$m" | tr - _)" ] && return 0
    insmod "$MODDIR/$m.ko" "$@" || fail "insmod $m failed"
}
load xen-evtchn
load xen-privcmd
load xenfs
load xen-gntdev
load xen-gntalloc
load xen-pciback "hide=$hide"

# Hand each device to pciback if hide= did not (pciback was already loaded, or another driver owns it).
for bdf in $devs; do
    drv=$(readlink "/sys/bus/pci/devices/$bdf/driver" 2>/dev/null)
    [ "${drv##*/}" = pciback ] && continue
    [ -n "$drv" ] && echo "$bdf" > "/sys/bus/pci/devices/$bdf/driver/unbind"
    echo "$bdf" > /sys/bus/pci/drivers/pciback/new_slot 2>/dev/null
    echo "$bdf" > /sys/bus/pci/drivers/pciback/bind 2>/dev/null
    drv=$(readlink "/sys/bus/pci/devices/$bdf/driver" 2>/dev/null)
    [ "${drv##*/}" = pciback ] || fail "could not bind $bdf to pciback (driver: ${drv##*/})"
done

mkdir -p /proc/xen /dev/pts /var/run/xen /var/run/xenstored /var/lib/xen /var/lib/xenstored \
         /var/log/xen/console /var/lock
mounted /proc/xen || mount -t xenfs xenfs /proc/xen || fail "mount xenfs failed"
mounted /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "mount devpts failed"

# Toolstack daemons, once per boot.
if [ ! -S /var/run/xenstored/socket ]; then
    trace "starting xenstored"
    xenstored -N --pid-file /var/run/xenstored.pid > /var/log/xen/xenstored.log 2>&1 &
    t=0
    while [ ! -S /var/run/xenstored/socket ]; do
        [ $t -lt 200 ] || fail "xenstored did not start (see /var/log/xen/xenstored.log)"
        sleep 0.05; t=$((t + 1))
    done
    trace "xen-init-dom0"
    xen-init-dom0 > /var/log/xen/xen-init-dom0.log 2>&1 ||
        fail "xen-init-dom0 failed: $(tail -n 1 /var/log/xen/xen-init-dom0.log)"
fi
if [ ! -s /var/run/xen/xenconsoled.pid ]; then
    trace "starting xenconsoled"
    xenconsoled --log=guest --log-dir=/var/log/xen/console --pid-file=/var/run/xen/xenconsoled.pid ||
        fail "xenconsoled failed"
fi

# "preserve": xl leaves the shut-down domain in place, so xenconsoled (which drops a console only once its
# domain is dying) still reads the last lines, e.g. a panic, before this script destroys the domain.
cat > "$CFG" << EOF
name = "$NAME"
type = "pv"
kernel = "$kernel"
ramdisk = "$ramdisk"
extra = "$extra_run"
memory = $MEMORY
vcpus = $VCPUS
pci = [ $pcicfg ]
on_poweroff = "preserve"
on_reboot = "preserve"
on_crash = "preserve"
EOF

rm -f "$CONLOG"
trace "xl create"
# -F: xl stays in the foreground until the domain has shut down, and logs the reason.
# -p: the domain starts paused and runs only once libxl has finished creating it, PCI backend
# included (xl then says "Waiting for domain ... to die"). A domU that boots fast (Debian's stock
# 7.2 kernel reaches /init in 12 s) otherwise loads pcifront while libxl still writes the device's
# xenstore nodes; 7.x's xenbus then takes the frontend's state for reset, re-creates the device,
# and the first connection (to which pciback answered) is lost: no PCI device ever appears.
if [ "$VERBOSE" = 2 ]; then
    # libxl debug log, each line prefixed with dom0 uptime; printed at the end.
    ( xl -vvv create -p -F "$CFG" 2>&1; echo "xl-exit $?" ) |
        awk '{ getline u < "/proc/uptime"; close("/proc/uptime"); split(u, a, " ")
               print a[1], $0; fflush() }' > "$XLLOG" &
else
    xl create -p -F "$CFG" > "$XLLOG" 2>&1 &
fi
xlpid=$!
t=0
until grep -q 'Waiting for domain' "$XLLOG" 2>/dev/null || ! kill -0 $xlpid 2>/dev/null || [ $t -ge 240 ]; do
    sleep 0.25; t=$((t + 1))
done
trace "domain created, unpausing"
xl unpause "$NAME" 2>/dev/null || echo "xen-domU: xl unpause $NAME failed" >&2

# One fork per round (sleep): every fork costs a PV dom0 a pile of page-table hypercalls.
now_s; start=$now
status= xlrc=
while kill -0 $xlpid 2>/dev/null; do
    now_s
    if [ $((now - start)) -ge "$timeout" ]; then
        status="timeout after ${timeout}s, domU destroyed"
        break
    fi
    sleep 0.5
done
if [ -z "$status" ]; then
    wait $xlpid
    xlrc=$?
    [ "$VERBOSE" != 2 ] || { xlrc=$(sed -n 's/.* xl-exit \([0-9]*\)$/\1/p' "$XLLOG"); xlrc=${xlrc:-1}; }
    trace "xl exited $xlrc"
fi

# Let xenconsoled catch up: wait until the console log stops growing (at most 2 s).
size=-1 t=0
while [ $t -lt 8 ]; do
    sleep 0.25; t=$((t + 1))
    new=$(wc -c < "$CONLOG" 2>/dev/null || echo 0)
    [ "$new" = "$size" ] && break
    size=$new
done

# libxl's PV PCI removal waits (10 s, twice) for pciback to report Connected (4), which it never does once
# the domU is gone (its frontend closed or never connected, or libxl itself asked for Reconfiguring):
# nobody is left to answer. Say Connected on pciback's behalf so the teardown goes on at once.
pci_teardown_assist() {
    be=/local/domain/0/backend/pci/$domid/0
    case $(xenstore-read "$be/state" 2>/dev/null) in
        ''|4) ;;
        *) xenstore-write "$be/state" 4 2>/dev/null; trace "pciback state set to Connected" ;;
    esac
}
domid=$(xl domid "$NAME" 2>/dev/null)
if [ -n "$domid" ]; then
    trace "destroying domU $domid"
    xl destroy "$NAME" > "/var/log/xen/xl-destroy-$NAME.log" 2>&1 &
    dpid=$!
    while kill -0 $dpid 2>/dev/null; do
        pci_teardown_assist
        sleep 0.5
    done
    wait $dpid || [ -n "$status" ] ||
        status="xl destroy failed: $(tail -n 1 "/var/log/xen/xl-destroy-$NAME.log")"
    trace "destroyed"
fi
if kill -0 $xlpid 2>/dev/null; then     # timed out: xl create -F ends once the domain is gone
    t=0
    while kill -0 $xlpid 2>/dev/null && [ $t -lt 20 ]; do sleep 0.5; t=$((t + 1)); done
    kill $xlpid 2>/dev/null
    wait $xlpid
fi
[ "$VERBOSE" != 2 ] || sed 's/^/xen-domU: xl: /' "$XLLOG"

if grep -q '@@XENDMA-PCIFRONT-NODEV' "$CONLOG" 2>/dev/null && [ "$attempt" -lt "$ATTEMPTS" ]; then
    echo "xen-domU: attempt $attempt: pcifront found no device in the domU; its log:"
    tr -d '\r' < "$CONLOG" | grep -E 'pcifront|xenbus|XENDMA-PCIFRONT' | sed 's/^/xen-domU:   /'
    echo "xen-domU: creating the domU again (attempt $((attempt + 1)) of $ATTEMPTS)"
    XENDMA_DOMU_ATTEMPT=$((attempt + 1)) exec "$0" "$kernel" "$ramdisk" "$extra" "$bdfs" "$timeout"
fi

echo "@@XENDMA-DOMU-LOG-BEGIN"
[ -f "$CONLOG" ] && tr -d '\r' < "$CONLOG"
echo "@@XENDMA-DOMU-LOG-END"

if [ -z "$status" ]; then
    reason=$(sed -n 's/.*has shut down, reason code \([0-9]*\).*/\1/p' "$XLLOG" | tail -n 1)
    case $reason in
        0) [ "$xlrc" = 0 ] || status="xl create exited $xlrc" ;;
        1) status="domU rebooted" ;;
        3) status="domU crashed" ;;
        '') status="xl create failed: $(grep -v '^Parsing config' "$XLLOG" | tail -n 1)" ;;
        *) status="domU shut down with reason code $reason" ;;
    esac
fi
if [ -n "$status" ]; then
    tail -n 15 "$XLLOG" | sed 's/^/xen-domU: xl: /' >&2
    echo "xen-domU: $status" >&2
    exit 1
fi
exit 0
