#!/usr/bin/env bash
# Host names against a real DNS server (dnsmasq on loopback, TTL 4 s): a changed record is
# allowed before a client that asked at the same time could have it from its cache; the old
# address is allowed through the grace period and refused after; a CNAME chain and a
# 50-address answer; a name that never resolved allows nothing; DNS down keeps the last good
# set; masd killed and restarted while DNS is down keeps enforcing it.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || mas_skip "no dnsmasq (apt-get install dnsmasq-base)"
journald_start || mas_skip "cannot start a private journald"

TTL=4
GRACE=4
DNS_PORT=$((20000 + $$ % 20000))
DNS_PID=

dns_start() {
	"$DNSMASQ" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--listen-address=127.0.0.1 --bind-interfaces --port="$DNS_PORT" --user=root \
		--group=root --pid-file= --local=/test/ --local-ttl="$TTL" \
		--addn-hosts="$T/hosts" --cname=alias.test,mid.test --cname=mid.test,real.test \
		--log-queries --log-facility="$T/dnsmasq.log" &
	DNS_PID=$!
	MAS_PIDS+=("$DNS_PID")
	sleep 0.3
}

dns_stop() {
	kill "$DNS_PID" 2>/dev/null
	wait "$DNS_PID" 2>/dev/null
	DNS_PID=
}

set_hosts() { # api address
	{
		echo "$1 api.test"
		echo "127.0.31.1 real.test"
		for i in $(seq 1 50); do echo "127.0.32.$i big.test"; done
	} >"$T/hosts.new"
	mv "$T/hosts.new" "$T/hosts"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# Poll until the agent's connect to ADDR PORT gives want (up to LIMIT seconds); prints the time.
wait_for() { # want addr port limit
	local end
	end=$(awk -v n="$(now)" -v l="$4" 'BEGIN { printf "%.2f", n + l }')
	while lt "$(now)" "$end"; do
		if [ "$(probe_in "$A" connect tcp "$2" "$3" | awk '{print $1}')" = "$1" ]; then
			now
			return 0
		fi
		sleep 0.05
	done
	return 1
}

set_hosts 127.0.30.1
dns_start
cat >"$T/policy.yaml" <<YAML
version: 1
resolver:
  server: 127.0.0.1:$DNS_PORT
  grace: ${GRACE}s
destinations:
  ai:
    hosts: [api.test]
    ports: [7000]
  chain:
    hosts: [alias.test]
    ports: [7001]
  big:
    hosts: [big.test]
    ports: [7002]
  never:
    hosts: [never.test]
    ports: [7003]
permissions:
  all_four: [ai, chain, big, never]
roles:
  agent: [all_four]
agents:
  worker:
    unit: mas-agent@worker.service
    role: agent
YAML
A=mas-agent@worker.service
mas_cgroup "$A"
mas_start --policy "$T/policy.yaml" || exit 1

echo "# first answers"
expect "$A" allowed connect tcp 127.0.30.1 7000
expect "$A" denied connect tcp 127.0.30.2 7000
expect "$A" allowed connect tcp 127.0.31.1 7001
n=0
for i in $(seq 1 50); do
	[ "$(probe_in "$A" connect tcp 127.0.32.$i 7002 | awk '{print $1}')" = allowed ] && n=$((n + 1))
done
check "all 50 addresses of a 50-address answer are allowed ($n)" [ "$n" -eq 50 ]
expect "$A" denied connect tcp 127.0.32.51 7002
expect "$A" denied connect tcp 127.0.33.1 7003

echo "# the record changes"
# a client asking now gets 127.0.30.1 with TTL $TTL: it cannot learn the new address from
# this server before t0 + TTL
set_hosts 127.0.30.2
kill -HUP "$DNS_PID"
t0=$(now)
t_new=$(wait_for allowed 127.0.30.2 7000 $((TTL + 3)))
check "the new address is allowed" [ -n "$t_new" ]
lag=$(elapsed "$t0" "${t_new:-$t0}")
check "it is allowed ${lag}s after the change, before the TTL of ${TTL}s ran out" lt "$lag" "$TTL"
expect "$A" allowed connect tcp 127.0.30.1 7000
t_old=$(wait_for denied 127.0.30.1 7000 $((GRACE + TTL + 3)))
check "the old address is refused once its grace period is over" [ -n "$t_old" ]
grace=$(elapsed "${t_new:-$t0}" "${t_old:-$t0}")
check "the old address stayed allowed ${grace}s after the new one came (grace ${GRACE}s)" \
	awk -v g="$grace" -v w="$GRACE" 'BEGIN { exit !(g >= w - 1.5 && g <= w + 1.5) }'
# masd's own queries for api.test, as the server logged them: the refresh interval
intervals=$(grep 'query\[A\] api.test' "$T/dnsmasq.log" | awk '{print $3}' |
	awk -F: 'NR > 1 { d = ($1 * 3600 + $2 * 60 + $3) - p; printf "%ds ", d } { p = $1 * 3600 + $2 * 60 + $3 }')
echo "# refresh intervals of api.test seen by the server: $intervals(TTL ${TTL}s)"

echo "# DNS down"
dns_stop
sleep $((GRACE + TTL + 1))
expect "$A" allowed connect tcp 127.0.30.2 7000
expect "$A" allowed connect tcp 127.0.31.1 7001
expect "$A" allowed connect tcp 127.0.32.50 7002
expect "$A" denied connect tcp 127.0.30.1 7000

echo "# masd killed and restarted while DNS is down"
mas_kill9
expect "$A" allowed connect tcp 127.0.30.2 7000
mas_start --policy "$T/policy.yaml" || exit 1
expect "$A" allowed connect tcp 127.0.30.2 7000
expect "$A" allowed connect tcp 127.0.32.7 7002
sleep $((TTL + 1))
expect "$A" allowed connect tcp 127.0.30.2 7000
expect "$A" allowed connect tcp 127.0.31.1 7001
expect "$A" denied connect tcp 127.0.30.1 7000

echo "# DNS back with another address"
set_hosts 127.0.30.3
dns_start
t_back=$(wait_for allowed 127.0.30.3 7000 $((TTL + 35)))
check "the restarted masd picks up the new address when DNS is back" [ -n "$t_back" ]
expect "$A" allowed connect tcp 127.0.30.2 7000

echo "# the journal"
sleep 0.5
journal_sync
chg=$(awk '/MAS_MSGID_RESOLVER_CHANGE /{gsub(/"/,"",$3); print $3}' "$HERE/daemon/msgid.h")
fail=$(awk '/MAS_MSGID_RESOLVER_FAILURE /{gsub(/"/,"",$3); print $3}' "$HERE/daemon/msgid.h")
j() { journalctl -t masd MESSAGE_ID="$1" -o json | jq -c "$2" | wc -l; }
n=$(j "$chg" 'select(.MAS_HOST == "api.test" and .MAS_CHANGE == "added" and .MAS_ADDR == "127.0.30.2")')
check "the new address is a journal record ($n)" [ "$n" -ge 1 ]
n=$(j "$chg" 'select(.MAS_HOST == "api.test" and .MAS_CHANGE == "dropped" and .MAS_ADDR == "127.0.30.1")')
check "the dropped address is a journal record ($n)" [ "$n" -ge 1 ]
n=$(j "$chg" 'select(.MAS_HOST == "api.test" and .MAS_CHANGE == "expired" and .MAS_ADDR == "127.0.30.1")')
check "the end of its grace period is a journal record ($n)" [ "$n" -ge 1 ]
n=$(j "$fail" 'select(.MAS_HOST == "api.test" and .MAS_CHANGE == "failed")')
check "DNS failure is a journal record ($n)" [ "$n" -ge 1 ]
n=$(j "$fail" 'select(.MESSAGE | test("never resolve|did not resolve"))')
check "a name that never resolved is reported ($n)" [ "$n" -ge 1 ]
n=$(j "$chg" 'select(.MAS_HOST == "big.test" and .MAS_CHANGE == "added")')
check "the 50 addresses were recorded once each ($n)" [ "$n" -eq 50 ]

mas_done
