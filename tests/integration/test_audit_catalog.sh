#!/usr/bin/env bash
# systemd/masd.catalog has an entry for every MESSAGE_ID in daemon/msgid.h, and journalctl
# compiles it (into a scratch root, never the host's catalog).
set -u
cd "$(dirname "$0")/../.."
command -v journalctl >/dev/null || { echo "skip: no journalctl"; exit 77; }
tmp=$(mktemp -d /tmp/test_audit_catalog.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/usr/lib/systemd/catalog"
cp systemd/masd.catalog "$tmp/usr/lib/systemd/catalog/"
journalctl --root="$tmp" --update-catalog || { echo "FAIL: catalog does not compile"; exit 1; }
[ -s "$tmp/var/lib/systemd/catalog/database" ] || { echo "FAIL: no catalog database"; exit 1; }
journalctl --root="$tmp" --list-catalog >"$tmp/list" 2>&1
missing=0
ids=$(sed -n 's/^#define MAS_MSGID_[A-Z_]* "\([0-9a-f]\{32\}\)"$/\1/p' daemon/msgid.h)
[ -n "$ids" ] || { echo "FAIL: no ids in msgid.h"; exit 1; }
for id in $ids; do
	if ! grep -q "^$id " "$tmp/list"; then
		echo "FAIL: $id has no catalog entry"
		missing=$((missing + 1))
	fi
	[ "$(grep -c "^-- $id\$" systemd/masd.catalog)" = 1 ] ||
		{ echo "FAIL: $id not exactly once"; missing=$((missing + 1)); }
done
n=$(grep -c '^-- ' systemd/masd.catalog)
[ "$n" = "$(echo "$ids" | wc -l)" ] || { echo "FAIL: $n entries, $(echo "$ids" | wc -l) ids"; missing=$((missing + 1)); }
grep -q '^Defined-By: masd$' systemd/masd.catalog || missing=$((missing + 1))
[ $missing = 0 ] && echo "catalog: $n entries, one per MESSAGE_ID"
[ $missing = 0 ]
