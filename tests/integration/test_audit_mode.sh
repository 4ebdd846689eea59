#!/usr/bin/env bash
# Audit mode and flow records: an agent in audit mode passes what enforce would refuse, every
# such decision counted and recorded as would-deny; one apply switches it to enforce; the
# global mode works the same. Flow summaries: one record per flow per interval with exact
# counts, first and last time, ai_requests for the AI class, agent_actions otherwise.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

policy() { # global-mode agent-mode
	cat <<YAML
version: 1
mode: $1
audit:
  flow_interval: 1s
destinations:
  ai:
    cidrs: [127.0.40.1/32]
    ports: [7000]
    class: ai_endpoints
    protected: true
  db:
    cidrs: [127.0.40.2/32]
    ports: [5432]
rate_limits:
  ai_endpoints: { requests_per_minute: 100000, burst_size: 100000 }
permissions:
  ai_access: [ai]
roles:
  agent: [ai_access]
agents:
  trial:
    unit: mas-agent@trial.service
    role: agent
$([ "$2" = inherit ] || echo "    mode: $2")
YAML
}
A=mas-agent@trial.service
mas_cgroup "$A"
mas_cgroup other
policy enforce audit >"$T/audit.yaml"
policy enforce enforce >"$T/enforce.yaml"
policy audit inherit >"$T/global-audit.yaml"
mas_start --policy "$T/audit.yaml" || exit 1

echo "# the agent in audit mode"
expect "$A" allowed connect tcp 127.0.40.1 7000
expect "$A" allowed connect tcp 127.0.40.2 5432
expect "$A" allowed sendto 127.0.40.9 53
expect other denied connect tcp 127.0.40.1 7000
w0=$(agent_count trial would_deny)
d0=$(agent_count trial denied)
out=$(probe_in "$A" loop tcp 127.0.40.2 5432 40)
check "40 connects the policy does not grant pass ($out)" [ "$out" = "allowed=40 denied=0 other=0" ]
out=$(probe_in "$A" loop tcp 127.0.40.1 7000 25)
check "25 granted connects pass ($out)" [ "$out" = "allowed=25 denied=0 other=0" ]
w1=$(agent_count trial would_deny)
d1=$(agent_count trial denied)
check "would-deny counted exactly ($w0 -> $w1)" [ $((w1 - w0)) -eq 40 ]
check "nothing counted as denied ($d0 -> $d1)" [ "$d1" -eq "$d0" ]
check "masctl agents shows the agent's mode as audit" \
	[ "$("$MASCTL" --json agents | jq -r '.[] | select(.agent == "trial") | .mode')" = audit ]

echo "# one apply switches it to enforce"
gen=$("$MASCTL" policy apply "$T/enforce.yaml")
check "apply printed a generation ($gen)" [ -n "$gen" ]
expect "$A" denied connect tcp 127.0.40.2 5432
expect "$A" allowed connect tcp 127.0.40.1 7000
w2=$(agent_count trial would_deny)
check "no more would-deny once enforced ($w1 -> $w2)" [ "$w2" -eq "$w1" ]

echo "# the global mode"
"$MASCTL" policy apply "$T/global-audit.yaml" >/dev/null
expect "$A" allowed connect tcp 127.0.40.2 5432
expect other allowed connect tcp 127.0.40.1 7000
"$MASCTL" policy apply "$T/enforce.yaml" >/dev/null
last_gen=$("$MASCTL" --json status | jq .generation)
expect other denied connect tcp 127.0.40.1 7000

echo "# the journal"
msgid() { awk -v n="MAS_MSGID_$1" '$2 == n { gsub(/"/, "", $3); print $3 }' "$HERE/daemon/msgid.h"; }
# a summary holds everything decided before it: wait (at most 10 s) for the one that holds the
# last decision, the deny just above
for _ in $(seq 1 20); do
	sleep 0.5
	journal_sync
	journalctl -t masd MESSAGE_ID="$(msgid FLOW_SUMMARY)" MAS_GENERATION="$last_gen" \
		MAS_AGENT="(none)" MAS_VERDICT=deny -o json | grep -q . && break
done
j() { journalctl -t masd MESSAGE_ID="$1" -o json | jq -c "$2" | wc -l; }
n=$(j "$(msgid DECISION_WOULD_DENY)" 'select(.MAS_AGENT == "trial" and .MAS_VERDICT == "would-deny"
	and .MAS_REASON == "not-granted" and .MAS_ADDR == "127.0.40.2")')
check "a would-deny is a journal record with its own MESSAGE_ID ($n)" [ "$n" -ge 1 ]
n=$(j "$(msgid DECISION_WOULD_DENY)" 'select(.MAS_AGENT == "(none)" and .MAS_REASON == "protected")')
check "a would-deny of a process that is no agent under the global audit mode ($n)" [ "$n" -ge 1 ]
flow=$(msgid FLOW_SUMMARY)
sum() { journalctl -t masd MESSAGE_ID="$flow" -o json | jq -s "$1"; }
n=$(sum '[.[] | select(.MAS_AGENT == "trial" and .MAS_ADDR == "127.0.40.2" and .MAS_PORT == "5432"
	and .MAS_VERDICT == "would-deny") | .MAS_COUNT | tonumber] | add')
check "flow records count every would-deny connect to the database ($n = 42: 1 + 40 + 1 under the global mode)" [ "$n" = 42 ]
n=$(sum '[.[] | select(.MAS_AGENT == "trial" and .MAS_ADDR == "127.0.40.1" and .MAS_VERDICT == "allow"
	and .MAS_CATEGORY == "ai_requests" and .MAS_DEST == "ai") | .MAS_COUNT | tonumber] | add')
check "flows to the AI endpoint are ai_requests, every connect counted ($n = 27)" [ "$n" = 27 ]
n=$(sum '[.[] | select(.MAS_AGENT == "trial" and .MAS_ADDR == "127.0.40.2" and .MAS_VERDICT == "would-deny"
	and .MAS_CATEGORY == "agent_actions")] | length')
check "other flows are agent_actions ($n)" [ "$n" -ge 1 ]
n=$(sum '[.[] | select(.MAS_VERDICT == "deny" and .MAS_AGENT == "trial" and .MAS_PORT == "5432")
	| .MAS_COUNT | tonumber] | add')
check "the enforced deny is a flow too ($n)" [ "$n" = 1 ]
n=$(sum '[.[] | select((.MAS_FIRST_USEC | tonumber) > (.MAS_LAST_USEC | tonumber))] | length')
check "every flow's first time is not after its last ($n bad)" [ "$n" -eq 0 ]
n=$(sum '[.[] | select(.MAS_AGENT == "trial" and .MAS_ADDR == "127.0.40.2" and .MAS_PORT == "5432"
	and .MAS_VERDICT == "would-deny")] | length')
check "one record per flow per interval, not per connect ($n records for 42 connects)" [ "$n" -le 4 ]

mas_done
