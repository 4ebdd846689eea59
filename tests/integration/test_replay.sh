#!/usr/bin/env bash
# policy diff and replay: real traffic is recorded as flow summaries; the diff of a stricter
# policy names its meaning; its replay predicts which flows it would refuse; the same traffic
# under the applied policy is refused exactly there, with the same counts.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

cat >"$T/p1.yaml" <<'YAML'
version: 1
audit:
  flow_interval: 1s
destinations:
  ai:
    cidrs: [127.0.50.1/32]
    ports: [7000]
    class: ai_endpoints
  db:
    cidrs: [127.0.50.2/32]
    ports: [5432]
  web:
    cidrs: [127.0.50.0/24]
    ports: ["8000-8100"]
rate_limits:
  ai_endpoints: { requests_per_minute: 100000, burst_size: 100000 }
permissions:
  ai_access: [ai]
  read: [db]
  browse: [web]
roles:
  agent: [ai_access, read, browse]
  user: [read, browse]
agents:
  writer:
    unit: mas-agent@writer.service
    role: agent
  reader:
    unit: mas-agent@reader.service
    role: user
YAML
# stricter: the writer loses the database, the web range shrinks to port 8000, the AI
# endpoint's limit changes
sed -e 's/  agent: \[ai_access, read, browse\]/  agent: [ai_access, browse]/' \
	-e 's/"8000-8100"/8000/' \
	-e 's/requests_per_minute: 100000, burst_size: 100000/requests_per_minute: 60000, burst_size: 100000/' \
	"$T/p1.yaml" >"$T/p2.yaml"

W=mas-agent@writer.service
R=mas-agent@reader.service
mas_cgroup "$W"
mas_cgroup "$R"
mas_start --policy "$T/p1.yaml" || exit 1

traffic() {
	probe_in "$W" loop tcp 127.0.50.1 7000 5 >/dev/null
	probe_in "$W" loop tcp 127.0.50.2 5432 3 >/dev/null
	probe_in "$W" loop tcp 127.0.50.3 8080 2 >/dev/null
	probe_in "$W" loop tcp 127.0.50.3 8000 2 >/dev/null
	probe_in "$R" loop tcp 127.0.50.2 5432 4 >/dev/null
	probe_in "$R" loop tcp 127.0.50.4 8050 6 >/dev/null
	probe_in "$R" loop tcp 127.0.50.1 7000 2 >/dev/null
	probe_in "$R" loop tcp 127.0.50.9 9 1 >/dev/null
}

flow=$(awk '$2 == "MAS_MSGID_FLOW_SUMMARY" { gsub(/"/, "", $3); print $3 }' "$HERE/daemon/msgid.h")
# Denied flows of one generation as sorted "agent addr port count" lines.
denied_in() { # generation
	journalctl -t masd MESSAGE_ID="$flow" -o json | jq -s -r --arg g "$1" '
		[.[] | select(.MAS_GENERATION == $g and .MAS_VERDICT == "deny")]
		| group_by([.MAS_AGENT, .MAS_ADDR, .MAS_PORT])
		| .[] | "\(.[0].MAS_AGENT) \(.[0].MAS_ADDR) \(.[0].MAS_PORT) \(map(.MAS_COUNT | tonumber) | add)"' |
		sort
}

echo "# traffic under the policy in force"
traffic
sleep 2.5
journal_sync
g1=$("$MASCTL" --json status | jq -r '.generation // .policy_generation')
before=$(denied_in "$g1")
echo "# refused under generation $g1:"
echo "$before" | sed 's/^/#   /'

echo "# diff"
"$MASCTL" policy diff "$T/p2.yaml" --replay 5m | tee "$T/diff.txt" | sed 's/^/#   /'
check "the diff says the writer loses the database" grep -q 'grant-lost *writer *may no longer reach db' "$T/diff.txt"
check "the diff names the web ports change" grep -q 'destination-changed *web *ports 8000-8100 -> 8000' "$T/diff.txt"
check "the diff names the limit change" grep -q 'limit-changed *ai_endpoints' "$T/diff.txt"
"$MASCTL" --json policy diff "$T/p2.yaml" --replay 5m >"$T/diff.json"
check "the JSON diff is one document" jq -e '.changes | length > 0' "$T/diff.json"
predicted=$(jq -r '.replay.flows_changing[] | select(.new == "deny")
	| "\(.agent) \(.address) \(.port) \(.count)"' "$T/diff.json" | sort)
n=$(echo "$predicted" | grep -c .)
check "the replay predicts refusals ($n flows)" [ "$n" -ge 2 ]
check "the replay shows old -> new verdicts" grep -q 'allow -> deny' "$T/diff.txt"

echo "# the same traffic under the stricter policy"
"$MASCTL" policy apply "$T/p2.yaml" >/dev/null
g2=$("$MASCTL" --json status | jq -r '.generation // .policy_generation')
traffic
sleep 2.5
journal_sync
after=$(denied_in "$g2")
newly=$(comm -13 <(echo "$before" | awk '{print $1, $2, $3}') \
	<(echo "$after" | awk '{print $1, $2, $3}'))
actual=$(echo "$after" | while read -r a ad p c; do
	echo "$newly" | grep -qx "$a $ad $p" && echo "$a $ad $p $c"
done | sort)
echo "# predicted refusals:"
echo "$predicted" | sed 's/^/#   /'
echo "# refusals the applied policy produced that the old one did not:"
echo "$actual" | sed 's/^/#   /'
check "the predicted refusals are exactly the new ones, with their counts" [ "$predicted" = "$actual" ]
check "flows refused under both stay refused and are not predicted as changes" \
	[ "$(comm -12 <(echo "$before") <(echo "$after") | grep -c .)" -ge 2 ]

echo "# usage errors"
"$MASCTL" policy diff "$T/p2.yaml" --replay soon >/dev/null 2>&1
check "a bad duration is a usage error" [ $? -eq 2 ]
echo "version: 2" >"$T/bad.yaml"
"$MASCTL" policy diff "$T/bad.yaml" >/dev/null 2>&1
check "an invalid policy exits 3" [ $? -eq 3 ]

mas_done
