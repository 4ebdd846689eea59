#!/usr/bin/env bash
# Enforcement outlives masd: kill -9 leaves the pinned programs enforcing, a new masd adopts
# the same links without detaching them, a connect loop across both sees no forbidden
# connection allowed, and masctl teardown removes it all.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai: { cidrs: [127.0.20.1/32], ports: [7000], protected: true }
  db: { cidrs: [127.0.20.2/32], ports: [5432], protected: true }
permissions:
  ai_access: [ai]
roles:
  agent: [ai_access]
agents:
  writer: { unit: mas-agent@writer.service, role: agent }
YAML
W=mas-agent@writer.service
mas_cgroup "$W"
mas_cgroup other
mas_start --policy "$T/policy.yaml" || exit 1
expect "$W" denied connect tcp 127.0.20.2 5432
expect "$W" allowed connect tcp 127.0.20.1 7000

link_id() { bpftool -j link show pinned "$BPFFS/link_connect4" | jq .id; }
id0=$(link_id)
d0=$(agent_count writer denied)

# forbidden attempts from an agent and from a process that is no agent, across kill and restart
probe_in "$W" loopfor tcp 127.0.20.2 5432 4 >"$T/agent.loop" &
l1=$!
probe_in other loopfor tcp 127.0.20.1 7000 4 >"$T/other.loop" &
l2=$!
sleep 0.7
mas_kill9
check "pins stay after kill -9" [ -e "$BPFFS/link_connect4" -a -e "$BPFFS/mas_counters" ]
expect "$W" denied connect tcp 127.0.20.2 5432
expect other denied connect tcp 127.0.20.1 7000
sleep 0.7
mas_start --policy "$T/policy.yaml" || exit 1
check "the new masd says it adopted the pinned enforcement" grep -q "adopted" "$T/masd.log"
id1=$(link_id)
check "the same link kept enforcing (id $id0 -> $id1)" [ -n "$id0" -a "$id0" = "$id1" ]
gen=$("$MASCTL" --json status | jq .generation)
check "the generation carries on after adoption ($gen)" [ "$gen" -eq 2 ]
wait $l1 $l2
read -r agent_loop <"$T/agent.loop"
read -r other_loop <"$T/other.loop"
check "the agent's loop saw no forbidden connection allowed ($agent_loop)" \
	[ "${agent_loop%% *}" = "allowed=0" ]
check "the other process's loop saw none either ($other_loop)" [ "${other_loop%% *}" = "allowed=0" ]
denied=${agent_loop#*denied=}
denied=${denied%% *}
d1=$(agent_count writer denied)
check "counters survived the restart and counted every attempt ($d0 + $denied + 1 = $d1)" \
	[ $((d0 + denied + 1)) -eq "$d1" ]

"$MASCTL" teardown >"$T/teardown.out" 2>&1
rc=$?
check "masctl teardown succeeds (exit $rc)" [ $rc -eq 0 ]
for _ in $(seq 50); do alive "$MASD_PID" || break; sleep 0.1; done
check "masd stops after teardown" dead "$MASD_PID"
wait "$MASD_PID" 2>/dev/null
MASD_PID=
check "no pins remain" [ ! -e "$BPFFS/link_connect4" -a ! -e "$BPFFS/mas_counters" ]
expect "$W" allowed connect tcp 127.0.20.2 5432
expect other allowed connect tcp 127.0.20.1 7000
mas_done
