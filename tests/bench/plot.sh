#!/usr/bin/env bash
# A small SVG of how apply time grows: masctl policy apply (solid) and nft -f of the same rules
# (dashed) against prefixes (log scale), one colour per agent count, from one run's results.
# usage: plot.sh RESULTS.jsonl OUT.svg
set -u
in=${1:?usage: plot.sh RESULTS.jsonl OUT.svg}
out=${2:?usage: plot.sh RESULTS.jsonl OUT.svg}
jq -r 'select(.stage == "apply") | [.agents, .prefixes, .value, .nft_ms] | @tsv' "$in" |
	sort -k1,1n -k2,2n | awk -F'\t' '
	function x(p) { return L + (log(p) / log(10) - 1) / 3 * W }
	function y(v) { return T + H - v / ymax * H }
	{ a[NR] = $1; p[NR] = $2; m[NR] = $3; n[NR] = $4; if ($3 > ymax) ymax = $3; if ($4 > ymax) ymax = $4 }
	END {
		if (NR == 0) exit 1
		L = 60; T = 30; W = 420; H = 240
		step = 10; while (ymax / step > 8) step *= (step ~ /^1/ ? 2 : (step ~ /^2/ ? 2.5 : 2))
		ymax = (int(ymax / step) + 1) * step
		split("#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e", col, " ")
		printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"320\" font-family=\"sans-serif\" font-size=\"11\">\n"
		printf "<text x=\"%d\" y=\"18\" font-size=\"13\">policy apply, end to end (ms): masctl (solid) vs nft -f (dashed)</text>\n", L
		printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", L, T, W, H
		for (v = 0; v <= ymax; v += step) {
			printf "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", L, L + W, y(v), y(v)
			printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 4, y(v) + 4, v
		}
		for (e = 1; e <= 4; e++)
			printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x(10 ^ e), T + H + 14, 10 ^ e
		printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">prefixes</text>\n", L + W / 2, T + H + 28
		if (ymax >= 25) printf "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-dasharray=\"2,3\"/><text x=\"%d\" y=\"%.1f\">25 ms budget</text>\n", L, L + W, y(25), y(25), L + W + 4, y(25) + 4
		k = 0
		for (i = 1; i <= NR; i++) {
			if (i == 1 || a[i] != a[i - 1]) { k++; sm = ""; sn = "" }
			sm = sm sprintf("%.1f,%.1f ", x(p[i]), y(m[i])); sn = sn sprintf("%.1f,%.1f ", x(p[i]), y(n[i]))
			if (i == NR || a[i + 1] != a[i]) {
				c = col[(k - 1) % 5 + 1]
				printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", c, sm
				printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\" points=\"%s\"/>\n", c, sn
				printf "<text x=\"%d\" y=\"%d\" fill=\"%s\">%d agents</text>\n", L + W + 4, T + 40 + 16 * k, c, a[i]
			}
		}
		print "</svg>"
	}' >"$out"
