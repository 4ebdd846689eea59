#!/usr/bin/env bash
# Bypass corpus: the other addresses of a local protected service. The destination is given as
# 127.0.0.1/32 and the service listens on every address (::, dual-stack): 127.0.0.2, 0.0.0.0,
# ::, ::1, v4-mapped forms and the host's own addresses reach the same socket. masd protects
# the same ports and protocols at every local alias (compile_policy_local), so a process that
# is no agent is refused at all of them, and the agent granted the service may use any of them.
. "$(dirname "$0")/lib.sh"
mas_setup
[ -x "$BYPASS" ] || mas_skip "no bypass tool at $BYPASS (build first)"
cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  svc:
    cidrs: [127.0.0.1/32]
    ports: [7500]
    protocols: [tcp, udp]
    protected: true
permissions:
  use: [svc]
roles:
  user: [use]
agents:
  granted:
    unit: mas-agent@granted.service
    role: user
YAML
GR=mas-agent@granted.service
mas_cgroup "$GR"
mas_cgroup "$OUT"
mas_start --policy "$T/policy.yaml" || exit 1
mas_bg "$PROBE" serve tcp :: 7500 >/dev/null
mas_bg "$PROBE" serve udp :: 7500 >/dev/null
mas_bg "$PROBE" serve tcp :: 7501 >/dev/null
sleep 0.3

aliases="127.0.0.1 127.0.0.2 127.1.2.3 0.0.0.0 ::ffff:127.0.0.2 ::ffff:0.0.0.0 :: ::1"
# the host's own global addresses (link-local ones need a scope id the tool does not take)
for a in $(ip -o addr show | awk '{print $4}' | cut -d/ -f1 | grep -v -e '^127\.' -e '^::1$' -e '^fe80'); do
	aliases="$aliases $a"
done
echo "# aliases tried: $aliases"
for a in $aliases; do
	bexpect "no agent, tcp to the protected service at $a" "$OUT" blocked connect tcp "$a" 7500
	bexpect "no agent, udp to the protected service at $a" "$OUT" blocked sendto "$a" 7500
	bexpect "the granted agent, tcp at $a" "$GR" reached connect tcp "$a" 7500
	bexpect "no agent, another port at $a (not protected)" "$OUT" reached connect tcp "$a" 7501
done
mas_done
