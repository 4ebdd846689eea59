#!/usr/bin/env bash
# Fault: the policy file replaced while masd reloads it (SIGHUP, systemctl reload). Replaced by
# rename (what editors and config tools do) or rewritten in place in two halves: every reload
# applies version A or version B whole, never a torn mix, or keeps the policy in force (a file
# that never holds still for 100 ms is not read). And a SIGHUP that comes the moment masd
# answers reloads it, never ends it: no thread of masd's may take the signal's default action.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

# many destinations, so that a prefix cut at a line end would still be a valid policy
gen_policy() { # grant
	echo "version: 1"
	echo "destinations:"
	for i in $(seq 1 60); do echo "  d$i: { cidrs: [10.1.$i.0/24], ports: [$((1000 + i))] }"; done
	echo "permissions: { p: [$1] }"
	echo "roles: { r: [p] }"
	echo "agents:"
	echo "  a: { unit: mas-agent@a.service, role: r }"
}
gen_policy d1 >"$T/A.yaml"
gen_policy d2 >"$T/B.yaml"
cp "$T/A.yaml" "$T/policy.yaml"
mas_cgroup mas-agent@a.service

echo "# SIGHUP the moment masd answers, over restarts"
STARTS=${MAS_HUP_STARTS:-20}
hup_dead=0
for i in $(seq 1 "$STARTS"); do
	mas_start --policy "$T/policy.yaml" || exit 1
	kill -HUP "$MASD_PID"
	sleep 0.01
	kill -HUP "$MASD_PID"
	sleep 0.05
	if dead "$MASD_PID"; then
		hup_dead=$((hup_dead + 1))
		wait "$MASD_PID" 2>/dev/null
		echo "# start $i: masd ended on SIGHUP (status $?)"
		MASD_PID=
	else
		mas_stop
	fi
done
check "SIGHUP right after start: masd alive after each of $STARTS starts ($hup_dead ended)" \
	[ "$hup_dead" -eq 0 ]

mas_start --policy "$T/policy.yaml" || exit 1

RELOADS=${MAS_RELOADS:-50}
run_reloads() { # label
	local torn=0 a=0 b=0 i shown
	for i in $(seq 1 "$RELOADS"); do
		kill -HUP "$MASD_PID"
		sleep 0.02
		shown=$("$MASCTL" --json policy show | jq -r .policy)
		if [ "$shown" = "$(cat "$T/A.yaml")" ]; then
			a=$((a + 1))
		elif [ "$shown" = "$(cat "$T/B.yaml")" ]; then
			b=$((b + 1))
		else
			torn=$((torn + 1))
			printf '%s\n' "$shown" >"$T/torn.$1.$i"
		fi
	done
	echo "# $1: $RELOADS reloads: $a showed A, $b showed B, $torn neither"
	check "$1: every reload applied A or B whole ($torn torn)" [ "$torn" -eq 0 ]
	check "$1: both versions were seen" [ "$a" -gt 0 -a "$b" -gt 0 ]
}

echo "# replaced by rename"
(
	while [ ! -e "$T/stop1" ]; do
		cp "$T/A.yaml" "$T/.p.tmp" && mv "$T/.p.tmp" "$T/policy.yaml"
		sleep 0.$((RANDOM % 3))$((RANDOM % 10))
		cp "$T/B.yaml" "$T/.p.tmp" && mv "$T/.p.tmp" "$T/policy.yaml"
		sleep 0.$((RANDOM % 3))$((RANDOM % 10))
	done
) &
w=$!
run_reloads rename
touch "$T/stop1"
wait $w

echo "# rewritten in place, in two halves cut at a line end (each half valid YAML alone)"
(
	while [ ! -e "$T/stop2" ]; do
		for v in A B; do
			head -n 40 "$T/$v.yaml" >"$T/policy.yaml"
			sleep 0.02
			tail -n +41 "$T/$v.yaml" >>"$T/policy.yaml"
			sleep 0.$((RANDOM % 3 + 1))
		done
	done
) &
w=$!
RELOADS=${MAS_INPLACE_RELOADS:-25} run_reloads in-place
touch "$T/stop2"
wait $w
check "masd is still running" alive "$MASD_PID"
mas_done
