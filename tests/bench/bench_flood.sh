#!/usr/bin/env bash
# Deny flood and memory: masd enforcing 100 agents and 10,000 prefixes; its RSS once the policy
# is in; then one agent connect()s to a denied address from two threads (both cores) for a
# bounded time. Attempts made vs counted by the kernel (must be equal), journal records/s
# written meanwhile (bounded by --journal-rate), masd CPU (from /proc/PID/stat) and RSS.
# usage: bench_flood.sh BUILD_DIR [SECONDS]
export MASD_BUILD=$(realpath "${1:-build}")
. "$(dirname "$0")/../lib/masd.sh"
. "$HERE/tests/bench/lib.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

SECS=${2:-${MAS_BENCH_FLOOD_SECONDS:-10}}
RATE=20 # masd's default --journal-rate: decision records per agent per second
AGENTS=100
PREFIXES=10000
FLOOD=$BUILD/tests/bench/flood
HZ=$(getconf CLK_TCK)

for a in $(seq 0 $((AGENTS - 1))); do mas_cgroup "mas-agent@a$a.service"; done
gen_policy $PREFIXES $AGENTS "$T/p.yaml"
mas_start --policy "$T/p.yaml" || exit 1
"$MASCTL" policy apply "$T/p.yaml" >/dev/null || exit 1 # both slots filled once
sleep 1

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$MASD_PID/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$MASD_PID/stat"; }
journal_count() {
	journal_sync
	journalctl -q -o cat SYSLOG_IDENTIFIER=masd 2>/dev/null | wc -l
}
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

# what the RSS is made of: shared library pages, the BPF ring buffer mapped (twice, by design:
# the kernel maps its data pages twice so records never wrap), and masd's own heap
ring_kib() { awk '/^[0-9a-f]+-/ { m = ($6 == "anon_inode:bpf-map") } m && $1 == "Rss:" { s += $2 } END { print s + 0 }' "/proc/$MASD_PID/smaps"; }
rss_idle=$(kib VmRSS)
x="{\"agents\": $AGENTS, \"prefixes\": $PREFIXES}"
bench_result memory "masd RSS, $AGENTS agents, $PREFIXES prefixes, policy applied" "$(mib "$rss_idle")" MiB 10 le "$x"
bench_result memory "  of which shared libraries and mapped BPF maps (RssFile)" "$(mib "$(kib RssFile)")" MiB "" "" "$x"
bench_result memory "  of which mapped BPF maps (the 2 MiB ring buffer, twice)" "$(mib "$(ring_kib)")" MiB "" "" "$x"
bench_result memory "  of which masd's own (RssAnon)" "$(mib "$(kib RssAnon)")" MiB "" "" "$x"
bench_progress memory "masd RSS $(mib "$rss_idle") MiB with $AGENTS agents, $PREFIXES prefixes (RssAnon $(mib "$(kib RssAnon)"), RssFile $(mib "$(kib RssFile)"), BPF maps $(mib "$(ring_kib)"))"

denied0=$(agent_count a0 denied)
sup0=$("$MASCTL" --json status | jq .journal_suppressed)
j0=$(journal_count)
c0=$(cpu_ticks)
t0=$(bench_ms)
bench_progress flood "agent a0, 2 threads, ${SECS}s against a denied address"
"$FLOOD" "$CG/mas-agent@a0.service" "$SECS" 127.0.40.1 9 2 >"$T/flood.json" || exit 1
# the counters are exact at once; the events drain from the ring buffer within a tick or two
sleep 2
c1=$(cpu_ticks)
t1=$(bench_ms)
denied1=$(agent_count a0 denied)
j1=$(journal_count)
rss_after=$(kib VmRSS)
hwm=$(kib VmHWM)
drops=$("$MASCTL" --json status | jq .ringbuf_drops)
sup1=$("$MASCTL" --json status | jq .journal_suppressed)

attempts=$(jq .attempts "$T/flood.json")
eperm=$(jq .eperm "$T/flood.json")
fsecs=$(jq .seconds "$T/flood.json")
counted=$((denied1 - denied0))
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1000 }')
cpu=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v w="$wall" 'BEGIN { printf "%.1f", 100 * c / hz / w }')
jrate=$(awk -v n=$((j1 - j0)) -v w="$wall" 'BEGIN { printf "%.1f", n / w }')
rate=$(awk -v n="$attempts" -v s="$fsecs" 'BEGIN { printf "%.0f", n / s }')

bench_result flood "flood: connect() attempts/s (2 threads)" "$rate" "/s" "" "" "$x"
bench_result flood "flood: attempts made ($eperm refused with EPERM)" "$attempts" "" "" "" "$x"
bench_result flood "flood: attempts counted by the kernel" "$counted" "" "" "" "$x"
bench_result flood "flood: |counted - made| (exact: 0)" $((counted > attempts ? counted - attempts : attempts - counted)) "" 0 le "$x"
# bounded: at most RATE decision records per agent and second, one "N suppressed" record per
# second, and the audit trail's own checkpoints; never the flood's rate
bench_result flood "flood: journal records/s (--journal-rate $RATE, + suppressed, checkpoints)" "$jrate" "/s" $((RATE + 5)) le "$x"
bench_result flood "flood: ring buffer drops (events only, counters exact)" "$drops" "" "" "" "$x"
# every event read was either journaled (at most RATE/s) or counted as suppressed
bench_result flood "flood: events read by masd and counted as suppressed" $((sup1 - sup0)) "" "" "" "$x"
bench_result flood "flood: masd CPU, % of one core" "$cpu" "%" 20 le "$x"
bench_result memory "masd RSS after the flood" "$(mib "$rss_after")" MiB 10 le "$x"
bench_result memory "masd peak RSS (VmHWM) over the run" "$(mib "$hwm")" MiB "" "" "$x"
bench_progress flood "$attempts made ($rate/s), $counted counted, $eperm EPERM; journal $jrate records/s; masd CPU $cpu %, RSS $(mib "$rss_after") MiB (peak $(mib "$hwm"))"
mas_stop
