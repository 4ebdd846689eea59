# Bypass-corpus harness: one confined agent, granted one destination, and listeners outside
# every agent that accept on all addresses. Source it first thing in a tests/bypass script.
#
#   ok        127.0.30.1 and ::1, port 7100, tcp+udp: the one destination the agent may reach
#   secret    127.0.30.2, port 7200, tcp+udp, protected: nobody but its grantees (none here)
#   (nothing) 127.0.30.3 and ::1, port 7300: no destination; processes that are no agent may
#
#   bypass_setup              policy, cgroups ($AG the agent, $OUT no agent), masd, listeners
#   bexpect DESC CGNAME WANT TECHNIQUE ARGS...   run the technique in $CG/CGNAME; WANT is
#                             reached|blocked|failed (see tests/bypass/bypass.c)
. "$(dirname "$0")/../lib/masd.sh"
BYPASS=$BUILD/tests/bypass/bypass
AG=mas-agent@confined.service
OUT=outside
OK4=127.0.30.1
SECRET4=127.0.30.2
NONE4=127.0.30.3

bypass_setup() {
	mas_setup
	[ -x "$BYPASS" ] || mas_skip "no bypass tool at $BYPASS (build first)"
	cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ok:
    cidrs: [127.0.30.1/32, "::1/128"]
    ports: [7100]
    protocols: [tcp, udp]
  secret:
    cidrs: [127.0.30.2/32]
    ports: [7200]
    protocols: [tcp, udp]
    protected: true
permissions:
  use_ok: [ok]
roles:
  confined: [use_ok]
agents:
  confined:
    unit: mas-agent@confined.service
    role: confined
YAML
	mas_cgroup "$AG"
	mas_cgroup "$OUT"
	mas_start --policy "$T/policy.yaml" || exit 1
	local port proto
	for port in 7100 7200 7300; do
		for proto in tcp udp; do
			# outside every agent, on every address (:: is dual-stack)
			mas_bg "$PROBE" serve "$proto" :: "$port" >/dev/null
		done
	done
	sleep 0.3
}

bexpect() {
	local desc=$1 cg=$2 want=$3 got
	shift 3
	got=$("$BYPASS" --cgroup "$CG/$cg" "$@" 2>"$T/bypass.err")
	if [ "${got%% *}" = "$want" ]; then
		MAS_PASS=$((MAS_PASS + 1))
		echo "ok - $desc: $* -> $got"
	else
		MAS_FAIL=$((MAS_FAIL + 1))
		echo "not ok - $desc: $* -> got '$got', want '$want'"
		sed 's/^/#   /' "$T/bypass.err"
	fi
}
