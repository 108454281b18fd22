#!/usr/bin/env bash
# Runs every core benchmark program in DIR and writes the results into FILE
# (BENCHMARKS.md) between the markers <!-- core:begin --> and <!-- core:end -->,
# keeping the rest of the file.  Prints the same table on stdout.
#
# ns/op is the median of 5 runs (bench/bench.h).  instr/op comes from
# callgrind when valgrind is installed: each op runs twice under callgrind
# with N1 and N2 iterations and the difference in instructions is divided by
# N2 - N1, so set-up and start-up cancel out.  (perf stat cannot count
# instructions on this virtual machine: "<not supported>".)
set -euo pipefail
dir=$1
out=$2

machine() {
	local cpu
	cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
	echo "- CPU: ${cpu:-unknown}, $(nproc) cores online; $(free -g | awk '/Mem:/ {print $2}') GiB"
	echo "- Kernel: $(uname -sr); compiler: $(${CC:-cc} --version | head -n1)"
	echo "- Date: $(date -u +%Y-%m-%d); build flags: -O2 -g"
	echo "- A virtual machine whose syscalls cost about 1 µs; figures that include atomics or"
	echo "  syscalls are worse than on bare metal. Medians of 5 runs; the machine is noisy."
}

# The iteration difference is scaled to the op's cost (about 20 ms of native
# time between the two runs), so slow ops do not take minutes under callgrind.
instr_per_op() {
	local bin=$1 op=$2 ns=$3 a b d n1 n2
	command -v valgrind >/dev/null 2>&1 || { echo "n/a"; return; }
	d=$(awk -v ns="$ns" 'BEGIN { d = 2e7 / (ns > 0.1 ? ns : 0.1);
		if (d > 200000) d = 200000; if (d < 100) d = 100; printf "%d", d }')
	n1=$((d / 10 + 10))
	n2=$((n1 + d))
	a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --op "$op" --iters $n1 2>&1 |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
	b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --op "$op" --iters $n2 2>&1 |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
	if [ -z "$a" ] || [ -z "$b" ]; then echo "n/a"; return; fi
	awk -v a="$a" -v b="$b" -v n=$((n2 - n1)) 'BEGIN { printf "%.1f", (b - a) / n }'
}

table=$(mktemp)
trap 'rm -f "$table"' EXIT
{
	echo "| operation | ns/op (median of 5) | goal | met | instructions/op |"
	echo "|---|---:|---:|:---:|---:|"
} >"$table"
metrics=""
for bin in "$dir"/bench_*; do
	[ -x "$bin" ] || continue
	while IFS=$'\t' read -r kind name value goal rest; do
		case $kind in
		op)
			ins=$(instr_per_op "$bin" "$name" "$value")
			if awk -v g="$goal" 'BEGIN { exit !(g > 0) }'; then
				met=$(awk -v v="$value" -v g="$goal" 'BEGIN { print (v <= g) ? "yes" : "**no**" }')
				gl="≤ $goal"
			else
				met="-"; gl="-"
			fi
			echo "| $name | $value | $gl | $met | $ins |" >>"$table"
			;;
		metric)
			# metric lines: metric NAME VALUE UNIT GOAL
			unit=$goal; mgoal=$rest
			if awk -v g="$mgoal" 'BEGIN { exit !(g > 0) }'; then
				met=$(awk -v v="$value" -v g="$mgoal" 'BEGIN { print (v <= g) ? "yes" : "**no**" }')
				metrics+="| $name | $value $unit | ≤ $mgoal $unit | $met |"$'\n'
			else
				metrics+="| $name | $value $unit | - | - |"$'\n'
			fi
			;;
		esac
	done < <("$bin")
done

section=$(mktemp)
{
	echo "<!-- core:begin -->"
	echo "## Resilience core (\`make bench\`)"
	echo
	machine
	echo
	cat "$table"
	if [ -n "$metrics" ]; then
		echo
		echo "| memory | measured | goal | met |"
		echo "|---|---:|---:|:---:|"
		printf '%s' "$metrics"
	fi
	echo "<!-- core:end -->"
} >"$section"
cat "$section"

if [ -f "$out" ] && grep -q '<!-- core:begin -->' "$out"; then
	awk -v sec="$section" '
		/<!-- core:begin -->/ { while ((getline l < sec) > 0) print l; skip = 1; next }
		/<!-- core:end -->/ { skip = 0; next }
		!skip { print }' "$out" >"$out.tmp"
	mv "$out.tmp" "$out"
else
	{
		[ -f "$out" ] && cat "$out" || printf '# Benchmarks\n\nWritten by `make bench`; notes on goals missed follow each table.\n'
		echo
		cat "$section"
	} >"$out.tmp"
	mv "$out.tmp" "$out"
fi
rm -f "$section"
