#!/usr/bin/env bash
# The Prometheus textfile: written atomically, exact decision counters per agent and verdict,
# the policy generation and apply time, and the same figures as masctl status --json.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai: { cidrs: [127.0.20.1/32], ports: [7000], protected: true }
  db: { cidrs: [127.0.20.2/32], ports: [5432] }
permissions: { ai_access: [ai] }
roles: { agent: [ai_access] }
agents:
  writer: { unit: mas-agent@writer.service, role: agent }
YAML
mas_cgroup mas-agent@writer.service
mas_start --policy "$T/policy.yaml" --metrics-file "$T/metrics.prom" || exit 1
probe_in mas-agent@writer.service loop tcp 127.0.20.1 7000 7 >/dev/null
probe_in mas-agent@writer.service loop tcp 127.0.20.2 5432 3 >/dev/null
m() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics.prom" 2>/dev/null; }
for _ in $(seq 80); do
	[ "$(m 'masd_decisions_total{agent="writer",verdict="deny"}')" = 3 ] && break
	sleep 0.1
done
check "the file exists and is world-readable ($(stat -c %a "$T/metrics.prom" 2>&1))" \
	[ "$(stat -c %a "$T/metrics.prom")" = 644 ]
check "allowed decisions are counted exactly ($(m 'masd_decisions_total{agent="writer",verdict="allow"}'))" \
	[ "$(m 'masd_decisions_total{agent="writer",verdict="allow"}')" = 7 ]
check "denied decisions too" [ "$(m 'masd_decisions_total{agent="writer",verdict="deny"}')" = 3 ]
check "the policy generation" [ "$(m masd_policy_generation)" = 1 ]
check "enrolment per agent" [ "$(m 'masd_agent_enrolled{agent="writer"}')" = 1 ]
check "apply time is reported in seconds ($(m masd_policy_apply_seconds))" \
	awk -v v="$(m masd_policy_apply_seconds)" 'BEGIN { exit !(v > 0 && v < 5) }'
check "every sample has HELP and TYPE" [ "$(grep -c '^# TYPE' "$T/metrics.prom")" -eq \
	"$(grep -c '^# HELP' "$T/metrics.prom")" ]
"$MASCTL" --json status >"$T/status.json"
check "status --json carries the apply time" \
	[ "$(jq .apply_duration_usec "$T/status.json")" -gt 0 ]
check "... and the audit chain's sequence ($(jq .audit_seq "$T/status.json"))" \
	[ "$(jq .audit_seq "$T/status.json")" -ge 1 ]
check "no temp files are left beside it" [ "$(ls "$T" | grep -c 'metrics.prom.tmp')" -eq 0 ]
mas_done
