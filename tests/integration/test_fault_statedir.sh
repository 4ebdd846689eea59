#!/usr/bin/env bash
# Fault: masd's state directory full (a tiny tmpfs, filled) or read-only. An apply still takes
# effect in the kernel; masd says the policy could not be saved; enforcement goes on.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

mkdir -p "$T/state"
mount -t tmpfs -o size=1m tmpfs "$T/state" || mas_skip "cannot mount a tmpfs"
for v in one two three; do
	case $v in one) g=x ;; two) g=y ;; three) g=x ;; esac
	cat >"$T/$v.yaml" <<YAML
version: 1
destinations:
  x: { cidrs: [127.0.30.1/32], ports: [80] }
  y: { cidrs: [127.0.30.2/32], ports: [80], protected: true }
permissions: { p: [$g] }
roles: { r: [p] }
agents:
  a: { unit: mas-agent@a.service, role: r }
YAML
done
A=mas-agent@a.service
mas_cgroup "$A"
mas_cgroup other
mas_start --policy "$T/one.yaml" || exit 1
expect "$A" allowed connect tcp 127.0.30.1 80

echo "# full"
dd if=/dev/zero of="$T/state/filler" bs=64k 2>/dev/null
check "the state dir is full" [ "$(df --output=avail "$T/state" | tail -n1)" -eq 0 ]
out=$("$MASCTL" policy apply "$T/two.yaml" 2>&1)
rc=$?
check "an apply with the state dir full takes effect (exit $rc: $out)" [ $rc -eq 0 ]
expect "$A" denied connect tcp 127.0.30.1 80
expect "$A" allowed connect tcp 127.0.30.2 80
expect other denied connect tcp 127.0.30.2 80
journal_sync
n=$(journalctl -t masd -o cat | grep -c "could not be saved")
check "masd says the policy could not be saved ($n)" [ "$n" -ge 1 ]
check "masd is still running" alive "$MASD_PID"
check "and answers" "$MASCTL" status

echo "# read-only"
rm -f "$T/state/filler"
mount -o remount,ro "$T/state"
out=$("$MASCTL" policy apply "$T/three.yaml" 2>&1)
rc=$?
check "an apply with the state dir read-only takes effect (exit $rc: $out)" [ $rc -eq 0 ]
expect "$A" allowed connect tcp 127.0.30.1 80
expect "$A" denied connect tcp 127.0.30.2 80
journal_sync
n=$(journalctl -t masd -o cat | grep -c "could not be saved.*Read-only")
check "masd says the state dir is read-only ($n)" [ "$n" -ge 1 ]
sleep 1.5 # a few ticks (audit checkpoints, keys) against the read-only dir
check "masd is still running after its ticks" alive "$MASD_PID"
expect other denied connect tcp 127.0.30.2 80

echo "# killed while it cannot save: enforcement stays"
mas_kill9
expect "$A" allowed connect tcp 127.0.30.1 80
expect other denied connect tcp 127.0.30.2 80
if mas_start --policy "$T/one.yaml" 2>"$T/start.err"; then
	echo "# masd starts on a read-only state dir"
	expect "$A" allowed connect tcp 127.0.30.1 80
else
	echo "# masd refuses to start on a read-only state dir: $(tail -n1 "$T/masd.log")"
	check "it says why" grep -qi "read-only\|state" "$T/masd.log"
	expect other denied connect tcp 127.0.30.2 80
fi
mas_stop
umount "$T/state" 2>/dev/null
mas_done
