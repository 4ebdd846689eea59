#!/usr/bin/env bash
# Fault: masd killed with SIGKILL at random points of an apply, MAS_KILLS times (100; make soak
# runs 1000), with connect loops running throughout. Never unenforced: an agent granted nothing
# and a process that is no agent never reach what they may not. Never a mix: agent a's pairs of
# connects (x then y, 1 ms apart) show one policy or the other (AD or DA); a pair that differs
# from both must straddle a generation change, so there are no more of them than changes.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
# with a journald, a restart after a crash finds the last run's records at once (the audit
# trail's barrier); without one it waits for it
journald_start || mas_skip "cannot start a private journald"

for v in odd even; do
	if [ $v = odd ]; then ga=x; else ga=y; fi
	cat >"$T/$v.yaml" <<YAML
version: 1
destinations:
  x: { cidrs: [127.0.30.1/32], ports: [80] }
  y: { cidrs: [127.0.30.2/32], ports: [80] }
  z: { cidrs: [127.0.30.3/32], ports: [80], protected: true }
permissions: { pa: [$ga], none: [] }
roles: { ra: [pa], rn: [none] }
agents:
  a: { unit: mas-agent@a.service, role: ra }
  n: { unit: mas-agent@n.service, role: rn }
YAML
done
A=mas-agent@a.service
N=mas-agent@n.service
mas_cgroup "$A"
mas_cgroup "$N"
mas_cgroup other
mas_start --policy "$T/odd.yaml" || exit 1

KILLS=${MAS_KILLS:-100}
# loops in one-second rounds until the kills are done, each round's counts on a line
until_done() { # cgroup target out
	while [ ! -e "$T/done" ]; do probe_in "$1" loopfor tcp "$2" 80 1; done >"$3"
}
probe_in "$A" alternate 127.0.30.1 80 127.0.30.2 80 100000000 1000 >"$T/a.out" &
pa=$!
until_done "$N" 127.0.30.1 "$T/n1.out" &
pn1=$!
until_done "$N" 127.0.30.3 "$T/n2.out" &
pn2=$!
until_done other 127.0.30.3 "$T/o.out" &
po=$!

applied=0 started=0 startfail=0
for i in $(seq 1 "$KILLS"); do
	if [ $((i % 2)) -eq 0 ]; then f=odd; else f=even; fi
	"$MASCTL" policy apply "$T/$f.yaml" >/dev/null 2>&1 &
	ap=$!
	# a random point: before, during or after the apply (which takes about 100 ms)
	sleep "$(printf '0.%03d' $((RANDOM % 160)))"
	mas_kill9
	wait $ap && applied=$((applied + 1))
	if [ $((i % 10)) -eq 0 ]; then
		# now and then kill during masd's start (adoption) too
		"$MASD" --state-dir "$T/state" --runtime-dir "$T/run" --bpffs-dir "$BPFFS" \
			--cgroup-root "$CG" --policy "$T/odd.yaml" >>"$T/masd.log" 2>&1 &
		sleep "$(printf '0.%03d' $((RANDOM % 30)))"
		kill -9 $! 2>/dev/null
		wait $! 2>/dev/null
	fi
	if mas_start --policy "$T/odd.yaml" 2>>"$T/start.err"; then
		started=$((started + 1))
	else
		startfail=$((startfail + 1))
	fi
done
echo "# $KILLS kills, $applied applies answered before the kill, $started restarts"
check "masd restarted and adopted after every kill ($startfail failures)" [ "$startfail" -eq 0 ]
gen=$("$MASCTL" --json status | jq .generation)
touch "$T/done"
kill $pa 2>/dev/null
wait $pa $pn1 $pn2 $po 2>/dev/null
total() { # out: "allowed=A denied=D" summed over the rounds
	tr ' =' '\n\n' <"$1" | awk 'NR % 2 == 1 { k = $0; next } { s[k] += $0 }
		END { printf "allowed=%d denied=%d other=%d", s["allowed"], s["denied"], s["other"] }'
}
n1=$(total "$T/n1.out")
n2=$(total "$T/n2.out")
o=$(total "$T/o.out")
check "an agent granted nothing never reached x ($n1)" [ "${n1%% *}" = allowed=0 ]
check "nor the protected z ($n2)" [ "${n2%% *}" = allowed=0 ]
check "a process that is no agent never reached the protected z ($o)" [ "${o%% *}" = allowed=0 ]
ad=$(grep -c '^AD$' "$T/a.out")
da=$(grep -c '^DA$' "$T/a.out")
aa=$(grep -c '^AA$' "$T/a.out")
dd=$(grep -c '^DD$' "$T/a.out")
q=$(grep -c '?' "$T/a.out")
echo "# agent a: $ad pairs under odd, $da under even, $aa AA, $dd DD, $q other; generation $gen"
check "agent a saw both policies" [ "$ad" -gt 0 -a "$da" -gt 0 ]
check "no connect failed otherwise ($q)" [ "$q" -eq 0 ]
check "never both allowed or both denied beyond the flips ($((aa + dd)) <= $gen)" \
	[ $((aa + dd)) -le "$gen" ]
check "the generation reached counts applies ($gen)" [ "$gen" -ge 2 ]
# what masd shows is what the kernel enforces: the text of the generation in force
shown=$("$MASCTL" --json policy show | jq -r .policy)
if [ "$(grep -c 'pa: \[x\]' <<<"$shown")" -eq 1 ]; then want=AD; else want=DA; fi
out=$(probe_in "$A" alternate 127.0.30.1 80 127.0.30.2 80 1 0)
check "the kernel enforces the policy masd shows ($want, got $out)" [ "$out" = "$want" ]
mas_done
