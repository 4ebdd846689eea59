#!/usr/bin/env bash
# Which decisions are events. Every decision is counted exactly, whatever the setting; every
# refusal is an event; of an agent's allowed decisions, by default (audit.allowed_events:
# new_flows) only the first of each flow (agent, address, port, protocol, verdict, generation)
# in the flow interval is an event, the rest are counted in the flow. allowed_events: all makes
# every allowed decision an event again. The event is most of what a decision costs in the
# kernel (docs/performance.md), so the default keeps it off the hot path of a repeated connect.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

policy() { # allowed_events
	cat <<YAML
version: 1
audit:
  flow_interval: 1d
  allowed_events: $1
destinations:
  ai:
    cidrs: [127.0.41.1/32, 127.0.41.2/32]
    ports: [7000]
    protocols: [tcp, udp]
  db:
    cidrs: [127.0.41.9/32]
    ports: [5432]
permissions:
  ai_access: [ai]
roles:
  agent: [ai_access]
agents:
  a: { unit: mas-agent@a.service, role: agent }
YAML
}
policy new_flows >"$T/new.yaml"
policy all >"$T/all.yaml"
A=mas-agent@a.service
mas_cgroup $A
mas_start --policy "$T/new.yaml" || exit 1

# events of agent a with verdict V to address ADDR in generation G
events() { # verdict addr gen
	"$MASCTL" --json events | jq --arg v "$1" --arg ad "$2" --argjson g "$3" \
		'[.[] | select(.agent == "a" and .verdict == $v and .address == $ad
			and .generation == $g)] | length'
}

echo "# new_flows (the default): the first allowed decision of each flow is an event"
g1=$("$MASCTL" --json status | jq .generation)
a0=$(agent_count a allowed)
d0=$(agent_count a denied)
probe_in $A loop tcp 127.0.41.1 7000 40 >/dev/null
probe_in $A loop tcp 127.0.41.2 7000 15 >/dev/null
probe_in $A loop tcp 127.0.41.9 5432 7 >/dev/null
a1=$(agent_count a allowed)
d1=$(agent_count a denied)
check "every allowed connect counted ($a0 -> $a1, 55 made)" [ $((a1 - a0)) -eq 55 ]
check "every denied connect counted ($d0 -> $d1, 7 made)" [ $((d1 - d0)) -eq 7 ]
n=$(events allow 127.0.41.1 "$g1")
check "40 allowed connects to one address are one event ($n)" [ "$n" -eq 1 ]
n=$(events allow 127.0.41.2 "$g1")
check "another address is another flow: one event ($n)" [ "$n" -eq 1 ]
n=$(events deny 127.0.41.9 "$g1")
check "every refusal is an event ($n of 7)" [ "$n" -eq 7 ]
probe_in $A loop udp 127.0.41.1 7000 5 >/dev/null
n=$("$MASCTL" --json events | jq '[.[] | select(.agent == "a" and .verdict == "allow"
	and .address == "127.0.41.1" and .protocol == "udp")] | length')
check "another protocol is another flow: one event ($n)" [ "$n" -eq 1 ]

echo "# a new generation starts new flows"
"$MASCTL" policy apply "$T/new.yaml" >/dev/null
g2=$("$MASCTL" --json status | jq .generation)
probe_in $A loop tcp 127.0.41.1 7000 10 >/dev/null
n=$(events allow 127.0.41.1 "$g2")
check "after an apply (generation $g2) the flow's first decision is an event again ($n)" \
	[ "$n" -eq 1 ]

echo "# allowed_events: all"
"$MASCTL" policy apply "$T/all.yaml" >/dev/null
g3=$("$MASCTL" --json status | jq .generation)
a2=$(agent_count a allowed)
probe_in $A loop tcp 127.0.41.1 7000 30 >/dev/null
a3=$(agent_count a allowed)
n=$(events allow 127.0.41.1 "$g3")
check "with allowed_events: all, 30 allowed connects are 30 events ($n)" [ "$n" -eq 30 ]
check "and 30 counted ($a2 -> $a3)" [ $((a3 - a2)) -eq 30 ]
"$MASCTL" policy show >"$T/shown.yaml"
check "masctl policy show carries the setting" grep -q "allowed_events: all" "$T/shown.yaml"
mas_done
