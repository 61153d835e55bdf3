# SPDX-License-Identifier: GPL-2.0
#
# ktap.sh: the test-line helpers of the shell test programs (busybox sh), sourced after the
# program sets NAME. Each test prints one KTAP line, "ok N - what", "not ok N - what" or
# "ok N - what # SKIP why"; diagnostics are "# ..." lines; finish prints the last line the lane
# report reads, "NAME: N passed, M failed, K skipped", and exits non-zero if any test failed.
# Installed as /lib/xendma/bin/ktap.sh (a tool, not a test: /init does not run it).
passed=0
failed=0
skipped=0

result() {  # status what: one test line
	if [ "$1" = 0 ]; then
		passed=$((passed + 1))
		echo "ok $((passed + failed + skipped)) - $2"
	else
		failed=$((failed + 1))
		echo "not ok $((passed + failed + skipped)) - $2"
	fi
}
check() {  # what command...: a test that passes when the command succeeds
	what=$1
	shift
	if "$@"; then result 0 "$what"; else result 1 "$what"; fi
}
skip() {  # what why: a test that cannot run here
	skipped=$((skipped + 1))
	echo "ok $((passed + failed + skipped)) - $1 # SKIP $2"
}
diag() { echo "# $*"; }
loaded() { grep -q "^$1 " /proc/modules; }
# Writes a value (one line, as "echo VALUE > FILE" does) to a sysfs or debugfs file. Returns the
# write's status; werr holds the shell's error text ("sh: write error: No such device"), if any.
wr() {  # file value
	werr=$( (echo "$2" > "$1") 2>&1 )
}
driver_of() {  # the name of the driver bound to a PCI device, empty if none
	[ -e "/sys/bus/pci/devices/$1/driver" ] && basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
}
finish() {
	echo "$NAME: $passed passed, $failed failed, $skipped skipped"
	[ $failed = 0 ]
	exit $?
}
