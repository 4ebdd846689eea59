#!/usr/bin/env bash
# Runs masd's tests and prints one line per test and a closing "N passed, N failed, N skipped".
# usage: run-tests.sh unit BUILD | integration BUILD | fuzz BUILD | all BUILD SANBUILD
# A test passes with exit 0, is skipped with exit 77 (its reason is printed), fails otherwise.
set -u
cd "$(dirname "$0")/.."
mode=$1
build=$2
san=${3:-$2}
logs=$build/test-logs
mkdir -p "$logs"
pass=0 fail=0 skip=0
failed=()

run_one() { # label, command...
	local label=$1
	shift
	local log="$logs/$(echo "$label" | tr '/ ' '__').log"
	local t0=$SECONDS rc
	"$@" >"$log" 2>&1 </dev/null
	rc=$?
	local dt=$((SECONDS - t0))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		printf 'PASS %-48s %3ss\n' "$label" "$dt"
	elif [ $rc -eq 77 ]; then
		skip=$((skip + 1))
		printf 'SKIP %-48s %s\n' "$label" "$(grep -m1 -i 'skip' "$log" | cut -c1-120)"
	else
		fail=$((fail + 1))
		failed+=("$label")
		printf 'FAIL %-48s %3ss (exit %s, log %s)\n' "$label" "$dt" "$rc" "$log"
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
}

run_unit() { # build, tag
	local b=$1 tag=$2 t
	for t in "$b"/tests/unit/test_*; do
		[ -x "$t" ] || continue
		run_one "unit$tag/$(basename "$t")" "$t"
	done
}

run_integration() { # build
	local b=$1 t
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP integration tests: they need root (BPF, cgroups, journald)"
		skip=$((skip + 1))
		return
	fi
	for t in tests/integration/test_*.sh; do
		[ -e "$t" ] || continue
		run_one "integration/$(basename "$t" .sh)" env MASD_BUILD="$b" bash "$t"
	done
	for t in tests/bypass/test_*.sh; do
		[ -e "$t" ] || continue
		run_one "bypass/$(basename "$t" .sh)" env MASD_BUILD="$b" bash "$t"
	done
}

run_fuzz() { # build: each harness briefly on its seed corpus
	local b=$1 f
	for f in "$b"/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		run_one "fuzz/$(basename "$f")" tests/fuzz/run.sh smoke "$b" "$(basename "$f")"
	done
}

case $mode in
unit) run_unit "$build" "" ;;
fuzz) run_fuzz "$build" ;;
integration) run_integration "$build" ;;
all)
	run_unit "$build" ""
	run_fuzz "$build"
	run_unit "$san" "-asan"
	run_integration "$san"
	;;
*)
	echo "usage: $0 unit|integration|all BUILD [SANBUILD]" >&2
	exit 2
	;;
esac

echo
[ ${#failed[@]} -eq 0 ] || printf 'failed: %s\n' "${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
