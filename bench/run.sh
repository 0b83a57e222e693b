#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh (`make bench`): what the agent costs, agent on vs off (issue 7).
# Method, figures and latest table: docs/performance.md.
#
# Layout on the 2-core VM: nginx (1 worker) on CPU0; the load generators
# (wrk, bench/loadgen, bench/writeloop) on CPU1; the agent unpinned, as it
# would run on a node; the OTLP sink (bench/sink) unpinned too, so that it
# takes what idle time there is (it only copies bodies while measuring).
# Only 127.0.0.1.
# Results: build/bench/*.json (raw per round in build/bench/raw/), a table
# on stdout. Every process started here is stopped on exit, sysctls restored.
#
# Knobs (environment):
#   BENCH_ROUNDS=5           alternated off/on rounds, saturated and fixed rate (>= 3)
#   BENCH_SAT_S=6            seconds per saturated wrk run
#   BENCH_FIXED_S=6          seconds per fixed-rate run
#   BENCH_RATE_FRACTION=0.5  fixed rate as a fraction of the saturated rps without agent
#   BENCH_RATE=N             fixed rate in requests/s (overrides the fraction)
#   BENCH_LOW_FRACTION=0.25  a second, lower fixed rate (3 rounds), where the machine has room for
#                            the agent: added latency without overload; 0 to skip it
#   BENCH_QUICK=1            3 rounds of 3 s: a smoke test, not figures to publish
#   BENCH_PROFILE=1          also perf-record the agent and CPU0 during a fixed-rate run
#   BENCH_QUIET_WAIT=60      seconds to wait at the start for other agents to finish
#   BENCH_NOISE_PCT=10       a round in which other processes used more than this % of the
#                            machine's CPU is repeated (up to 2x BENCH_ROUNDS, within the budget)
#   BENCH_BUDGET_S=300       no more repeats once the run has taken this long
#   BENCH_LOW_MODES="offs idle samp"  more runs beside off/on at the low rate, each against the
#                            same round's off run: idle (--cpu-priority idle), batchN
#                            (OTEL_BSP_MAX_EXPORT_BATCH_SIZE=N), samp (OTEL_TRACES_SAMPLER=
#                            traceidratio, ARG 0.1: figure 3 when a tenth of the spans is
#                            exported), offs (no agent, only the RSS sampler that agent-on runs
#                            have: it must add nothing)
#   BENCH_ONLY=latency       only figure 2 at the low rate (BENCH_RATE, or 25 % of a saturated run)
#   BENCH_ONLY=bpf           only figure 8 at BENCH_RATE, for each of BENCH_BPF_VARIANTS (agent
#                            flags, ';' between variants; default ";--capture-bytes 64";
#                            "@/path/to/meshtrace flags": another build of the agent)
#   BENCH_ONLY=profile       only the perf profile (BENCH_PROFILE's run) at BENCH_RATE
#   BENCH_ONLY=replay        user space A/B: one run at BENCH_RATE recorded, replayed by each of
#                            BENCH_REPLAY_BINS (';' between agent binaries, '' this build) per round
#   BENCH_ONLY=tls           only figures 1 and 9 (saturated HTTP and HTTPS), for a quick TLS figure
#   MESHTRACE=build/meshtrace  the agent binary; MESHTRACE_ARGS: extra flags for it
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${BENCH_OUT:-$ROOT/build/bench}
BIN=$OUT/bin
RAW=$OUT/raw
MESHTRACE=${MESHTRACE:-$ROOT/build/meshtrace}
MESHTRACE_ARGS=${MESHTRACE_ARGS:-}
ROUNDS=${BENCH_ROUNDS:-5}
SAT_S=${BENCH_SAT_S:-6}
FIXED_S=${BENCH_FIXED_S:-6}
RATE_FRACTION=${BENCH_RATE_FRACTION:-0.5}
LOW_FRACTION=${BENCH_LOW_FRACTION:-0.25}
LOW_MODES=${BENCH_LOW_MODES:-offs idle samp}
BPF_VARIANTS=${BENCH_BPF_VARIANTS:-;--capture-bytes 64}
REPLAY_BINS=${BENCH_REPLAY_BINS:-}
QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
NOISE_PCT=${BENCH_NOISE_PCT:-10}
BUDGET_S=${BENCH_BUDGET_S:-300}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	ROUNDS=3 SAT_S=3 FIXED_S=3
fi
CONNS=32           # wrk -c and loadgen -c
IDLE_CONNS=1000    # figure 6
DISTINCT_PATHS=10000
CPU_SERVER=0
CPU_LOAD=1

log() { echo "bench: $*" >&2; }
die() {
	echo "bench: $*" >&2
	exit 1
}

# ---- preconditions -------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "needs root (BPF, sysctl): run 'sudo make bench'"
for c in nginx wrk taskset pgrep bpftool curl python3 cc make openssl; do
	command -v "$c" >/dev/null || die "'$c' is missing: run 'make deps' (scripts/deps.sh installs it)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (nginx on CPU0, load on CPU1); this machine has $(nproc)"
[ -x "$MESHTRACE" ] || die "$MESHTRACE not built: run 'make' first"
case "$ROUNDS" in '' | *[!0-9]*) die "BENCH_ROUNDS='$ROUNDS': give a whole number >= 3" ;; esac
[ "$ROUNDS" -ge 3 ] || die "BENCH_ROUNDS=$ROUNDS: give at least 3 (figures are medians of alternated rounds)"
[ -r /proc/sys/kernel/bpf_stats_enabled ] || die "kernel.bpf_stats_enabled is missing: this kernel cannot give per-program costs"

# ---- cleanup: every process we start, the sysctl, the temp dir -----------

START=$SECONDS
BG_PIDS=()
TMP=$(mktemp -d /tmp/meshtrace-bench.XXXXXX)
chmod 711 "$TMP" # nginx's worker runs as nobody and serves from here
BPF_STATS_ORIG=$(cat /proc/sys/kernel/bpf_stats_enabled)

stop_pid() { # pid [seconds]: TERM, wait up to seconds, then KILL; returns the exit status when known
	local pid=$1 secs=${2:-5} i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop within ${secs}s: killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#BG_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${BG_PIDS[$i]}" 3 || true
	done
	echo "$BPF_STATS_ORIG" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null || true
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

bg() { # command...: starts it in the background, remembered for cleanup; pid in BG_PID
	"$@" &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

forget() { # pid: no longer ours to stop
	local keep=() p
	for p in "${BG_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	BG_PIDS=("${keep[@]}")
}

# The agent binary is copied first: the whole run measures one build, even if the
# tree is rebuilt meanwhile.
cp "$MESHTRACE" "$TMP/meshtrace" || die "cannot copy $MESHTRACE"
AGENT_BIN=$TMP/meshtrace
AGENT_SHA=$(sha256sum "$AGENT_BIN" | cut -c1-12)
GIT_AT_START=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

# ---- build the bench programs ---------------------------------------------

mkdir -p "$BIN" "$RAW"
rm -f "$RAW"/* "$OUT"/*.json
BCFLAGS=(-O2 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -D_GNU_SOURCE -I"$ROOT" -I"$ROOT/build"
	-I"$ROOT/build/proto" -I"$ROOT/bench")
cc "${BCFLAGS[@]}" -o "$BIN/loadgen" bench/loadgen.c || die "cannot build bench/loadgen.c"
cc "${BCFLAGS[@]}" -o "$BIN/writeloop" bench/writeloop.c || die "cannot build bench/writeloop.c"
cc "${BCFLAGS[@]}" -o "$BIN/sink" bench/sink.c -lz || die "cannot build bench/sink.c (needs zlib1g-dev)"
ENCODE_OK=1
# The libraries the agent links, as the Makefile says today.
LIBS=$(make -pn 2>/dev/null | sed -n 's/^LDLIBS *:= *//p' | head -1)
[ -n "$LIBS" ] || LIBS="-lbpf -lelf -lz -ldeflate -lcurl -lprotobuf-c -lnghttp2 -lpthread -lm"
# shellcheck disable=SC2086 # LIBS is a list of flags
if make --no-print-directory -s build/libmeshtrace.a >/dev/null 2>&1 &&
	cc "${BCFLAGS[@]}" -o "$BIN/encode" bench/encode.c build/libmeshtrace.a $LIBS 2>"$TMP/encode-build.log"; then
	:
else
	ENCODE_OK=0
	log "bench/encode.c does not build against build/libmeshtrace.a (figure 7 encode rate skipped):"
	head -5 "$TMP/encode-build.log" >&2 || true
fi

# ---- helpers ---------------------------------------------------------------

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() { # pid -> utime+stime in clock ticks
	local stat rest
	read -r stat </proc/"$1"/stat || { echo 0; return; }
	rest=${stat##*) }
	# shellcheck disable=SC2086
	set -- $rest
	echo $((${12} + ${13}))
}

status_kib() { # pid field -> value in kB from /proc/pid/status
	local k v _
	while read -r k v _; do
		[ "$k" = "$2:" ] && { echo "$v"; return; }
	done </proc/"$1"/status
	echo 0
}

NGX_PORT=
nginx_requests() {
	curl -s --max-time 3 "http://127.0.0.1:$NGX_PORT/stub" | awk 'NR == 3 { print $3 }'
}

# Background load (CPU busy %, both CPUs) over one second, and what else attaches BPF.
machine_state() { # -> JSON fields
	local a b busy_a busy_b tot_a tot_b others progs
	read -r _ a </proc/stat
	sleep 1
	read -r _ b </proc/stat
	# shellcheck disable=SC2086
	set -- $a
	tot_a=$(($1 + $2 + $3 + $4 + $5 + $6 + $7 + $8))
	busy_a=$((tot_a - $4 - $5))
	# shellcheck disable=SC2086
	set -- $b
	tot_b=$(($1 + $2 + $3 + $4 + $5 + $6 + $7 + $8))
	busy_b=$((tot_b - $4 - $5))
	others=$(pgrep -x meshtrace | grep -cvx "${AGENT_PID:-none}" || true)
	progs=$(bpftool prog show 2>/dev/null | grep -cE '^[0-9]+: (tracepoint|raw_tracepoint|kprobe|tracing|perf_event)' || true)
	echo "\"busy_pct\":$(((busy_b - busy_a) * 100 / (tot_b - tot_a + 1))),\"other_agents\":$others,\"tracing_progs_before\":$progs"
}

wait_quiet() {
	local deadline=$((SECONDS + QUIET_WAIT)) st busy
	while :; do
		st=$(machine_state)
		busy=${st#*\"busy_pct\":}
		busy=${busy%%,*}
		if [[ $st == *'"other_agents":0'* ]] && [ "$busy" -lt 15 ]; then
			break
		fi
		if [ $SECONDS -ge $deadline ]; then
			log "the machine is not quiet ($st): other work will add noise to the figures"
			break
		fi
		sleep 2
	done
	echo "{$st}" >"$RAW/machine-start.json"
}

# Runs a load generator on CPU_LOAD, killed if it runs past LIMIT seconds.
# LOAD_PID: its pid (taskset execs it), for the report to find its spans.
run_load() { # limit out_file command...
	local limit=$1 out=$2 watchdog rc=0
	shift 2
	taskset -c "$CPU_LOAD" "$@" >"$out" &
	LOAD_PID=$!
	BG_PIDS+=("$LOAD_PID")
	(sleep "$limit" && kill -KILL "$LOAD_PID" 2>/dev/null && echo "bench: $1 ran past ${limit}s: killed" >&2) &
	watchdog=$!
	BG_PIDS+=("$watchdog")
	wait "$LOAD_PID" || rc=$?
	forget "$LOAD_PID"
	kill "$watchdog" 2>/dev/null || true
	wait "$watchdog" 2>/dev/null || true
	forget "$watchdog"
	return $rc
}

# A measured run is bracketed by snapshots of every process's CPU time, so the
# report can say how much of the machine other work took meanwhile.
measure_begin() { python3 "$ROOT/bench/report.py" --snapshot "$RAW/$1.snap0"; }
measure_end() {
	python3 "$ROOT/bench/report.py" --snapshot "$RAW/$1.snap1"
	python3 "$ROOT/bench/report.py" --foreign "$RAW/$1.snap0" "$RAW/$1.snap1" $$ >"$RAW/$1.foreign"
}

# Round loop: ROUNDS rounds other work left alone; a disturbed round is marked
# (PHASE-rN.noisy, left out of the medians) and another one is run, within
# 2 x ROUNDS rounds and the time budget.
ROUND=0 CLEAN=0 WANT=0
rounds_init() { ROUND=0 CLEAN=0 WANT=${1:-$ROUNDS}; }
rounds_more() {
	[ "$CLEAN" -lt "$WANT" ] || return 1
	[ "$ROUND" -lt "$WANT" ] && return 0
	[ "$ROUND" -lt $((2 * WANT)) ] && [ $((SECONDS - START)) -lt "$BUDGET_S" ]
}
round_done() { # phase tags...: marks the round noisy if any of its runs was disturbed
	local phase=$1 t f worst=0
	shift
	for t in "$@"; do
		f=$(cat "$RAW/$t.foreign" 2>/dev/null || echo 0)
		[ "$f" -gt "$worst" ] && worst=$f
	done
	if [ "$worst" -gt "$NOISE_PCT" ]; then
		touch "$RAW/$phase-r$ROUND.noisy"
		log "  round $ROUND: other processes used $worst% of the CPUs: round left out, running another"
	else
		CLEAN=$((CLEAN + 1))
	fi
}
round_order() { # off/on alternated: off first in odd rounds
	if [ $((ROUND % 2)) -eq 1 ]; then echo "off on"; else echo "on off"; fi
}

# ---- nginx -----------------------------------------------------------------

start_nginx() {
	local d=$TMP/nginx i
	mkdir -p "$d/www/u" "$d/logs" "$d/tmp"
	# ~600 B static file.
	head -c 600 /dev/zero | tr '\0' 'x' >"$d/www/index.html"
	NGX_PORT=$(free_port)
	NGX_TLS_PORT=$(free_port)
	# Figure 9: the same server over HTTPS, with a throwaway self-signed certificate.
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$d/key.pem" \
		-out "$d/cert.pem" 2>/dev/null || die "openssl could not make the bench's certificate"
	cat >"$d/nginx.conf" <<EOF
# meshtrace bench: 1 worker on CPU$CPU_SERVER, keep-alive, no access log (counts from stub_status).
worker_processes 1;
worker_cpu_affinity $([ $CPU_SERVER = 0 ] && echo 01 || echo 10);
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 10000000;
	keepalive_timeout 300s;
	default_type text/html;
	client_body_temp_path $d/tmp;
	proxy_temp_path $d/tmp;
	fastcgi_temp_path $d/tmp;
	uwsgi_temp_path $d/tmp;
	scgi_temp_path $d/tmp;
	server {
		listen 127.0.0.1:$NGX_PORT;
		listen 127.0.0.1:$NGX_TLS_PORT ssl;
		ssl_certificate $d/cert.pem;
		ssl_certificate_key $d/key.pem;
		root $d/www;
		location = /stub { stub_status; }
		location /u/ { try_files /index.html =404; }
	}
}
EOF
	chmod -R a+rX "$d"
	nginx -t -q -c "$d/nginx.conf" -p "$d" || die "nginx rejected the bench config ($d/nginx.conf)"
	bg taskset -c "$CPU_SERVER" nginx -c "$d/nginx.conf" -p "$d"
	NGX_PID=$BG_PID
	for ((i = 0; i < 100; i++)); do
		[ -n "$(nginx_requests)" ] && break
		kill -0 "$NGX_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$(nginx_requests)" ]; then
		cat "$d/logs/error.log" >&2 2>/dev/null || true
		die "nginx did not start on 127.0.0.1:$NGX_PORT"
	fi
	i=$(curl -s --max-time 3 -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$NGX_PORT/index.html")
	[ "$i" = "200 600" ] || die "nginx answers '$i' for /index.html, not '200 600' (see $d/logs/error.log)"
	NGX_WORKER=$(pgrep -P "$NGX_PID" | head -1)
	[ -n "$NGX_WORKER" ] || die "no nginx worker process under $NGX_PID"
}

# ---- the agent, its sink and its RSS sampler -------------------------------

AGENT_PID='' SINK_PID='' SINK_PORT='' SAMPLER_PID='' AGENT_TAG=''

# Bash builtins only: a fork or an exec every 0.5 s (date, sleep, $(...)) costs milliseconds
# of CPU on this VM, and figure 2 measured them as the agent's added p99 (+3.9 ms at 25 % load
# with this sampler alone and no agent, when it still forked).
rss_sampler() { # pid file: "time rss pss pss_anon" every 0.5 s while the agent lives (bounded: 20 min)
	local i k v _ rss pss anon tick
	exec {tick}<> <(:) # a pipe we also write to: read -t on it is a sleep without a fork
	for ((i = 0; i < 2400; i++)); do
		kill -0 "$1" 2>/dev/null || break
		rss=0 pss=0 anon=0
		while read -r k v _; do
			case $k in
			Rss:) rss=$v ;;
			Pss:) pss=$v ;;
			Pss_Anon:) anon=$v ;;
			esac
		done </proc/"$1"/smaps_rollup 2>/dev/null
		echo "$EPOCHREALTIME $rss $pss $anon" >>"$2"
		read -r -t 0.5 -u "$tick" _ || :
	done
	exec {tick}<&-
}

# kB of the agent's address space that maps BPF maps (the ring buffer's data pages are
# mapped twice, so they count twice in RSS, once in PSS).
bpf_mapped_kib() {
	local range rest total=0 lo hi
	while read -r range rest; do
		[[ $rest == *anon_inode:bpf-map* ]] || continue
		lo=$((16#${range%-*}))
		hi=$((16#${range#*-}))
		total=$((total + (hi - lo) / 1024))
	done </proc/"$1"/maps
	echo "$total"
}

sink_start() { # tag: starts the OTLP sink (SINK_PID), its port in SINK_PORT
	local i
	rm -f "$TMP/sink.port"
	bg "$BIN/sink" -P "$TMP/sink.port" -o "$RAW/$1.sink.json"
	SINK_PID=$BG_PID
	for ((i = 0; i < 100; i++)); do
		[ -s "$TMP/sink.port" ] && break
		sleep 0.02
	done
	SINK_PORT=$(cat "$TMP/sink.port" 2>/dev/null) || die "the OTLP sink did not start"
}

agent_start() { # tag [extra agent args] [extra environment, VAR=value ...]
	local tag=$1 extra=${2:-} i port
	local -a envs=("${@:3}")
	AGENT_TAG=$tag
	sink_start "$tag"
	port=$SINK_PORT
	# shellcheck disable=SC2086
	bg env OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$port" "${envs[@]}" "$AGENT_BIN" --listen off -q \
		$MESHTRACE_ARGS $extra 2>"$RAW/$tag.agent.log" >/dev/null
	AGENT_PID=$BG_PID
	for ((i = 0; i < 400; i++)); do
		grep -q 'meshtrace: ready' "$RAW/$tag.agent.log" 2>/dev/null && break
		if ! kill -0 "$AGENT_PID" 2>/dev/null; then
			cat "$RAW/$tag.agent.log" >&2
			die "the agent exited before it was ready (command: $MESHTRACE --listen off -q $MESHTRACE_ARGS $extra)"
		fi
		sleep 0.05
	done
	grep -q 'meshtrace: ready' "$RAW/$tag.agent.log" || die "the agent was not ready within 20 s"
	bg rss_sampler "$AGENT_PID" "$RAW/$tag.rss"
	SAMPLER_PID=$BG_PID
	status_kib "$AGENT_PID" VmRSS >"$RAW/$tag.rss_ready"
	bpf_mapped_kib "$AGENT_PID" >"$RAW/$tag.bpf_mapped"
}

agent_stop() {
	local tag=$AGENT_TAG rc=0
	status_kib "$AGENT_PID" VmHWM >"$RAW/$tag.hwm"
	stop_pid "$SAMPLER_PID" 2 || true
	forget "$SAMPLER_PID"
	stop_pid "$AGENT_PID" 20 || rc=$?
	forget "$AGENT_PID"
	[ "$rc" -eq 0 ] || log "$tag: the agent exited with status $rc"
	sed -n 's/^meshtrace: final stats //p' "$RAW/$tag.agent.log" | tail -1 >"$RAW/$tag.agent.json"
	[ -s "$RAW/$tag.agent.json" ] || log "$tag: no final stats from the agent (see $RAW/$tag.agent.log)"
	# The sink decodes what it kept once told to stop: give it time.
	stop_pid "$SINK_PID" 120 || true
	forget "$SINK_PID"
	AGENT_PID='' SINK_PID='' SAMPLER_PID=''
}

# Ids of the BPF programs the agent holds (bpftool here cannot name a program's owner).
agent_prog_ids() {
	grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{ print $2 }' | sort -un
}

# ---- figure 5: write() loop --------------------------------------------------

# Also with --capture-mode syscalls (the fallback for kernels without the sock
# tracepoints), where every write() passes the agent's syscall tracepoints.
phase_writeloop() {
	local mode tag order
	log "figure 5: write() loop to a file, agent off/on (and on with --capture-mode syscalls), $ROUNDS rounds"
	rounds_init
	while rounds_more; do
		ROUND=$((ROUND + 1))
		order="off on sys"
		[ $((ROUND % 2)) -eq 1 ] || order="sys on off"
		for mode in $order; do
			tag=write-r$ROUND-$mode
			case $mode in
			on) agent_start "$tag" ;;
			sys) agent_start "$tag" "--capture-mode syscalls" ;;
			esac
			measure_begin "$tag"
			run_load 60 "$RAW/$tag.json" "$BIN/writeloop" -f "$TMP/writeloop.dat" \
				-n 300000 -r 5 || die "writeloop failed"
			measure_end "$tag"
			if [ "$mode" != off ]; then agent_stop; fi
		done
		round_done write "write-r$ROUND-off" "write-r$ROUND-on" "write-r$ROUND-sys"
	done
	rm -f "$TMP/writeloop.dat"
}

# ---- figure 1: saturated HTTP ------------------------------------------------

phase_saturated() {
	local mode tag b a c0 c1
	log "figure 1: saturated HTTP (wrk -t1 -c$CONNS, ${SAT_S}s), agent off/on/sampled 0.1/idle, $ROUNDS rounds"
	rounds_init
	while rounds_more; do
		ROUND=$((ROUND + 1))
		# "idle": the agent with --cpu-priority idle, yielding the CPU to nginx and wrk.
		# "samp" (figure 1b, issue 15): the agent exporting 10 % of traces (traceidratio 0.1).
		for mode in $(round_order) samp idle; do
			tag=sat-r$ROUND-$mode
			c0=0 c1=0
			case $mode in
			on) agent_start "$tag" ;;
			idle) agent_start "$tag" "--cpu-priority idle" ;;
			samp) agent_start "$tag" "" OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1 ;;
			esac
			b=$(nginx_requests)
			measure_begin "$tag"
			if [ "$mode" != off ]; then c0=$(cpu_ticks "$AGENT_PID"); fi
			run_load $((SAT_S + 30)) "$RAW/$tag.wrk.txt" wrk -t1 -c"$CONNS" -d"${SAT_S}s" \
				"http://127.0.0.1:$NGX_PORT/index.html" || die "wrk failed: $(cat "$RAW/$tag.wrk.txt")"
			if [ "$mode" != off ]; then
				sleep 0.3 # what the agent still has to drain belongs to this run
				c1=$(cpu_ticks "$AGENT_PID")
			fi
			measure_end "$tag"
			a=$(nginx_requests)
			echo "{\"nginx_before\":$b,\"nginx_after\":$a,\"agent_cpu_ticks\":$((c1 - c0)),\"clk_tck\":$CLK_TCK,\"nginx_pid\":$NGX_WORKER,\"client_pid\":$LOAD_PID}" >"$RAW/$tag.meta.json"
			if [ "$mode" != off ]; then agent_stop; fi
		done
		round_done sat "sat-r$ROUND-off" "sat-r$ROUND-on" "sat-r$ROUND-samp"
	done
}

# ---- figure 9: saturated HTTPS ------------------------------------------------
#
# The same as figure 1 over TLS: wrk (OpenSSL) -> nginx (OpenSSL), both ends' SSL_* calls
# probed (two uprobe hits per call, ~tens of us each here), agent off/on alternated.

phase_tls() {
	local mode tag b a c0 c1
	log "figure 9: saturated HTTPS (wrk -t1 -c$CONNS, ${SAT_S}s), agent off/on, $ROUNDS rounds"
	rounds_init
	while rounds_more; do
		ROUND=$((ROUND + 1))
		for mode in $(round_order); do
			tag=tls-r$ROUND-$mode
			c0=0 c1=0
			if [ "$mode" = on ]; then agent_start "$tag"; fi
			b=$(nginx_requests)
			measure_begin "$tag"
			if [ "$mode" = on ]; then c0=$(cpu_ticks "$AGENT_PID"); fi
			run_load $((SAT_S + 30)) "$RAW/$tag.wrk.txt" wrk -t1 -c"$CONNS" -d"${SAT_S}s" \
				"https://127.0.0.1:$NGX_TLS_PORT/index.html" || die "wrk failed: $(cat "$RAW/$tag.wrk.txt")"
			if [ "$mode" = on ]; then
				sleep 0.3 # what the agent still has to drain belongs to this run
				c1=$(cpu_ticks "$AGENT_PID")
			fi
			measure_end "$tag"
			a=$(nginx_requests)
			echo "{\"nginx_before\":$b,\"nginx_after\":$a,\"agent_cpu_ticks\":$((c1 - c0)),\"clk_tck\":$CLK_TCK,\"nginx_pid\":$NGX_WORKER,\"client_pid\":$LOAD_PID}" >"$RAW/$tag.meta.json"
			if [ "$mode" = on ]; then agent_stop; fi
		done
		round_done tls "tls-r$ROUND-off" "tls-r$ROUND-on"
	done
}

# ---- figures 2, 3: fixed rate -------------------------------------------------

fixed_run() { # tag rate seconds [loadgen args...]
	local tag=$1 rate=$2 secs=$3 b a c0=0 c1=0
	shift 3
	b=$(nginx_requests)
	measure_begin "$tag"
	if [ -n "$AGENT_PID" ]; then c0=$(cpu_ticks "$AGENT_PID"); fi
	run_load $((secs + 60)) /dev/null "$BIN/loadgen" -p "$NGX_PORT" -r "$rate" -d "$secs" \
		-c "$CONNS" -w 1 -o "$RAW/$tag.loadgen.json" "$@" || die "loadgen failed ($tag)"
	if [ -n "$AGENT_PID" ]; then
		sleep 0.3 # what the agent still has to drain belongs to this run
		c1=$(cpu_ticks "$AGENT_PID")
	fi
	measure_end "$tag"
	a=$(nginx_requests)
	echo "{\"nginx_before\":$b,\"nginx_after\":$a,\"agent_cpu_ticks\":$((c1 - c0)),\"clk_tck\":$CLK_TCK,\"rate\":$rate,\"nginx_pid\":$NGX_WORKER,\"client_pid\":$LOAD_PID}" >"$RAW/$tag.meta.json"
}

phase_fixed() { # phase rate rounds [more modes: idle, batchN, offs]
	local phase=$1 rate=$2 extra=${4:-} mode tag
	local -a tags
	log "figures 2-4: fixed rate $rate req/s (loadgen, $CONNS conns, ${FIXED_S}s), agent off/on${extra:+ and $extra}, $3 rounds"
	rounds_init "$3"
	while rounds_more; do
		ROUND=$((ROUND + 1))
		tags=()
		for mode in $(round_order) $extra; do
			tag=$phase-r$ROUND-$mode
			tags+=("$tag")
			if [ "$mode" = offs ]; then
				bg rss_sampler $$ "$RAW/$tag.rss"
				SAMPLER_PID=$BG_PID
			elif [ "${mode#batch}" != "$mode" ]; then
				agent_start "$tag" "" OTEL_BSP_MAX_EXPORT_BATCH_SIZE="${mode#batch}"
			elif [ "$mode" = idle ]; then
				agent_start "$tag" "--cpu-priority idle"
			elif [ "$mode" = samp ]; then
				agent_start "$tag" "" OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1
			elif [ "$mode" != off ]; then agent_start "$tag"; fi
			fixed_run "$tag" "$rate" "$FIXED_S"
			if [ "$mode" = offs ]; then
				stop_pid "$SAMPLER_PID" 2 || true
				forget "$SAMPLER_PID"
			elif [ "$mode" != off ]; then agent_stop; fi
		done
		round_done "$phase" "${tags[@]}"
	done
}

# ---- figure 3, replayed: the agent's user-space work without the live noise --------
#
# One fixed-rate run at the low rate is recorded (--record); the recording is replayed
# (--replay: same pipeline, same export to a sink, no BPF, paced as recorded) 3 times,
# and the agent's CPU time is divided by the requests nginx served while recording.

# Replays recording @rec with agent binary @bin, exporting to a fresh sink; RAW/@tag.*:
# the agent's log and final stats, and {rc, cpu_s}, its whole life in CPU seconds.
replay_one() { # tag bin rec
	local port
	sink_start "$1"
	port=$SINK_PORT
	# The agent's whole life, start to exit, in CPU seconds (getrusage of the child).
	OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$port" python3 -c '
import resource, subprocess, sys
with open(sys.argv[1], "w") as log:
    rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=log).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("{\"rc\":%d,\"cpu_s\":%.3f}" % (rc, r.ru_utime + r.ru_stime))
' "$RAW/$1.agent.log" "$2" --listen off --replay "$3" >"$RAW/$1.meta.json"
	sed -n 's/^meshtrace: final stats //p' "$RAW/$1.agent.log" | tail -1 >"$RAW/$1.agent.json"
	stop_pid "$SINK_PID" 120 || true
	forget "$SINK_PID"
	SINK_PID=''
}

phase_replay() {
	local i rec=$TMP/replay.rec
	log "figure 3, replayed: record a ${FIXED_S}s run at $LOW_RATE req/s, replay it 3 times"
	agent_start replay-rec "--record $rec"
	fixed_run replay-rec "$LOW_RATE" "$FIXED_S"
	agent_stop
	for i in 1 2 3; do
		replay_one "replay-$i" "$AGENT_BIN" "$rec"
	done
	echo "{\"rec_bytes\":$(stat -c %s "$rec")}" >"$RAW/replay.rec.json"
	rm -f "$rec"
}

# BENCH_ONLY=replay: user space alone, A/B. One run at BENCH_RATE is recorded with the
# default build, then replayed by each of BENCH_REPLAY_BINS (';' between paths, '' the
# default build) in a rotating order for BENCH_ROUNDS rounds: the same events, no kernel
# noise, CPU seconds of each replay.
phase_replay_variants() {
	local -a bins
	local r i k n rec=$TMP/replay.rec
	IFS=';' read -r -a bins <<<"$REPLAY_BINS"
	n=${#bins[@]}
	for ((i = 0; i < n; i++)); do
		[ -z "${bins[$i]}" ] || [ -x "${bins[$i]}" ] || die "BENCH_REPLAY_BINS: '${bins[$i]}' is not an executable"
	done
	log "user space A/B: record ${FIXED_S}s at $RATE req/s, replay it with $n builds, $ROUNDS rounds"
	agent_start replay-rec "--record $rec"
	fixed_run replay-rec "$RATE" "$FIXED_S"
	agent_stop
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((k = 0; k < n; k++)); do
			i=$(((k + r) % n))
			replay_one "replayab-r$r-v$i" "${bins[$i]:-$AGENT_BIN}" "$rec"
		done
	done
	rm -f "$rec"
}

# ---- figure 8: per-program kernel cost -----------------------------------------

bpf_stats_run() { # tag [agent flags; "@BINARY flags": another build of the agent]
	local tag=$1 flags=${2:-} id bin=$AGENT_BIN
	if [ "${flags:0:1}" = @ ]; then
		AGENT_BIN=${flags%% *}
		AGENT_BIN=${AGENT_BIN#@}
		flags=${flags#*@"$AGENT_BIN"}
	fi
	echo 1 >/proc/sys/kernel/bpf_stats_enabled
	agent_start "$tag" "$flags"
	AGENT_BIN=$bin
	fixed_run "$tag" "$RATE" "$FIXED_S"
	: >"$RAW/$tag.progs.json"
	for id in $(agent_prog_ids "$AGENT_PID"); do
		bpftool prog show id "$id" -j >>"$RAW/$tag.progs.json" 2>/dev/null || true
		echo >>"$RAW/$tag.progs.json"
	done
	agent_stop
	echo "$BPF_STATS_ORIG" >/proc/sys/kernel/bpf_stats_enabled
}

phase_bpf_stats() {
	log "figure 8: per-program kernel cost (kernel.bpf_stats_enabled=1), fixed rate $RATE req/s"
	bpf_stats_run bpfstats
}

# BENCH_ONLY=bpf: figure 8 for each of BENCH_BPF_VARIANTS (agent flags, ';' between
# variants, '' the defaults), in a rotating order for BENCH_ROUNDS rounds.
phase_bpf_variants() {
	local -a vs
	local r i k n
	IFS=';' read -r -a vs <<<"$BPF_VARIANTS"
	n=${#vs[@]}
	log "figure 8 for $n variants of the agent's flags, fixed rate $RATE req/s, $ROUNDS rounds"
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((k = 0; k < n; k++)); do
			i=$(((k + r) % n))
			bpf_stats_run "bpf-r$r-v$i" "${vs[$i]}"
		done
	done
}

# ---- figure 6: 1,000 idle connections and 10,000 distinct paths -------------------

phase_memory() {
	log "figure 6: agent memory with $IDLE_CONNS idle keep-alive connections and $DISTINCT_PATHS distinct paths"
	agent_start mem-on
	fixed_run mem-on 5000 "$FIXED_S" -i "$IDLE_CONNS" -n "$DISTINCT_PATHS"
	agent_stop
}

# ---- figure 7: encode + gzip ------------------------------------------------------

phase_encode() {
	[ "$ENCODE_OK" = 1 ] || return 0
	log "figure 7: OTLP encode + gzip, CPU time per span (bench/encode.c)"
	run_load 60 "$RAW/encode.json" "$BIN/encode" -t 1 2>"$RAW/encode.log" ||
		log "bench/encode failed (see $RAW/encode.log)"
}

# ---- figure 7, both protocols: encode + export to a receiver ------------------------
#
# bench/encode -x: the whole export path (encode, gzip, libcurl) at 100,000 spans/s to
# bench/sink (OTLP/HTTP) and to bench/grpc_sink.py (OTLP/gRPC, python3-grpcio), CPU time
# of the exporting process per accepted span; 3 rounds, protocols alternated.

grpc_sink_start() { # tag: starts bench/grpc_sink.py (SINK_PID), its port in SINK_PORT
	local i
	rm -f "$TMP/grpc_sink.port"
	bg /usr/bin/python3 "$ROOT/bench/grpc_sink.py" "$TMP/grpc_sink.port" "$RAW/$1.sink.json"
	SINK_PID=$BG_PID
	for ((i = 0; i < 250; i++)); do
		[ -s "$TMP/grpc_sink.port" ] && break
		sleep 0.02
	done
	SINK_PORT=$(cat "$TMP/grpc_sink.port" 2>/dev/null) || SINK_PORT=''
}

phase_export() {
	local round proto
	[ "$ENCODE_OK" = 1 ] || return 0
	/usr/bin/python3 -c 'import grpc' 2>/dev/null || {
		log "figure 7, gRPC side skipped: python3-grpcio missing (sudo make deps)"
		return 0
	}
	log "figure 7: encode + export per span, OTLP/HTTP vs OTLP/gRPC (bench/encode -x, 3 rounds)"
	for round in 1 2 3; do
		for proto in http grpc; do
			if [ "$proto" = http ]; then sink_start "export-$proto-$round"; else grpc_sink_start "export-$proto-$round"; fi
			if [ -n "$SINK_PORT" ]; then
				run_load 60 "$RAW/export-$proto-$round.json" "$BIN/encode" -t 3 -p "$proto" \
					-x "http://127.0.0.1:$SINK_PORT" 2>>"$RAW/export.log" ||
					log "bench/encode -p $proto failed (see $RAW/export.log)"
			else
				log "the $proto sink did not start"
			fi
			stop_pid "$SINK_PID" 30 || true
			forget "$SINK_PID"
			SINK_PID=''
		done
	done
}

# ---- figure 10: cost of --propagate across two "nodes" ------------------------------
# The chain A -> B -> C across a veth between two network namespaces, each side with its own
# agent scoped to its cgroup (tests/integration/test_xnode.py's layout, run by pytest so that it
# is the same code as the correctness tests): CPU and wall time per request without agents,
# scoped, and scoped + --propagate, in rotated rounds.
phase_xnode() {
	log "figure 10: --propagate cost, chain A -> B -> C across a veth (test_xnode.py)"
	if ! MESHTRACE_BENCH=1 JUNIT_XML="$RAW/xnode-junit.xml" \
		"$ROOT/tests/run_integration.sh" "$ROOT/tests/integration/test_xnode.py" -q \
		>"$RAW/xnode.log" 2>&1; then
		log "figure 10 failed: see $RAW/xnode.log"
	fi
	grep '^test_cost_per_request:' "$RAW/xnode.log" >"$RAW/xnode.txt" || true
}

# ---- optional: where the agent's time goes ------------------------------------------

phase_profile() {
	command -v perf >/dev/null || { log "BENCH_PROFILE=1 but perf is missing: skipped"; return 0; }
	log "profile: perf record of the agent and of CPU$CPU_SERVER during a fixed-rate run"
	agent_start profile
	rm -f "$OUT"/perf-*.data "$OUT"/perf-*.data.old
	bg perf record -q -e cpu-clock -F 1999 -g -p "$AGENT_PID" -o "$OUT/perf-agent.data" -- sleep "$FIXED_S"
	local p1=$BG_PID
	bg perf record -q -e cpu-clock -F 1999 -g -C "$CPU_SERVER" -o "$OUT/perf-cpu$CPU_SERVER.data" -- sleep "$FIXED_S"
	local p2=$BG_PID
	fixed_run profile "$RATE" "$FIXED_S"
	wait "$p1" "$p2" 2>/dev/null || true
	forget "$p1"
	forget "$p2"
	agent_stop
	# Where the agent's own CPU goes (flat), and what CPU0 (nginx) spends where: nginx
	# itself, the kernel, the agent's BPF programs (bpf_prog_* symbols), the agent.
	perf report -i "$OUT/perf-agent.data" --stdio --no-children --sort dso,sym -g none \
		--percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 >"$OUT/perf-agent.txt" || true
	{
		perf report -i "$OUT/perf-cpu$CPU_SERVER.data" --stdio --no-children --sort comm,dso -g none \
			--percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
		echo "BPF programs on CPU$CPU_SERVER:"
		perf report -i "$OUT/perf-cpu$CPU_SERVER.data" --stdio --no-children --sort sym -g none \
			2>/dev/null | grep 'bpf_prog_' | head -20
	} >"$OUT/perf-cpu$CPU_SERVER.txt" || true
	log "profiles: $OUT/perf-agent.txt, $OUT/perf-cpu$CPU_SERVER.txt"
}

# ---- run ------------------------------------------------------------------------------

# Bad knobs stop the run at once, with the values a knob takes (not a run mislabelled).
case ${BENCH_ONLY:-} in
'' | tls | latency | bpf | profile | replay) ;;
*) die "BENCH_ONLY='$BENCH_ONLY': use tls, latency, bpf, profile or replay (or leave it unset)" ;;
esac
for m in $LOW_MODES; do
	case $m in
	offs | idle | samp) ;;
	batch*) [[ ${m#batch} =~ ^[1-9][0-9]*$ ]] || die "BENCH_LOW_MODES: '$m': batchN takes a number of spans" ;;
	*) die "BENCH_LOW_MODES: unknown mode '$m' (offs, idle, samp, batchN)" ;;
	esac
done
if [ "${BENCH_ONLY:-}" = bpf ]; then
	IFS=';' read -r -a vs <<<"$BPF_VARIANTS"
	for v in "${vs[@]}"; do
		[ "${v:0:1}" = @ ] || continue
		v=${v%% *}
		v=${v#@}
		[ -x "$v" ] || die "BENCH_BPF_VARIANTS: '@$v': not an executable (\"@/path/to/meshtrace flags\")"
	done
fi

ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null || true
wait_quiet
start_nginx
log "nginx on 127.0.0.1:$NGX_PORT (HTTPS :$NGX_TLS_PORT) (CPU$CPU_SERVER), load generators on CPU$CPU_LOAD, results in $OUT"

if [ "${BENCH_ONLY:-}" = profile ]; then
	RATE=${BENCH_RATE:?BENCH_ONLY=profile needs BENCH_RATE}
	phase_profile
	exit 0
fi
if [ "${BENCH_ONLY:-}" = bpf ]; then
	RATE=${BENCH_RATE:?BENCH_ONLY=bpf needs BENCH_RATE}
	phase_bpf_variants
	python3 "$ROOT/bench/report.py" --bpf "$RAW" "$BPF_VARIANTS" | tee "$OUT/bpf_variants.txt"
	exit 0
fi
if [ "${BENCH_ONLY:-}" = replay ]; then
	RATE=${BENCH_RATE:?BENCH_ONLY=replay needs BENCH_RATE}
	phase_replay_variants
	python3 "$ROOT/bench/report.py" --replay "$RAW" "$REPLAY_BINS" | tee "$OUT/replay_variants.txt"
	exit 0
fi
if [ "${BENCH_ONLY:-}" = latency ]; then
	# Figure 2 at the low rate only, with the scheduling modes side by side.
	if [ -z "${BENCH_RATE:-}" ]; then
		phase_saturated
		BENCH_RATE=$(python3 "$ROOT/bench/report.py" --rate "$RAW" "$LOW_FRACTION")
	fi
	phase_fixed fixedlow "$BENCH_RATE" "$ROUNDS" "$LOW_MODES"
	python3 "$ROOT/bench/report.py" --latency "$RAW" | tee "$OUT/latency_modes.txt"
	exit 0
fi
if [ "${BENCH_ONLY:-}" = tls ]; then
	phase_saturated
	phase_tls
	python3 "$ROOT/bench/report.py" --tls "$RAW" "$OUT"
	exit 0
fi
phase_writeloop
phase_saturated
phase_tls
if [ -n "${BENCH_RATE:-}" ]; then
	RATE=$BENCH_RATE
else
	RATE=$(python3 "$ROOT/bench/report.py" --rate "$RAW" "$RATE_FRACTION") ||
		die "no saturated rate measured without the agent"
fi
phase_fixed fixed "$RATE" "$ROUNDS"
LOW_RATE=0
if [ "$LOW_FRACTION" != 0 ]; then
	LOW_RATE=$(python3 "$ROOT/bench/report.py" --rate "$RAW" "$LOW_FRACTION")
	phase_fixed fixedlow "$LOW_RATE" 3 "$LOW_MODES"
fi
phase_bpf_stats
if [ "$LOW_RATE" != 0 ]; then phase_replay; fi
phase_memory
phase_encode
phase_export
phase_xnode
if [ "${BENCH_PROFILE:-0}" = 1 ]; then phase_profile; fi

cat >"$RAW/run.json" <<EOF
{"rounds":$ROUNDS,"sat_s":$SAT_S,"fixed_s":$FIXED_S,"rate":$RATE,"rate_fraction":$RATE_FRACTION,
 "low_rate":$LOW_RATE,"low_fraction":$LOW_FRACTION,
 "conns":$CONNS,"idle_conns":$IDLE_CONNS,"distinct_paths":$DISTINCT_PATHS,
 "cpu_server":$CPU_SERVER,"cpu_load":$CPU_LOAD,"quick":${BENCH_QUICK:-0},
 "kernel":"$(uname -r)","cpus":$(nproc),"git":"$GIT_AT_START","agent_sha256":"$AGENT_SHA",
 "agent_args":"--listen off -q $MESHTRACE_ARGS","date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "elapsed_s":$((SECONDS - START)),"machine_end":{$(machine_state)}}
EOF
python3 "$ROOT/bench/report.py" "$RAW" "$OUT"
