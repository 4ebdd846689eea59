#!/usr/bin/env bash
# make run: masd in the foreground on policies/example.yaml, against a scratch cgroup, with two
# demo agents that try allowed and forbidden connections on loopback. Ctrl-C ends it; without
# a terminal it ends after DEMO_SECONDS (default 20). Everything it made goes with it: the
# bpffs lives in a private mount namespace, the cgroups are removed, processes ended by PID.
set -u
if [ "$(id -u)" != 0 ]; then
	echo "make run needs root (BPF programs, cgroups): sudo make run" >&2
	exit 1
fi
if [ -z "${MAS_DEMO_NS:-}" ]; then
	exec env MAS_DEMO_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
B=${1:-build}
MASD=$B/masd MASCTL=$B/masctl PROBE=$B/tests/integration/probe
MOUNT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
CG=$MOUNT/masd-demo-$$
T=$(mktemp -d /tmp/masd-demo.XXXXXX)
export MASD_SOCKET=$T/control.sock
PIDS=()
if [ -t 0 ]; then SECONDS_LEFT=${DEMO_SECONDS:-0}; else SECONDS_LEFT=${DEMO_SECONDS:-20}; fi

cleanup() {
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "${MASD_PID:-}" ] && kill "$MASD_PID" 2>/dev/null
	wait 2>/dev/null
	find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null
	rm -rf "$T"
	echo "demo: stopped; scratch cgroup $CG removed"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

mkdir -p "$CG/mas-agent@copywriter.service" "$CG/mas-agent@analyst.service" "$CG/not-an-agent"
echo "demo: scratch cgroup $CG with agents copywriter and analyst"
echo "demo: services on loopback: openai 127.0.10.1:8443, database 127.0.10.2:5432," \
	"auth 127.0.10.3:8080"
for svc in "tcp 127.0.10.1 8443" "udp 127.0.10.1 8443" "tcp 127.0.10.2 5432" "tcp 127.0.10.3 8080"; do
	$PROBE serve $svc >/dev/null &
	PIDS+=($!)
done

"$MASD" --policy policies/example.yaml --state-dir "$T/state" --runtime-dir "$T" \
	--bpffs-dir /sys/fs/bpf/masd-demo --cgroup-root "$CG" --verbose &
MASD_PID=$!
for _ in $(seq 50); do "$MASCTL" status >/dev/null 2>&1 && break; sleep 0.1; done

agent() { # name cgroup tries...
	local name=$1 cg=$2
	shift 2
	while :; do
		for t in "$@"; do
			# shellcheck disable=SC2086
			printf '  %-12s %-32s %s\n' "$name" "$t" \
				"$($PROBE --cgroup "$CG/$cg" ${t#* } 2>&1)"
		done
		sleep 3
	done
}
agent copywriter mas-agent@copywriter.service "openai connect tcp 127.0.10.1 8443" \
	"openai(h3) sendto 127.0.10.1 8443" "database connect tcp 127.0.10.2 5432" \
	"auth connect tcp 127.0.10.3 8080" "exfil connect tcp 127.0.10.9 22" \
	"raw-socket socket raw" &
PIDS+=($!)
agent analyst mas-agent@analyst.service "database connect tcp 127.0.10.2 5432" \
	"openai connect tcp 127.0.10.1 8443" "auth connect tcp 127.0.10.3 8080" &
PIDS+=($!)
agent not-an-agent not-an-agent "openai connect tcp 127.0.10.1 8443" \
	"web connect tcp 127.0.10.9 80" &
PIDS+=($!)

start=$SECONDS
while kill -0 "$MASD_PID" 2>/dev/null; do
	sleep 5
	echo
	"$MASCTL" agents
	echo
	if [ "$SECONDS_LEFT" -gt 0 ] && [ $((SECONDS - start)) -ge "$SECONDS_LEFT" ]; then
		echo "demo: $SECONDS_LEFT seconds are up (DEMO_SECONDS=0 runs until Ctrl-C)"
		break
	fi
done
