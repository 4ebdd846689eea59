#!/usr/bin/env bash
# Fast checks of what we ship for systemd, no container: every unit passes systemd-analyze verify,
# the services' exposure scores do not regress, sysusers.d and tmpfiles.d files parse, the man pages
# render without groff warnings, the bash completion parses and completes.
set -u
cd "$(dirname "$0")/../.." || exit 1

command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is missing"; exit 77; }

# Exposure ceilings, in tenths as --threshold counts them (the check fails above N): the scores
# measured with systemd 252, so that any weakening of the sandbox fails. The issue's ceiling for
# masd.service was 2.8 (a root unit with the same capabilities).
declare -A CEILING=([masd.service]=18 [mas-agent@.service]=14 [masd-bpffs.service]=36)

TMP=$(mktemp -d /tmp/masd-test-units.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
FAILED=0

ok() {
	echo "ok   $*"
}

fail() {
	echo "FAIL $*"
	FAILED=$((FAILED + 1))
}

# The units as installed, but with masd and masctl replaced by stubs: verify checks that every
# command is executable.
mkdir -p "$TMP/units" "$TMP/bin"
for b in masd masctl; do
	printf '#!/bin/sh\nexit 0\n' >"$TMP/bin/$b"
	chmod 0755 "$TMP/bin/$b"
done
units=()
for u in systemd/*.service systemd/*.slice; do
	[ -e "$u" ] || continue
	sed -e "s|/usr/sbin/masd|$TMP/bin/masd|g" -e "s|/usr/bin/masctl|$TMP/bin/masctl|g" \
		"$u" >"$TMP/units/${u##*/}"
	units+=("$TMP/units/${u##*/}")
done
[ ${#units[@]} -ge 4 ] || fail "expected masd.service, masd-bpffs.service, mas-agents.slice, mas-agent@.service"

for u in "${units[@]}"; do
	name=${u##*/}
	out=$(systemd-analyze verify --man=no "$u" 2>&1)
	if [ $? -eq 0 ] && [ -z "$out" ]; then ok "verify $name"; else fail "verify $name: $out"; fi
done
# A template is checked as an instance too.
cp "$TMP/units/mas-agent@.service" "$TMP/units/mas-agent@probe.service"
out=$(systemd-analyze verify --man=no "$TMP/units/mas-agent@probe.service" 2>&1)
if [ $? -eq 0 ] && [ -z "$out" ]; then ok "verify mas-agent@probe.service"; else fail "verify mas-agent@probe.service: $out"; fi

for name in "${!CEILING[@]}"; do
	u=$TMP/units/$name
	[ "$name" = "mas-agent@.service" ] && u=$TMP/units/mas-agent@probe.service
	score=$(systemd-analyze security --offline=true "$u" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if systemd-analyze security --offline=true --threshold="${CEILING[$name]}" "$u" >/dev/null 2>&1; then
		ok "exposure $name: $score (ceiling ${CEILING[$name]})"
	else
		fail "exposure $name: $score, above the ceiling ${CEILING[$name]} (tenths)"
	fi
done

# sysusers.d and tmpfiles.d: parsed by the real tools against an empty root.
if command -v systemd-sysusers >/dev/null; then
	mkdir -p "$TMP/root/etc" "$TMP/root/usr/lib/sysusers.d" "$TMP/root/usr/lib/tmpfiles.d"
	cp systemd/masd.sysusers "$TMP/root/usr/lib/sysusers.d/masd.conf"
	cp systemd/masd.tmpfiles "$TMP/root/usr/lib/tmpfiles.d/masd.conf"
	out=$(systemd-sysusers --root="$TMP/root" 2>&1)
	if [ $? -eq 0 ] && grep -q '^masd:' "$TMP/root/etc/passwd" && grep -q '^mas-admin:' "$TMP/root/etc/group" &&
		grep -q '^mas-sre:' "$TMP/root/etc/group"; then
		ok "sysusers: masd user, mas-admin and mas-sre groups"
	else
		fail "sysusers: $out"
	fi
	if command -v systemd-tmpfiles >/dev/null; then
		out=$(systemd-tmpfiles --root="$TMP/root" --create 2>&1)
		mode=$(stat -c '%a %U' "$TMP/root/etc/masd" 2>/dev/null)
		if [ -z "$out" ] && [ "$mode" = "750 root" ]; then ok "tmpfiles: /etc/masd $mode"; else fail "tmpfiles: $mode $out"; fi
	fi
fi

# Man pages: no groff warnings, and man renders them.
for m in docs/man/*.[1-8]; do
	out=$(groff -man -Tutf8 -ww -z "$m" 2>&1)
	if [ -z "$out" ]; then ok "groff -ww $m"; else fail "groff -ww $m: $out"; fi
	if command -v man >/dev/null; then
		lines=$(MANWIDTH=100 man -l "$m" 2>/dev/null | wc -l)
		[ "$lines" -gt 20 ] && ok "man -l $m: $lines lines" || fail "man -l $m renders $lines lines"
	fi
done

# Bash completion: parses; and, with bash-completion installed, completes commands, policy files
# and the key names a (fake) masctl reports.
if bash -n systemd/masctl.bash-completion; then ok "bash -n masctl.bash-completion"; else fail "bash -n masctl.bash-completion"; fi
if [ -r /usr/share/bash-completion/bash_completion ]; then
	mkdir -p "$TMP/cwd"
	touch "$TMP/cwd/new.yaml" "$TMP/cwd/notes.txt"
	printf '#!/bin/sh\necho %s\n' "'{\"keys\":[{\"name\":\"jwt\"},{\"name\":\"storage\"}]}'" >"$TMP/bin/masctl"
	completion=$PWD/systemd/masctl.bash-completion
	got=$(cd "$TMP/cwd" && PATH=$TMP/bin:$PATH bash -c '
		. /usr/share/bash-completion/bash_completion
		. "$0"
		c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"
			COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _masctl; echo "${COMPREPLY[*]}"; }
		c masctl ""; c masctl policy ""; c masctl policy apply ""; c masctl --json keys rotate ""
	' "$completion" 2>&1)
	want="policy status agents events keys audit teardown
validate diff apply show
new.yaml
jwt storage"
	if [ "$got" = "$want" ]; then ok "completion: commands, subcommands, *.yaml, key names"; else fail "completion: got '$got'"; fi
else
	echo "note: bash-completion is not installed; completion only parsed"
fi

# make install into a DESTDIR, with stand-ins for the binaries: every file lands, paths follow PREFIX.
if command -v make >/dev/null; then
	mkdir -p "$TMP/build"
	cp "$TMP/bin/masd" "$TMP/build/masd"
	cp "$TMP/bin/masd" "$TMP/build/masctl"
	out=$(make -s -o "$TMP/build/masd" -o "$TMP/build/masctl" install O="$TMP/build" \
		DESTDIR="$TMP/inst" PREFIX=/opt/masd 2>&1)
	rc=$?
	want="etc/masd/policy.yaml
opt/masd/bin/masctl
opt/masd/lib/systemd/system/mas-agent@.service
opt/masd/lib/systemd/system/mas-agents.slice
opt/masd/lib/systemd/system/masd-bpffs.service
opt/masd/lib/systemd/system/masd.service
opt/masd/lib/sysusers.d/masd.conf
opt/masd/lib/tmpfiles.d/masd.conf
opt/masd/sbin/masd
opt/masd/share/bash-completion/completions/masctl
opt/masd/share/man/man5/masd.policy.5
opt/masd/share/man/man8/masctl.8
opt/masd/share/man/man8/masd.8"
	[ -e systemd/masd.catalog ] && want=$(printf '%s\nopt/masd/lib/systemd/catalog/masd.catalog' "$want" | sort)
	got=$(cd "$TMP/inst" 2>/dev/null && find . -type f | sed 's|^\./||' | sort)
	if [ $rc -eq 0 ] && [ "$got" = "$want" ]; then ok "make install DESTDIR= PREFIX=/opt/masd: $(echo "$got" | wc -l) files"; else fail "make install: $out $got"; fi
	exec_lines=$(grep -h '^Exec' "$TMP/inst/opt/masd/lib/systemd/system/masd.service" | grep -c /opt/masd/)
	expect_lines=$(grep -c '^Exec.*/usr/s\?bin/mas' systemd/masd.service)
	[ "$exec_lines" = "$expect_lines" ] && ok "installed masd.service runs /opt/masd binaries" ||
		fail "installed masd.service: $exec_lines of $expect_lines commands under /opt/masd"
	out=$(make -s uninstall O="$TMP/build" DESTDIR="$TMP/inst" PREFIX=/opt/masd 2>&1)
	left=$(cd "$TMP/inst" && find . -type f | sed 's|^\./||')
	[ "$left" = etc/masd/policy.yaml ] && ok "make uninstall keeps only the policy" || fail "make uninstall left: $left"
fi

echo "$FAILED failed"
[ $FAILED -eq 0 ]
