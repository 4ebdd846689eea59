# Private journald for tests. Source this file from a script that already runs in its own mount
# namespace (unshare --mount --propagation private), so the host's journal is never touched.
# journald_start: tmpfs over the journal sockets and storage, start systemd-journald, wait for it.
# journald_stop: stop it by PID. journal_sync: so journalctl sees what was sent.
# journal_flush: move the runtime journal to /var/log/journal (persistent, on the tmpfs).

JOURNALD_BIN=${JOURNALD_BIN:-/lib/systemd/systemd-journald}

journald_start() {
	local d
	for d in /run/systemd/journal /run/log/journal /var/log/journal; do
		mkdir -p "$d"
		mount -t tmpfs -o mode=0755 tmpfs "$d" || return 1
	done
	# Persistent storage, so that a test can read a journal directory as an auditor would.
	mkdir -p /var/log/journal
	"$JOURNALD_BIN" >/dev/null 2>&1 &
	JOURNALD_PID=$!
	for _ in $(seq 1 100); do
		[ -S /run/systemd/journal/socket ] && return 0
		sleep 0.05
	done
	echo "journald did not start" >&2
	return 1
}

journal_flush() {
	journalctl --flush >/dev/null 2>&1
}

journal_sync() {
	journalctl --sync >/dev/null 2>&1 || sleep 0.3
}

journald_stop() {
	if [ -n "${JOURNALD_PID:-}" ]; then
		kill "$JOURNALD_PID" 2>/dev/null
		wait "$JOURNALD_PID" 2>/dev/null
		JOURNALD_PID=
	fi
}
