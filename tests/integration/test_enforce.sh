#!/usr/bin/env bash
# The verdict matrix against the real programs: TCP and UDP over IPv4 and IPv6, sendto and
# connect, v4-mapped addresses, a child cgroup of an agent, a process that is no agent against
# protected destinations, raw and packet sockets; exact counters; records in a real journald.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai:
    cidrs: [127.0.20.1/32, "::1/128"]
    ports: [7000]
    protocols: [tcp, udp]
    protected: true
  db:
    cidrs: [127.0.20.2/32]
    ports: [5432]
    protected: true
  web:
    cidrs: [127.0.20.0/24]
    ports: ["8000-8100"]
  named:
    hosts: [localhost]
    ports: [9000]
    protected: true
permissions:
  ai_access: [ai]
  read: [db]
roles:
  agent: [ai_access]
  reader: [read]
agents:
  writer:
    unit: mas-agent@writer.service
    role: agent
    allow: [web, named]
  reader:
    unit: mas-agent@reader.service
    role: reader
YAML
W=mas-agent@writer.service
R=mas-agent@reader.service
mas_cgroup "$W"
mas_cgroup "$W/child"
mas_cgroup "$R"
mas_cgroup other
mas_start --policy "$T/policy.yaml" || exit 1

echo "# the agent granted ai, with web allowed"
expect "$W" allowed connect tcp 127.0.20.1 7000
expect "$W" allowed connect tcp ::1 7000
expect "$W" denied connect tcp 127.0.20.2 5432
expect "$W" allowed connect tcp 127.0.20.5 8050
expect "$W" denied connect tcp 127.0.20.5 8101
# 127.0.21.1:7000 is ai's local alias (ai is protected and on loopback); another port is not
expect "$W" allowed connect tcp 127.0.21.1 7000
expect "$W" denied connect tcp 127.0.21.1 7001
expect "$W" denied connect tcp ::1 7001
expect "$W" allowed sendto 127.0.20.1 7000
expect "$W" allowed sendto ::1 7000
expect "$W" denied sendto 127.0.20.2 5432
expect "$W" denied sendto 127.0.20.5 8050
expect "$W" allowed connect udp 127.0.20.1 7000
expect "$W" denied connect udp 127.0.20.9 9
expect "$W" allowed connect tcp ::ffff:127.0.20.1 7000
expect "$W" denied connect tcp ::ffff:127.0.20.2 5432
expect "$W" denied sendto ::ffff:127.0.20.2 5432
expect "$W" denied socket raw
expect "$W" denied socket raw6
# packet sockets: refused by the BPF LSM where the kernel has it; elsewhere by the kernel's
# CAP_NET_RAW check, which an agent running as its own user does not pass (as root it would)
out=$(probe_in "$W" exec setpriv --reuid=65534 --regid=65534 --clear-groups \
	--inh-caps=-all --bounding-set=-all "$PROBE" socket packet)
check "an agent as its own user cannot open a packet socket ($out)" [ "${out%% *}" = denied ]

echo "# a host name is resolved at apply"
expect "$W" allowed connect tcp 127.0.0.1 9000
expect "$R" denied connect tcp 127.0.0.1 9000
expect other denied connect tcp 127.0.0.1 9000

echo "# a child cgroup of the agent is the agent"
expect "$W/child" allowed connect tcp 127.0.20.1 7000
expect "$W/child" denied connect tcp 127.0.20.2 5432
expect "$W/child" denied socket raw

echo "# the reader"
expect "$R" allowed connect tcp 127.0.20.2 5432
expect "$R" denied connect tcp 127.0.20.1 7000
expect "$R" denied connect tcp ::1 7000
expect "$R" denied sendto 127.0.20.1 7000
expect "$R" denied connect tcp ::ffff:127.0.20.1 7000

echo "# a process that is no agent: everything but the protected destinations"
expect other denied connect tcp 127.0.20.1 7000
expect other denied connect tcp ::1 7000
expect other denied connect tcp ::ffff:127.0.20.1 7000
expect other denied sendto 127.0.20.1 7000
expect other denied connect tcp 127.0.20.2 5432
expect other allowed connect tcp 127.0.20.5 8050
expect other allowed connect tcp 127.0.20.9 9
expect other allowed connect tcp ::1 7001
expect other allowed socket raw

echo "# counters are exact"
a0=$(agent_count writer allowed)
d0=$(agent_count writer denied)
out=$(probe_in "$W" loop tcp 127.0.20.1 7000 500)
check "500 allowed connects made ($out)" [ "$out" = "allowed=500 denied=0 other=0" ]
out=$(probe_in "$W/child" loop tcp 127.0.20.2 5432 300)
check "300 denied connects made ($out)" [ "$out" = "allowed=0 denied=300 other=0" ]
a1=$(agent_count writer allowed)
d1=$(agent_count writer denied)
check "writer's allowed counter grew by exactly 500 ($a0 -> $a1)" [ $((a1 - a0)) -eq 500 ]
check "writer's denied counter grew by exactly 300 ($d0 -> $d1)" [ $((d1 - d0)) -eq 300 ]
drops=$("$MASCTL" --json status | jq .ringbuf_drops)
check "status reports ring-buffer drops as a number ($drops)" [ -n "$drops" ]

echo "# the journal"
deny_id=$(awk '/MAS_MSGID_DECISION_DENY /{gsub(/"/,"",$3); print $3}' "$HERE/daemon/msgid.h")
applied_id=$(awk '/MAS_MSGID_POLICY_APPLIED /{gsub(/"/,"",$3); print $3}' "$HERE/daemon/msgid.h")
sleep 0.5
journal_sync
jq_deny='select(.MAS_AGENT == "reader" and .MAS_VERDICT == "deny" and .MAS_REASON == "not-granted"
	and .MAS_ADDR == "127.0.20.1" and .MAS_PORT == "7000" and .MAS_DEST == "ai"
	and .MAS_PROTO == "tcp" and .MAS_CATEGORY == "agent_actions" and .MAS_GENERATION == "1")'
n=$(journalctl -t masd MESSAGE_ID="$deny_id" -o json | jq -c "$jq_deny" | wc -l)
check "the reader's denied connect to ai is a journal record with its fields ($n)" [ "$n" -ge 1 ]
n=$(journalctl -t masd MESSAGE_ID="$applied_id" -o json |
	jq -c 'select(.MAS_GENERATION == "1" and .MAS_CATEGORY == "data_changes")' | wc -l)
check "the apply is a journal record ($n)" [ "$n" -eq 1 ]
n=$(journalctl -t masd -o json | jq -c 'select(.MAS_AGENT == "(none)" and .MAS_REASON == "protected")' | wc -l)
check "a protected denial of a process that is no agent is recorded ($n)" [ "$n" -ge 1 ]
n=$(journalctl -t masd -o json | jq -c 'select(.CODE_FILE != null)' | wc -l)
check "records carry no source-location fields ($n)" [ "$n" -eq 0 ]

mas_done
