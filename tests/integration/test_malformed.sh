#!/usr/bin/env bash
# Malformed input through the real daemon: a sample of the bad-policy corpus (tests/fixtures/bad),
# a 10 MB file, a symlink loop and a directory, each applied with masctl: refused with exit 3 and
# its exact error, and nothing changes in the kernel (same generation, same verdicts). Then
# corrupt state files at masd start: a garbage active-policy.yaml and a malformed key state are
# reported, masd starts and enforcement goes on.
. "$(dirname "$0")/../lib/masd.sh"
mas_setup
journald_start || mas_skip "cannot start a private journald"

cat >"$T/policy.yaml" <<'YAML'
version: 1
destinations:
  ai: { cidrs: [127.0.20.1/32], ports: [7000], protected: true }
  web: { cidrs: [127.0.20.5/32], ports: [8000] }
permissions: { ai_access: [ai] }
roles: { agent: [ai_access] }
agents:
  writer: { unit: mas-agent@writer.service, role: agent }
keys:
  jwt: { type: hs256, rotate_every: 30d, keep_previous_for: 7d }
YAML
W=mas-agent@writer.service
mas_cgroup "$W"
mas_cgroup other
mas_start --policy "$T/policy.yaml" || exit 1

verdicts() {
	for a in "$W 127.0.20.1 7000" "$W 127.0.20.5 8000" "other 127.0.20.1 7000" \
		"other 127.0.20.5 8000"; do
		set -- $a
		probe_in "$1" connect tcp "$2" "$3" | awk '{print $1}'
	done | tr '\n' ' '
}
v0=$(verdicts)
g0=$("$MASCTL" --json status | jq .generation)
echo "# in force: generation $g0, verdicts $v0"

# every third bad policy of the corpus (about 50), plus the file-level refusals
n=0 bad=0 wrongerr=0
for f in $(ls tests/fixtures/bad/*.yaml 2>/dev/null || ls "$HERE"/tests/fixtures/bad/*.yaml); do
	n=$((n + 1))
	[ $((n % 3)) -eq 0 ] || continue
	[ -e "$f.err" ] || continue
	out=$("$MASCTL" policy apply "$f" 2>&1)
	rc=$?
	if [ $rc -ne 3 ]; then
		bad=$((bad + 1))
		echo "# $f: exit $rc: $out"
	elif ! grep -qF "$(sed 's|^[^:]*:||' "$f.err" | head -c 200)" <<<"$out"; then
		wrongerr=$((wrongerr + 1))
		echo "# $f: error differs: $out (want $(cat "$f.err"))"
	fi
done
tried=$((n / 3))
# text D-Bus cannot carry is refused by masctl with the parser's own error
for f in non-utf8 overlong-utf8 utf16; do
	x=$HERE/tests/fixtures/bad/$f.yaml
	out=$("$MASCTL" policy apply "$x" 2>&1)
	rc=$?
	check "$f.yaml refused with exit 3 and its exact error ($rc)" \
		[ $rc -eq 3 -a "${out#*$f.yaml}" = "$(sed 's|^[^:]*'"$f"'.yaml||' "$x.err")" ]
done
check "$tried bad policies from the corpus each refused with exit 3 ($bad not)" [ "$bad" -eq 0 ]
check "each with its exact error ($wrongerr differ)" [ "$wrongerr" -eq 0 ]
head -c $((10 << 20)) /dev/zero | tr '\0' '#' >"$T/huge.yaml"
ln -s "$T/loop2.yaml" "$T/loop1.yaml"
ln -s "$T/loop1.yaml" "$T/loop2.yaml"
mkdir "$T/dir.yaml"
for f in huge loop1 dir; do
	out=$("$MASCTL" policy apply "$T/$f.yaml" 2>&1)
	rc=$?
	check "$f.yaml refused ($rc: $(head -c 120 <<<"$out"))" [ $rc -ne 0 ]
done
g1=$("$MASCTL" --json status | jq .generation)
v1=$(verdicts)
check "the generation did not move ($g0 -> $g1)" [ "$g0" = "$g1" ]
check "the verdicts did not change ($v1)" [ "$v0" = "$v1" ]

echo "# corrupt state at start"
mas_stop
printf 'version: 1\ndestinations: [\x00\xff garbage' >"$T/state/active-policy.yaml"
keystate=$(find "$T/state" -path '*keys/jwt/state' | head -n1)
check "the key state exists ($keystate)" [ -n "$keystate" ]
[ -n "$keystate" ] && printf 'masd-keys 1\nname jwt\ntype hs256\nnext_seq 0\n' >"$keystate"
mas_start --policy "$T/policy.yaml" || exit 1
check "masd started on corrupt state files" alive "$MASD_PID"
v2=$(verdicts)
check "enforcement is the same ($v2)" [ "$v0" = "$v2" ]
journal_sync
j=$(journalctl -t masd -o cat)
check "the corrupt saved policy is reported" grep -q "active-policy.yaml, is unusable" <<<"$j"
check "the corrupt key state is reported with its line" grep -q "keys/jwt/state:" <<<"$j"
check "masctl status still answers" "$MASCTL" status

mas_done
