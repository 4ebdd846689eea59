#!/usr/bin/env bash
# Fault: pins removed behind masd's back. masd holds its links, so removing a link's pin does
# not detach it: enforcement never stops, masd's tick pins every missing link and map again
# and records it, and a masd started afterwards adopts the same links.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai: { cidrs: [127.0.20.1/32], ports: [7000], protected: true }
permissions: { ai_access: [ai] }
roles: { agent: [ai_access] }
agents:
  writer: { unit: mas-agent@writer.service, role: agent }
YAML
W=mas-agent@writer.service
mas_cgroup "$W"
mas_cgroup other
mas_start --policy "$T/policy.yaml" || exit 1
link_id() { bpftool -j link show pinned "$BPFFS/link_connect4" 2>/dev/null | jq .id; }
id0=$(link_id)

probe_in other loopfor tcp 127.0.20.1 7000 3 >"$T/other.loop" &
l1=$!
probe_in "$W" loopfor tcp 127.0.20.9 9 3 >"$T/agent.loop" &
l2=$!
sleep 0.3
rm -f "$BPFFS"/link_* "$BPFFS/mas_counters" "$BPFFS/mas_active"
check "the pins are gone" [ ! -e "$BPFFS/link_connect4" ]
expect other denied connect tcp 127.0.20.1 7000
expect "$W" denied connect tcp 127.0.20.9 9
for _ in $(seq 30); do [ -e "$BPFFS/link_connect4" ] && break; sleep 0.1; done
check "masd pinned the links again within its tick" [ -e "$BPFFS/link_connect4" -a \
	-e "$BPFFS/link_sendmsg6" -a -e "$BPFFS/link_sock_create" ]
check "and the maps" [ -e "$BPFFS/mas_counters" -a -e "$BPFFS/mas_active" ]
check "the same link as before ($id0 -> $(link_id))" [ "$(link_id)" = "$id0" ]
wait $l1 $l2
read -r o <"$T/other.loop"
read -r a <"$T/agent.loop"
check "no protected connect got through while the pins were gone ($o)" [ "${o%% *}" = allowed=0 ]
check "no forbidden agent connect got through ($a)" [ "${a%% *}" = allowed=0 ]
journal_sync
restored_id=$(awk '/MAS_MSGID_PINS_RESTORED /{gsub(/"/,"",$3); print $3}' "$HERE/daemon/msgid.h")
n=$(journalctl -t masd MESSAGE_ID="$restored_id" -o cat | grep -c "pinned again")
check "the restoration is an audit record ($n)" [ "$n" -ge 1 ]

# the whole bpffs directory removed: restored too; then a restart adopts the same links
rm -rf "$BPFFS"
for _ in $(seq 30); do [ -e "$BPFFS/link_connect4" ] && break; sleep 0.1; done
check "after the directory was removed, the pins are back" [ -e "$BPFFS/link_connect4" ]
mas_kill9
expect other denied connect tcp 127.0.20.1 7000
mas_start --policy "$T/policy.yaml" || exit 1
check "a new masd adopts the restored pins" grep -q "adopted" "$T/masd.log"
check "still the same link ($(link_id))" [ "$(link_id)" = "$id0" ]
expect other denied connect tcp 127.0.20.1 7000
expect "$W" allowed connect tcp 127.0.20.1 7000
mas_done
