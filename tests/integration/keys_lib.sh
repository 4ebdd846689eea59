# Shared by the tests/integration/test_keys_*.sh scripts: the driver, a world-traversable scratch
# dir (so that only masd's own modes protect the keys), and throwaway service users.
# shellcheck shell=bash
MASD_BUILD=${MASD_BUILD:-build}
DRIVER=$MASD_BUILD/tests/integration/keys_driver
T0=1800000000
DAY=86400

keys_setup() {
	if [ "$(id -u)" != 0 ]; then
		echo "skip: needs root (chown to service users, setresuid)"
		exit 77
	fi
	[ -x "$DRIVER" ] || { echo "no driver at $DRIVER" >&2; exit 1; }
	if ! command -v useradd >/dev/null || ! command -v setpriv >/dev/null; then
		echo "skip: needs useradd (passwd) and setpriv (util-linux)"
		exit 77
	fi
	BASE=$(mktemp -d /tmp/masd-keys-test.XXXXXX)
	chmod 0755 "$BASE"
	STATE=$BASE/state
	RUN=$BASE/run
	mkdir -p "$RUN"
	chmod 0755 "$RUN"
	export MAS_KEYS_AUDIT_LOG=$BASE/audit.log
	USERS=()
	trap keys_cleanup EXIT
}

# keys_user NAME: a throwaway system user, removed at exit.
keys_user() {
	userdel "$1" >/dev/null 2>&1
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$1" ||
		{ echo "useradd $1 failed" >&2; exit 1; }
	USERS+=("$1")
}

keys_cleanup() {
	local u
	for u in "${USERS[@]}"; do
		userdel "$u" >/dev/null 2>&1
		groupdel "$u" >/dev/null 2>&1
	done
	rm -rf "$BASE"
}

fail() {
	echo "FAIL: $*"
	exit 1
}

uidgid() { # USER -> UID:GID
	echo "$(id -u "$1"):$(id -g "$1")"
}
