# shellcheck shell=bash
# A real systemd 252 in a container, for tests that need systemd as PID 1 (this machine has none).
# Source this file from a script that already runs in its own mount namespace
# (unshare --mount --propagation private): ct_boot mounts a tmpfs on /run/systemd/nspawn there.
#
# ct_root_ensure          build (once) and cache a Debian root; sets CT_ROOT
# ct_boot ARGS...         boot it with systemd-nspawn from a scratch cgroup; sets CT_PID (the
#                         container's PID 1 as seen from here), CT_NSPAWN_PID, CT_CGROUP
# ct_exec CMD...          run CMD inside the container (all of its namespaces, its root, its cwd)
# ct_sh 'SCRIPT'          run a shell script inside the container
# ct_stop                 end the container by PID, remove its cgroups; safe to call twice
#
# The root is cached under /var/tmp/masd-ct-root-HASH (HASH of the package list and suite), built
# into a temporary folder and renamed when complete, so an interrupted build is never used.
# The container runs with --volatile=overlay: whatever a test writes inside is gone afterwards.

CT_SUITE=${CT_SUITE:-bookworm}
CT_PACKAGES=${CT_PACKAGES:-systemd,systemd-sysv,dbus,procps,libbpf1,libyaml-0-2,libssl3,libsystemd0,libasan8,libubsan1,netcat-openbsd}
CT_CACHE=${CT_CACHE:-/var/tmp}
CT_BOOT_TIMEOUT=${CT_BOOT_TIMEOUT:-30}

CT_ROOT=
CT_PID=
CT_NSPAWN_PID=
CT_CGROUP=

ct_log() {
	echo "container: $*" >&2
}

# The Debian mirror apt already uses on this machine; deb.debian.org otherwise.
ct_mirror() {
	local m
	m=$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)[[:space:]]*$/\1/p' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
	[ -n "$m" ] || m=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\(http[^[:space:]]*\/debian\)[[:space:]].*/\2/p' \
		/etc/apt/sources.list 2>/dev/null | head -n 1)
	echo "${m:-http://deb.debian.org/debian}"
}

# The first cgroup2 mount in /proc/self/mountinfo (never hard-coded: this machine is hybrid).
ct_cgroup2_mount() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; if ($(i + 1) == "cgroup2") { print $5; exit } }' \
		/proc/self/mountinfo
}

# Installs the host tools the harness needs when they are missing (Debian packages).
ct_host_tools() {
	local missing=""
	command -v debootstrap >/dev/null || missing="$missing debootstrap"
	command -v systemd-nspawn >/dev/null || missing="$missing systemd-container"
	command -v unshare >/dev/null || missing="$missing util-linux"
	[ -z "$missing" ] && return 0
	ct_log "installing$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null ||
		{ DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; }
}

ct_root_ensure() {
	local hash dir tmp t0=$SECONDS
	hash=$(printf '%s\n%s\n' "$CT_SUITE" "$CT_PACKAGES" | sha256sum | cut -c1-12)
	dir=$CT_CACHE/masd-ct-root-$hash
	if [ -x "$dir/lib/systemd/systemd" ]; then
		CT_ROOT=$dir
		return 0
	fi
	ct_host_tools || return 1
	# Builds interrupted an hour ago or more are dead: their folders go.
	find "$CT_CACHE" -maxdepth 1 -name 'masd-ct-root-*.tmp.*' -mmin +60 \
		-exec rm -rf --one-file-system {} + 2>/dev/null
	tmp=$(mktemp -d "$CT_CACHE/masd-ct-root-$hash.tmp.XXXXXX") || return 1
	ct_log "building $CT_SUITE root in $tmp (about 40 s, cached as $dir)"
	if ! debootstrap --variant=minbase --include="$CT_PACKAGES" "$CT_SUITE" "$tmp" \
		"$(ct_mirror)" >"$tmp.log" 2>&1; then
		ct_log "debootstrap failed, log: $tmp.log"
		tail -n 20 "$tmp.log" >&2
		rm -rf --one-file-system "$tmp"
		return 1
	fi
	# No getty or resolver noise; a machine id so journald keeps a persistent journal.
	rm -f "$tmp"/etc/machine-id
	systemd-machine-id-setup --root="$tmp" >/dev/null 2>&1 || true
	echo masd-ct >"$tmp/etc/hostname"
	apt-get -o Dir="$tmp" clean >/dev/null 2>&1 || rm -rf "$tmp"/var/cache/apt/archives/*.deb
	rm -f "$tmp.log"
	if ! mv -T "$tmp" "$dir" 2>/dev/null; then
		# A build running in parallel finished first: use its root.
		rm -rf --one-file-system "$tmp"
		[ -x "$dir/lib/systemd/systemd" ] || return 1
	fi
	ct_log "root ready in $((SECONDS - t0)) s"
	CT_ROOT=$dir
}

# The container's PID 1 as seen from here: a process in our scratch cgroup whose innermost PID is 1.
ct_find_init() {
	local pid pids
	pids=$(find "$CT_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null)
	for pid in $pids; do
		[ "$pid" = "$CT_NSPAWN_PID" ] && continue
		if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$pid/status" 2>/dev/null; then
			echo "$pid"
			return 0
		fi
	done
	return 1
}

# ct_boot [extra systemd-nspawn options...]: boots $CT_ROOT and waits until systemd answers.
ct_boot() {
	local cg2
	[ -n "$CT_ROOT" ] || { ct_log "ct_root_ensure first"; return 1; }
	cg2=$(ct_cgroup2_mount)
	[ -n "$cg2" ] || { ct_log "no cgroup2 mount"; return 1; }
	CT_CGROUP=$cg2/masd-test-ct.$$
	mkdir "$CT_CGROUP" || return 1
	mkdir -p /run/systemd/nspawn
	mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn || return 1
	CT_LOG=$(mktemp /tmp/masd-ct-console.XXXXXX)
	# The subshell moves itself into the scratch cgroup and becomes nspawn, which creates
	# payload/ and supervisor/ beside itself (--keep-unit: no host systemd to ask for a scope).
	(
		echo $BASHPID >"$CT_CGROUP/cgroup.procs" || exit 1
		SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 exec systemd-nspawn --quiet --boot --register=no \
			--keep-unit --console=passive --volatile=overlay --private-network \
			--capability=CAP_BPF,CAP_PERFMON --system-call-filter=bpf \
			--machine=masd-ct-$$ -D "$CT_ROOT" "$@"
	) >"$CT_LOG" 2>&1 </dev/null &
	CT_NSPAWN_PID=$!
	for _ in $(seq 1 $((CT_BOOT_TIMEOUT * 20))); do
		if ! kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
			ct_log "systemd-nspawn exited early:"
			cat "$CT_LOG" >&2
			return 1
		fi
		CT_PID=$(ct_find_init) && break
		sleep 0.05
	done
	[ -n "$CT_PID" ] || { ct_log "no container init after ${CT_BOOT_TIMEOUT}s"; return 1; }
	# systemd answers on its private socket once it has set itself up.
	for _ in $(seq 1 $((CT_BOOT_TIMEOUT * 20))); do
		ct_exec systemctl is-system-running >/dev/null 2>&1
		[ $? -le 1 ] && ct_exec test -S /run/systemd/private && return 0
		sleep 0.05
	done
	ct_log "systemd in the container did not answer"
	return 1
}

ct_exec() {
	nsenter -t "$CT_PID" -m -u -i -n -p -C -r -w -- "$@"
}

ct_sh() {
	ct_exec /bin/sh -c "$1"
}

ct_stop() {
	local _
	if [ -n "$CT_NSPAWN_PID" ] && kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
		# SIGTERM asks nspawn to power the container off; SIGKILL after a grace period.
		kill -TERM "$CT_NSPAWN_PID" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$CT_NSPAWN_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$CT_NSPAWN_PID" 2>/dev/null
		wait "$CT_NSPAWN_PID" 2>/dev/null
	fi
	CT_NSPAWN_PID=
	CT_PID=
	if [ -n "$CT_CGROUP" ] && [ -d "$CT_CGROUP" ]; then
		# Whatever is left (the container's processes) ends with its cgroup.
		[ -e "$CT_CGROUP/cgroup.kill" ] && echo 1 >"$CT_CGROUP/cgroup.kill" 2>/dev/null
		for _ in $(seq 1 100); do
			[ -z "$(find "$CT_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && break
			sleep 0.05
		done
		find "$CT_CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null
		[ -d "$CT_CGROUP" ] && ct_log "could not remove $CT_CGROUP"
	fi
	CT_CGROUP=
	mountpoint -q /run/systemd/nspawn && umount -l /run/systemd/nspawn
	[ -n "${CT_LOG:-}" ] && rm -f "$CT_LOG"
	return 0
}
