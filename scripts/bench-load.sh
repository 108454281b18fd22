#!/usr/bin/env bash
# The load generator against wrk, side by side: both drive the same server in
# closed loop with one thread, for C = 50 and 200 connections, alternating
# runs (wrk, faultline, wrk, ...), and report the medians of requests/s and of
# the CPU time each generator process used per request, with the ratios
# against wrk.  Servers: Debian's nginx-light (one worker, access_log off, a
# 13-byte file) and, when $FAULTLINE_BUILD/faultline-target exists, the
# reference target serving a cached item (its dependency started beside it).
# Then an open-loop accuracy run against nginx: the rate achieved against the
# rate requested.
#
# Usage: scripts/bench-load.sh FILE        (BENCHMARKS.md; FAULTLINE_BUILD set)
# Writes the results into FILE between <!-- load:begin --> and
# <!-- load:end -->, keeping the rest of the file, and prints them.
# Knobs for a quick try: BENCH_LOAD_SECS (10), BENCH_LOAD_RUNS (3),
# BENCH_LOAD_CONNS ("50 200"), BENCH_LOAD_RATE (5000).
#
# CPU time is the children's user + system time as bash's `times` reports it
# for a subshell that ran only the generator (getrusage, no extra package).
set -euo pipefail

out=${1:?usage: scripts/bench-load.sh BENCHMARKS.md}
build=${FAULTLINE_BUILD:?FAULTLINE_BUILD must name the build directory}
secs=${BENCH_LOAD_SECS:-10}
runs=${BENCH_LOAD_RUNS:-3}
conns=${BENCH_LOAD_CONNS:-"50 200"}
rate=${BENCH_LOAD_RATE:-5000}
fl=$build/faultline
nginx=/usr/sbin/nginx

die() {
	echo "bench-load: $*" >&2
	exit 1
}
[ -x "$fl" ] || die "no $fl (run make build/faultline)"
command -v wrk >/dev/null 2>&1 || die "wrk is missing (apt-get install wrk)"
[ -x "$nginx" ] || die "$nginx is missing (apt-get install nginx-light)"

tmp=$(mktemp -d /tmp/fl-bench-load-XXXXXX)
nginx_pid=""
svc_pid=""
dep_pid=""
svc_pid_off=""
dep_pid_off=""
target_url_off=""
stop_pid() {
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	stop_pid "$svc_pid"
	stop_pid "$dep_pid"
	stop_pid "$svc_pid_off"
	stop_pid "$dep_pid_off"
	stop_pid "$nginx_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- nginx-light on a free loopback port --------------------------------
# The workers may run as nobody: the directory and file must be readable.
chmod 755 "$tmp"
printf 'hello, world\n' >"$tmp/index.html" # 13 bytes
chmod 644 "$tmp/index.html"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_nginx() {
	local port=$1
	cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
daemon on;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $tmp/body;
	proxy_temp_path $tmp/proxy;
	fastcgi_temp_path $tmp/fastcgi;
	uwsgi_temp_path $tmp/uwsgi;
	scgi_temp_path $tmp/scgi;
	server {
		listen 127.0.0.1:$port;
		root $tmp;
		location / { }
	}
}
EOF
	"$nginx" -p "$tmp" -c "$tmp/nginx.conf" 2>>"$tmp/error.log" || return 1
	for _ in $(seq 50); do
		[ -s "$tmp/nginx.pid" ] && port_in_use "$port" && return 0
		sleep 0.1
	done
	return 1
}

port=""
for _ in $(seq 20); do
	p=$((20000 + RANDOM % 30000))
	port_in_use "$p" && continue
	if start_nginx "$p"; then
		port=$p
		break
	fi
	[ -s "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
	rm -f "$tmp/nginx.pid"
done
[ -n "$port" ] || die "nginx did not start: $(tail -n 3 "$tmp/error.log" 2>/dev/null)"
nginx_pid=$(cat "$tmp/nginx.pid")
url=http://127.0.0.1:$port/index.html
# The worker (the master's child): its CPU time shows whether the server
# was the bottleneck of a run.
nginx_worker=$(awk -v p="$nginx_pid" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null | head -n 1)
[ -n "$nginx_worker" ] || die "cannot find nginx's worker process (master $nginx_pid)"
hz=$(getconf CLK_TCK)
server_pid=$nginx_worker
server_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat" 2>/dev/null || echo 0; }
echo "bench-load: nginx-light (pid $nginx_pid) serves $url"

# ---- faultline-target, when built: dependency + service, item 1 cached -------
target=$build/faultline-target
target_url=""
target_note=""
# wait_listening FILE PID: the "listening http=HOST:PORT ..." line's HOST:PORT.
wait_listening() {
	for _ in $(seq 100); do
		local hp
		hp=$(sed -n 's/^listening http=\([^ ]*\) .*/\1/p' "$1" 2>/dev/null)
		if [ -n "$hp" ]; then echo "$hp"; return 0; fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
# start_target [SUFFIX FLAGS...]: a dependency and a service (the service
# started with FLAGS); sets dep_pid$SUFFIX, svc_pid$SUFFIX, target_url$SUFFIX.
start_target() {
	local sfx=${1:-} dep svc d s u
	shift || true
	[ -d "$tmp/data" ] || "$target" --init-data "$tmp/data" --items 100 >"$tmp/init.log" 2>&1 ||
		{ target_note="faultline-target --init-data failed: $(tail -n 1 "$tmp/init.log")"; return 1; }
	"$target" --role dependency --port 0 --admin-port 0 >"$tmp/dep$sfx.out" 2>"$tmp/dep$sfx.err" &
	d=$!
	printf -v "dep_pid$sfx" %s "$d"
	dep=$(wait_listening "$tmp/dep$sfx.out" "$d") ||
		{ target_note="the target's dependency did not start: $(tail -n 1 "$tmp/dep$sfx.err")"; return 1; }
	"$target" --role service --port 0 --admin-port 0 --data-dir "$tmp/data" --dependency "$dep" \
		"$@" >"$tmp/svc$sfx.out" 2>"$tmp/svc$sfx.err" &
	s=$!
	printf -v "svc_pid$sfx" %s "$s"
	svc=$(wait_listening "$tmp/svc$sfx.out" "$s") ||
		{ target_note="the target's service did not start: $(tail -n 1 "$tmp/svc$sfx.err")"; return 1; }
	u=http://$svc/item/1
	# Warm the cache: the measured requests are all hits.
	"$fl" load "$u" --requests 10 --connections 1 >"$tmp/warm.log" 2>&1 &&
		grep -q ' 10 ok' "$tmp/warm.log" ||
		{ target_note="GET $u did not answer 200: $(grep -m1 Errors "$tmp/warm.log")"; return 1; }
	printf -v "target_url$sfx" %s "$u"
}
if [ ! -x "$target" ]; then
	target_note="faultline-target is not built (\$FAULTLINE_BUILD/faultline-target absent): skipped."
elif start_target; then
	echo "bench-load: faultline-target (service pid $svc_pid, dependency pid $dep_pid) serves $target_url"
else
	target_note="$target_note: the faultline-target rows are skipped."
fi
[ -z "$target_note" ] || echo "bench-load: $target_note"

# ---- one measured run -----------------------------------------------------
# run_one NAME CMD...: prints "requests seconds cpu_seconds server_busy" for
# the run (server_busy: the server process's CPU time / wall time).
run_one() {
	local name=$1 log=$tmp/run.log cpu w0 w1 t0 t1
	shift
	w0=$(server_ticks)
	t0=$(date +%s.%N)
	cpu=$( (
		"$@" >"$log" 2>&1 || true
		times
	) | tail -n 1)
	t1=$(date +%s.%N)
	w1=$(server_ticks)
	# `times`' second line: children's user and system time, "0m1.234s 0m2.345s".
	cpu=$(echo "$cpu" | awk '{
		n = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
		printf "%.3f", n }')
	local req s
	req=$(sed -n 's/^ *\([0-9][0-9]*\) requests in \([0-9.]*\)s.*/\1 \2/p' "$log" | head -n 1)
	[ -n "$req" ] || die "$name printed no request count: $(tail -n 5 "$log")"
	s=${req#* }
	req=${req%% *}
	echo "$req $s $cpu $(awk -v a="$w0" -v b="$w1" -v hz="$hz" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%.2f", (b - a) / hz / (t1 - t0) }')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

table=$tmp/table.md
{
	echo "| server | connections | wrk req/s | faultline req/s | throughput ratio (goal ≥ 1.0) | wrk CPU µs/req | faultline CPU µs/req | CPU ratio (goal ≤ 1.0) | server busy under wrk / faultline |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$table"
spread=""

# bench_server LABEL URL: the alternating runs for every C; one row each.
bench_server() {
	local label=$1 u=$2 c i n s cpu busy wr fr wc fc wb fb
	for c in $conns; do
		: >"$tmp/wrk.rps"; : >"$tmp/wrk.cpu"; : >"$tmp/fl.rps"; : >"$tmp/fl.cpu"
		: >"$tmp/wrk.busy"; : >"$tmp/fl.busy"
		for i in $(seq "$runs"); do
			read -r n s cpu busy < <(run_one wrk wrk -t1 -c"$c" -d"${secs}s" "$u")
			awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f\n", n / s }' >>"$tmp/wrk.rps"
			awk -v n="$n" -v c="$cpu" 'BEGIN { printf "%.3f\n", c * 1e6 / n }' >>"$tmp/wrk.cpu"
			echo "$busy" >>"$tmp/wrk.busy"
			echo "bench-load: $label c=$c run $i: wrk $n requests in ${s}s, ${cpu}s CPU, server busy $busy"
			read -r n s cpu busy < <(run_one faultline "$fl" load "$u" --connections "$c" --duration "${secs}s")
			awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f\n", n / s }' >>"$tmp/fl.rps"
			awk -v n="$n" -v c="$cpu" 'BEGIN { printf "%.3f\n", c * 1e6 / n }' >>"$tmp/fl.cpu"
			echo "$busy" >>"$tmp/fl.busy"
			echo "bench-load: $label c=$c run $i: faultline $n requests in ${s}s, ${cpu}s CPU, server busy $busy"
		done
		wr=$(median <"$tmp/wrk.rps"); fr=$(median <"$tmp/fl.rps")
		wc=$(median <"$tmp/wrk.cpu"); fc=$(median <"$tmp/fl.cpu")
		wb=$(median <"$tmp/wrk.busy"); fb=$(median <"$tmp/fl.busy")
		spread+="$label C=$c: wrk $(sort -g "$tmp/wrk.rps" | head -n 1 | xargs printf %.0f)..$(sort -g "$tmp/wrk.rps" | tail -n 1 | xargs printf %.0f),"
		spread+=" faultline $(sort -g "$tmp/fl.rps" | head -n 1 | xargs printf %.0f)..$(sort -g "$tmp/fl.rps" | tail -n 1 | xargs printf %.0f) req/s. "
		awk -v l="$label" -v c="$c" -v wr="$wr" -v fr="$fr" -v wc="$wc" -v fc="$fc" -v wb="$wb" -v fb="$fb" 'BEGIN {
			tr = fr / wr; cr = fc / wc
			tm = (tr >= 1.0) ? "" : " **(missed)**"
			cm = (cr <= 1.0) ? "" : " **(missed)**"
			printf "| %s | %d | %.0f | %.0f | %.2f%s | %.1f | %.1f | %.2f%s | %d%% / %d%% |\n", l, c, wr, fr, tr, tm, wc, fc, cr, cm, wb * 100 + 0.5, fb * 100 + 0.5 }' >>"$table"
	done
}

bench_server nginx-light "$url"
if [ -n "$target_url" ]; then
	server_pid=$svc_pid
	bench_server "faultline-target (cached item)" "$target_url"
	server_pid=$nginx_worker
fi

# ---- open-loop accuracy -------------------------------------------------------
ol=$tmp/open.log
"$fl" load "$url" --connections 50 --rate "$rate" --duration 5s >"$ol" 2>&1 || die "open-loop run failed: $(tail -n 5 "$ol")"
started=$(sed -n 's/.*: \([0-9][0-9]*\) of \([0-9][0-9]*\) scheduled.*/\1 \2/p' "$ol")
[ -n "$started" ] || die "the open-loop run printed no schedule line: $(cat "$ol")"
lat=$(awk '/^    corrected/ { c = $4 } /^    uncorrected/ { u = $4 } END { print c " " u }' "$ol")
open_line=$(awk -v s="${started% *}" -v t="${started#* }" -v r="$rate" -v l="$lat" 'BEGIN {
	split(l, q, " ")
	err = (s - t) / t * 100
	met = (err <= 1 && err >= -1) ? "met" : "**missed**"
	printf "Open loop at %d requests/s for 5 s, 50 connections: %d of %d scheduled requests started (achieved rate %.2f%% off the requested one; goal within 1%%: %s). p99 corrected %s, uncorrected %s.", r, s, t, err, met, q[1], q[2] }')

# ---- the target's own cost: every defense on against every defense off -------
# Same cached GET, wrk -t1 -c50, alternating; the service's CPU per request
# (from /proc) says what the core's mechanisms cost on the hit path.
mech_line=""
if [ -n "$target_url" ] && start_target _off --no-breaker --no-budget --no-jitter --no-shed \
	--no-detector --no-coalesce; then
	: >"$tmp/on.rps"; : >"$tmp/on.cpu"; : >"$tmp/off.rps"; : >"$tmp/off.cpu"
	for i in $(seq "$runs"); do
		for v in on off; do
			if [ $v = on ]; then server_pid=$svc_pid; u=$target_url; else server_pid=$svc_pid_off; u=$target_url_off; fi
			read -r n s cpu busy < <(run_one wrk wrk -t1 -c50 -d"${secs}s" "$u")
			w=$(awk -v b="$busy" -v s="$s" -v n="$n" 'BEGIN { printf "%.3f", b * s * 1e6 / n }')
			awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f\n", n / s }' >>"$tmp/$v.rps"
			echo "$w" >>"$tmp/$v.cpu"
			echo "bench-load: target defenses $v run $i: $n requests in ${s}s, service ${w} µs CPU/request"
		done
	done
	server_pid=$nginx_worker
	mech_line=$(awk -v onr="$(median <"$tmp/on.rps")" -v offr="$(median <"$tmp/off.rps")" \
		-v onc="$(median <"$tmp/on.cpu")" -v offc="$(median <"$tmp/off.cpu")" 'BEGIN {
		met = (onr >= 20000) ? "met" : "**missed**"
		printf "faultline-target, cached GET /item/1, wrk -t1 -c50, medians of the runs: every defense on %.0f req/s at %.2f µs of service CPU per request; every defense off (--no-breaker --no-budget --no-jitter --no-shed --no-detector --no-coalesce) %.0f req/s at %.2f µs. The mechanisms cost %.2f µs per cached request (%.0f%%). The service is one libuv loop, so this is one core; goal ≥ 20k req/s with the mechanisms on: %s.", onr, onc, offr, offc, onc - offc, (onc - offc) / offc * 100, met }')
else
	mech_line="The defenses-on/off comparison of faultline-target did not run: ${target_note:-the second target did not start}."
fi

section=$tmp/section.md
{
	echo "<!-- load:begin -->"
	echo "## Load generator against wrk (\`make bench-load\`)"
	echo
	cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
	echo "- CPU: ${cpu:-unknown}, $(nproc) cores online; kernel $(uname -sr); $(date -u +%Y-%m-%d)"
	echo "- Server: Debian's nginx-light $("$nginx" -v 2>&1 | sed 's/.*nginx\///'), one worker, access_log off, keepalive_requests 1000000, a 13-byte file on 127.0.0.1"
	echo "- Closed loop, one thread each: \`wrk -t1 -cC -d${secs}s\` ($(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')) and \`faultline load --connections C --duration ${secs}s\`, alternating, medians of $runs runs"
	echo "- CPU µs/req: user + system time of the generator process / requests it completed. The server and the"
	echo "  generator share $(nproc) cores, so throughput is the server's limit; CPU per request is the generator's cost."
	echo "- faultline-target: \`--role service\` with its \`--role dependency\`, defaults (every defense on), GET /item/1 after a warm-up (a cache hit)"
	echo "- server busy: the server process's CPU time / wall time during the runs (100% of one core: the server is the bottleneck)."
	echo
	cat "$table"
	echo
	echo "Spread of requests/s over the runs: $spread"
	echo
	echo "$open_line"
	echo
	echo "$mech_line"
	if [ -n "$target_note" ]; then
		echo
		echo "$target_note"
	fi
	echo "<!-- load:end -->"
} >"$section"
cat "$section"

if [ -f "$out" ] && grep -q '<!-- load:begin -->' "$out"; then
	awk -v sec="$section" '
		/<!-- load:begin -->/ { while ((getline l < sec) > 0) print l; skip = 1; next }
		/<!-- load:end -->/ { skip = 0; next }
		!skip { print }' "$out" >"$out.tmp"
	mv "$out.tmp" "$out"
else
	{
		if [ -f "$out" ]; then cat "$out"; else printf '# Benchmarks\n\nWritten by `make bench`; notes on goals missed follow each table.\n'; fi
		echo
		cat "$section"
	} >"$out.tmp"
	mv "$out.tmp" "$out"
fi
