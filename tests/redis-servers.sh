#!/bin/sh
# Start or stop the Redis servers the Redis tests and the `remote`
# benchmark use: one standalone server and a three-node Redis Cluster, on
# loopback, each on its own free port, in a temporary directory (no
# persistence: they are scratch servers).
#
#   eval "$(tests/redis-servers.sh start)"   # exports FL_REDIS_URL,
#                                            # FL_REDIS_CLUSTER_URL and
#                                            # FL_REDIS_DIR
#   build/tests/test_redis                   # or make test, bench remote
#   tests/redis-servers.sh stop "$FL_REDIS_DIR"
#
# start prints the export lines on stdout (messages go to stderr) and
# exits non-zero, leaving nothing running, if a server does not come up.
# stop shuts down every server started in DIR (by the pids it recorded)
# and removes DIR.  Needs redis-server and redis-cli (Debian:
# redis-server, redis-tools).
set -u

die() {
	echo "redis-servers: $*" >&2
	exit 1
}

# A port nothing listens on: random in 20000-32767, below the kernel's
# ephemeral ports (no outgoing connection holds one), checked by a ping.
free_port() {
	while :; do
		p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12768))
		redis-cli -p "$p" ping >/dev/null 2>&1 || { echo "$p"; return; }
	done
}

wait_ping() { # PORT: up to 20 s
	i=0
	while [ $i -lt 200 ]; do
		[ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Start one server in DIR/NAME on a free port (a few tries if another
# process takes the port first); prints the port.  Extra args: config.
start_server() {
	dir=$1 name=$2
	shift 2
	mkdir -p "$dir/$name" || return 1
	tries=0
	while [ $tries -lt 5 ]; do
		port=$(free_port)
		redis-server --port "$port" --bind 127.0.0.1 \
			--dir "$dir/$name" --daemonize yes \
			--pidfile "$dir/$name/redis.pid" \
			--logfile "$dir/$name/redis.log" \
			--save "" --appendonly no "$@" >/dev/null 2>&1
		if wait_ping "$port"; then
			echo "$port" >"$dir/$name/port"
			echo "$port"
			return 0
		fi
		[ -f "$dir/$name/redis.pid" ] &&
			kill "$(cat "$dir/$name/redis.pid")" 2>/dev/null
		tries=$((tries + 1))
	done
	return 1
}

stop_all() { # DIR
	for pidfile in "$1"/*/redis.pid; do
		[ -f "$pidfile" ] || continue
		d=$(dirname "$pidfile")
		pid=$(cat "$pidfile")
		port=$(cat "$d/port" 2>/dev/null)
		[ -n "$port" ] && redis-cli -p "$port" shutdown nosave \
			>/dev/null 2>&1
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$pid" 2>/dev/null
	done
	rm -rf "$1"
}

cluster_ok() { # PORT...: every node says cluster_state:ok
	for p in "$@"; do
		redis-cli -p "$p" cluster info 2>/dev/null |
			grep -q '^cluster_state:ok' || return 1
	done
}

start() {
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
		die "redis-server and redis-cli are needed (apt-get install redis-server redis-tools)"
	dir=$(mktemp -d "${TMPDIR:-/tmp}/faultline-redis.XXXXXX") ||
		die "cannot make a temporary directory"
	standalone=$(start_server "$dir" standalone) || {
		stop_all "$dir"
		die "the standalone server did not start"
	}
	ports=""
	for n in 1 2 3; do
		p=$(start_server "$dir" "node$n" --cluster-enabled yes \
			--cluster-config-file nodes.conf \
			--cluster-node-timeout 5000) || {
			stop_all "$dir"
			die "cluster node $n did not start"
		}
		ports="$ports $p"
	done
	addrs=$(for p in $ports; do printf '127.0.0.1:%s ' "$p"; done)
	# shellcheck disable=SC2086
	redis-cli --cluster create $addrs --cluster-replicas 0 --cluster-yes \
		>"$dir/cluster-create.log" 2>&1 || {
		cat "$dir/cluster-create.log" >&2
		stop_all "$dir"
		die "redis-cli --cluster create failed"
	}
	i=0
	# shellcheck disable=SC2086
	until cluster_ok $ports; do
		i=$((i + 1))
		[ $i -lt 300 ] || {
			stop_all "$dir"
			die "the cluster did not reach cluster_state:ok"
		}
		sleep 0.1
	done
	seeds=$(echo $addrs | tr ' ' ',')
	echo "export FL_REDIS_DIR='$dir'"
	echo "export FL_REDIS_URL='redis://127.0.0.1:$standalone'"
	echo "export FL_REDIS_CLUSTER_URL='redis+cluster://$seeds'"
	echo "redis-servers: standalone on $standalone, cluster on$ports ($dir)" >&2
}

case "${1:-}" in
start) start ;;
stop)
	[ -n "${2:-}" ] && [ -d "$2" ] || die "usage: $0 stop DIR"
	case "$2" in */faultline-redis.*) ;; *) die "not a server directory: $2" ;; esac
	stop_all "$2"
	;;
*) die "usage: $0 start | stop DIR" ;;
esac
