#!/usr/bin/env bash
# Agents whose cgroups appear after masd started are enrolled when they appear (inotify), with
# nested slices found by name; an agent whose cgroup goes is waiting again, and is enrolled
# again when it comes back. Until then it is "waiting" and unconfined.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai: { cidrs: [127.0.20.1/32], ports: [7000], protected: true }
  db: { cidrs: [127.0.20.2/32], ports: [5432] }
permissions:
  ai_access: [ai]
roles:
  agent: [ai_access]
agents:
  late: { unit: mas-agent@late.service, role: agent }
  nested: { unit: mas-agent@nested.service, role: agent }
  bypath: { cgroup: CGREL/by/path, role: agent }
YAML
sed -i "s|CGREL|${CG#$MOUNT/}|" "$T/policy.yaml"
mas_start --policy "$T/policy.yaml" || exit 1
state() { "$MASCTL" --json agents | jq -r --arg a "$1" '.[] | select(.agent == $a) | .state'; }
wait_state() { # agent state
	for _ in $(seq 50); do
		[ "$(state "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
check "an agent whose cgroup does not exist is waiting" [ "$(state late)" = waiting ]

mas_cgroup other
expect other allowed connect tcp 127.0.20.2 5432
mas_cgroup mas-agent@late.service
check "it is enrolled when its cgroup appears" wait_state late enrolled
expect mas-agent@late.service denied connect tcp 127.0.20.2 5432
expect mas-agent@late.service allowed connect tcp 127.0.20.1 7000

# systemd nests slices: mas-agents.slice under mas.slice; made in steps, as systemd does
mkdir "$CG/mas.slice"
mkdir "$CG/mas.slice/mas-agents.slice"
mkdir "$CG/mas.slice/mas-agents.slice/mas-agent@nested.service"
check "an agent in nested slices is found" wait_state nested enrolled
expect mas.slice/mas-agents.slice/mas-agent@nested.service denied connect tcp 127.0.20.2 5432
expect mas.slice allowed connect tcp 127.0.20.2 5432

mkdir -p "$CG/by/path"
check "an agent named by cgroup path is enrolled" wait_state bypath enrolled
expect by/path denied connect tcp 127.0.20.2 5432

rmdir "$CG/mas-agent@late.service"
check "an agent whose cgroup went is waiting" wait_state late waiting
mas_cgroup mas-agent@late.service
check "... and enrolled again when it comes back" wait_state late enrolled
expect mas-agent@late.service denied connect tcp 127.0.20.2 5432
mas_done
