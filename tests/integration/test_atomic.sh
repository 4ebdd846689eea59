#!/usr/bin/env bash
# A policy swap is one step. Two policies give two agents opposite grants AND list the two
# destinations in opposite order, so every map a decision reads differs between them. Both
# agents connect in a loop while the two policies are applied back and forth; each event
# carries the generation (read from the slot's meta map) beside the verdict and destination
# (read from its agent and prefix maps): a decision that mixed two slots would show a verdict
# or a destination of the other policy for its generation.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

# every allowed decision an event (not only the first of each flow): the check below reads
# every decision's generation from its event
# odd generations: x then y, A may reach x, B may reach y
cat >"$T/odd.yaml" <<'YAML'
version: 1
audit: { allowed_events: all }
destinations:
  x: { cidrs: [127.0.30.1/32], ports: [80] }
  y: { cidrs: [127.0.30.2/32], ports: [80] }
permissions: { pa: [x], pb: [y] }
roles: { ra: [pa], rb: [pb] }
agents:
  a: { unit: mas-agent@a.service, role: ra }
  b: { unit: mas-agent@b.service, role: rb }
YAML
# even generations: y then x, A may reach y, B may reach x
cat >"$T/even.yaml" <<'YAML'
version: 1
audit: { allowed_events: all }
destinations:
  y: { cidrs: [127.0.30.2/32], ports: [80] }
  x: { cidrs: [127.0.30.1/32], ports: [80] }
permissions: { pa: [y], pb: [x] }
roles: { ra: [pa], rb: [pb] }
agents:
  a: { unit: mas-agent@a.service, role: ra }
  b: { unit: mas-agent@b.service, role: rb }
YAML
mas_cgroup mas-agent@a.service
mas_cgroup mas-agent@b.service
mas_start --policy "$T/odd.yaml" || exit 1

APPLIES=${MAS_ATOMIC_APPLIES:-100}
probe_in mas-agent@a.service alternate 127.0.30.1 80 127.0.30.2 80 900 5000 >"$T/a.out" &
pa=$!
probe_in mas-agent@b.service alternate 127.0.30.1 80 127.0.30.2 80 900 5000 >"$T/b.out" &
pb=$!
fails=0
for i in $(seq 2 $((APPLIES + 1))); do
	if [ $((i % 2)) -eq 0 ]; then f=even; else f=odd; fi
	"$MASCTL" policy apply "$T/$f.yaml" >/dev/null || fails=$((fails + 1))
done
wait $pa $pb
check "$APPLIES applies succeeded ($fails failed)" [ $fails -eq 0 ]
gen=$("$MASCTL" --json status | jq .generation)
check "the generation counted every apply ($gen)" [ "$gen" -eq $((APPLIES + 1)) ]

"$MASCTL" --json events >"$T/events.json"
total=$(jq '[.[] | select(.agent == "a" or .agent == "b")] | length' "$T/events.json")
check "the agents' decisions were all reported ($total of 3600)" [ "$total" -eq 3600 ]
# the verdict and destination each policy gives: odd: a->x, b->y; even: a->y, b->x
bad=$(jq '[.[] | select(.agent == "a" or .agent == "b")
	| (if .address == "127.0.30.1" then "x" else "y" end) as $d
	| (if (.generation % 2) == 1 then (if .agent == "a" then "x" else "y" end)
	   else (if .agent == "a" then "y" else "x" end) end) as $granted
	| select(.destination != $d or (.verdict == "allow") != ($d == $granted))] | length' \
	"$T/events.json")
check "every decision belongs wholly to the policy of its generation ($bad mixed)" [ "$bad" -eq 0 ]
gens=$(jq '[.[] | select(.agent == "a" or .agent == "b") | .generation] | unique | length' \
	"$T/events.json")
check "the decisions span many generations ($gens)" [ "$gens" -ge 10 ]
odd=$(grep -c '^AD$' "$T/a.out")
even=$(grep -c '^DA$' "$T/a.out")
other=$(grep -vc -e '^AD$' -e '^DA$' "$T/a.out")
echo "# agent a saw $odd pairs under odd, $even under even, $other straddling a flip"
check "agent a saw both policies" [ "$odd" -gt 0 -a "$even" -gt 0 ]
check "no connect failed otherwise" [ "$(cat "$T/a.out" "$T/b.out" | grep -c "?")" -eq 0 ]
mas_done
