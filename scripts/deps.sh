#!/bin/sh
# Installs the Debian packages a make target needs, and only those that are
# missing. Usage: scripts/deps.sh GROUP...  (groups: run test check fuzz format bench bench-load bench-run)
# Each requirement is "cmd:NAME:PACKAGE" (a command on PATH) or
# "pc:MODULE:PACKAGE" (a pkg-config module) or "h:HEADER:PACKAGE" (a header
# file, for libraries that ship no .pc).  Prints what it installs; fails
# with the apt-get command to run when it cannot install (not root).
set -eu

reqs=""
# What building faultline needs: its libraries and pkg-config.
libs="cmd:pkg-config:pkg-config pc:libuv:libuv1-dev pc:liburing:liburing-dev"
libs="$libs pc:libcjson:libcjson-dev h:/usr/include/http_parser.h:libhttp-parser-dev"
for group in "$@"; do
	case "$group" in
	run) reqs="$reqs $libs" ;;
	test | check)
		reqs="$reqs $libs cmd:prove:perl"
		reqs="$reqs h:/usr/lib/python3/dist-packages/jsonschema/__init__.py:python3-jsonschema"
		;;
	format) reqs="$reqs cmd:clang-format:clang-format" ;;
	fuzz) reqs="$reqs cmd:clang:clang"
		reqs="$reqs h:/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a:libclang-rt-14-dev"
		;;
	bench) reqs="$reqs cmd:valgrind:valgrind" ;;
	bench-run) reqs="$reqs cmd:python3:python3" ;;
	bench-load) reqs="$reqs cmd:wrk:wrk h:/usr/sbin/nginx:nginx-light" ;;
	*) echo "deps: unknown group '$group'" >&2; exit 2 ;;
	esac
done

missing=""
for r in $reqs; do
	kind=${r%%:*}; rest=${r#*:}; name=${rest%%:*}; pkg=${rest#*:}
	case "$kind" in
	cmd) command -v "$name" >/dev/null 2>&1 && continue ;;
	pc) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$name" && continue ;;
	h) [ -f "$name" ] && continue ;;
	esac
	case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root: apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# An empty package list (fresh machine) makes apt-get install fail; update first.
if ! apt-get install -y --no-install-recommends $missing </dev/null; then
	apt-get update </dev/null
	apt-get install -y --no-install-recommends $missing </dev/null
fi
