#!/usr/bin/env bash
# Bypass corpus: a forked child, an exec'd program, a thread, a child cgroup the agent makes,
# and moving itself out of its cgroup as its own user.
. "$(dirname "$0")/lib.sh"
bypass_setup

bexpect "forked child to the granted destination" "$AG" reached fork $OK4 7100
bexpect "forked child to the protected destination" "$AG" blocked fork $SECRET4 7200
bexpect "forked child to no destination" "$AG" blocked fork $NONE4 7300
bexpect "thread to the granted destination" "$AG" reached thread $OK4 7100
bexpect "thread to the protected destination" "$AG" blocked thread $SECRET4 7200
bexpect "thread to no destination" "$AG" blocked thread $NONE4 7300
bexpect "exec'd program to the protected destination" "$AG" blocked \
	exec "$BYPASS" connect tcp $SECRET4 7200
bexpect "exec'd program (nc-like, via sh) to no destination" "$AG" blocked \
	exec sh -c "exec '$BYPASS' connect tcp $NONE4 7300"
bexpect "a child cgroup it creates, to the protected destination" "$AG" blocked \
	mkcg sub1 $SECRET4 7200
bexpect "a child cgroup it creates, to no destination" "$AG" blocked mkcg sub2 $NONE4 7300
bexpect "a child cgroup it creates, to the granted destination" "$AG" reached \
	mkcg sub3 $OK4 7100

# as its own user (no root, no capabilities) it cannot write to another cgroup's procs
as_user() {
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all "$@"
}
command -v setpriv >/dev/null || mas_skip "no setpriv"
for dst in "$CG/$OUT" "$CG" "$MOUNT"; do
	out=$("$BYPASS" --cgroup "$CG/$AG" exec setpriv --reuid=65534 --regid=65534 \
		--clear-groups --inh-caps=-all --bounding-set=-all "$BYPASS" escape "$dst")
	check "moving itself into $dst as its own user is refused ($out)" [ "${out%% *}" = blocked ]
done
# delegated: the agent owns its cgroup (as systemd's Delegate=yes would give it); a move is
# still confined to its subtree, because the common ancestor's cgroup.procs is not its own
chown -R 65534:65534 "$CG/$AG"
out=$("$BYPASS" --cgroup "$CG/$AG" exec setpriv --reuid=65534 --regid=65534 --clear-groups \
	--inh-caps=-all --bounding-set=-all "$BYPASS" escape "$CG/$OUT")
check "with its cgroup delegated, moving out is still refused ($out)" [ "${out%% *}" = blocked ]
out=$("$BYPASS" --cgroup "$CG/$AG" exec setpriv --reuid=65534 --regid=65534 --clear-groups \
	--inh-caps=-all --bounding-set=-all "$BYPASS" mkcg sub4 $SECRET4 7200)
check "with its cgroup delegated, a sub-cgroup it makes is still the agent ($out)" \
	[ "${out%% *}" = blocked ]
mas_done
