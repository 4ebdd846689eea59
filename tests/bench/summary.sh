#!/usr/bin/env bash
# The table of one bench run: every figure of RESULTS.jsonl with its budget and PASS or MISS.
# A MISS is reported, never an error: budgets are for people to read, not for make to fail on.
# Apply figures (with prefixes and agents) are one row per point, beside nft -f of the same rules.
# usage: summary.sh RESULTS.jsonl [--markdown]
set -u
f=${1:?usage: summary.sh RESULTS.jsonl [--markdown]}
md=${2:-}
[ -s "$f" ] || { echo "summary: no results in $f" >&2; exit 0; }
jq -sr --arg md "$md" '
	def num: if type == "number" and . != floor then (. * 100 | round / 100 | tostring)
		else tostring end;
	def verdict: if .budget == null then "" elif (.op // "le") == "le" then
		(if .value <= .budget then "PASS" else "MISS" end)
		else (if .value >= .budget then "PASS" else "MISS" end) end;
	def budget: if .budget == null then "" else
		((if (.op // "le") == "le" then "<= " else ">= " end) + (.budget | num) + " " + .unit) end;
	def row(cells): if $md == "--markdown" then "| " + (cells | map(gsub("\\|"; "\\|")) | join(" | ")) + " |"
		else cells | @tsv end;
	(map(select(.stage == "apply")) as $a |
	 if ($a | length) > 0 then
		row(["apply: prefixes", "agents", "masctl (ms)", "masd (ms)", "wait (ms)", "fill (ms)", "flip (ms)",
		     "nft -f (ms)", "masctl/nft", "budget", ""]),
		(if $md == "--markdown" then "|" + (" ---: |" * 9) + " --- | --- |" else empty end),
		($a[] | row([(.prefixes | tostring), (.agents | tostring), (.value | num),
			     (.masd_ms | num), (.wait_ms | num), (.fill_ms | num), (.flip_ms | num), (.nft_ms | num),
			     (.vs_nft | num), budget, verdict]))
	 else empty end),
	"",
	row(["stage", "figure", "value", "budget", ""]),
	(if $md == "--markdown" then "| --- | --- | ---: | --- | --- |" else empty end),
	(.[] | select(.stage != "apply") |
		row([.stage, .name, ((.value | num) + " " + .unit), budget, verdict]))' "$f" |
	if [ "$md" = --markdown ]; then cat; else
		awk -F'\t' 'NF > 6 { printf "%-15s %6s %11s %9s %9s %9s %9s %11s %10s  %-9s %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11; next }
			NF == 0 || $0 == "" { print ""; next }
			{ printf "%-7s %-70s %14s  %-12s %s\n", $1, $2, $3, $4, $5 }'
	fi
n_pass=$(jq -s '[.[] | select(.budget != null) | select(((.op // "le") == "le" and .value <= .budget) or (.op == "ge" and .value >= .budget))] | length' "$f")
n_budget=$(jq -s '[.[] | select(.budget != null)] | length' "$f")
[ "$md" = --markdown ] || echo "budgets: $n_pass of $n_budget PASS ($f)"
