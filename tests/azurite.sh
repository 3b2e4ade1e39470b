# Sourced by the Azure tests after lib.sh: installs Azurite (the official
# Azure Storage emulator, npm package "azurite", pinned) when missing into
# a cache folder outside the tree, and starts its blob service on
# 127.0.0.1 on a free port with a data folder of its own.
#   azurite_start [https]   sets AZ (the account URL, e.g.
#                           http://127.0.0.1:PORT/devstoreaccount1) and
#                           AZ_PORT; https: a self-signed certificate for
#                           127.0.0.1, trusted through CURL_CA_BUNDLE
#   proxy_start FAULTS      a fault-injecting proxy in front of it: sets
#                           PX (account URL through the proxy), PX_COUNT
# Everything started is stopped when the test exits.
# 3.35.0: the last release whose engines field allows Node 18 (Debian 12's
# nodejs); 3.36 and later need Node 21 or 22.
AZURITE_VERSION=3.35.0
AZURITE_CACHE=${AZURITE_CACHE:-/var/cache/libvhd-azurite}
AZBLOB="python3 $TOP/tests/azblob.py"
export AZURE_STORAGE_ACCOUNT=devstoreaccount1
# Azurite's published development key (not a secret).
export AZURE_STORAGE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
need node nodejs
need npm npm
need python3 python3
AZ_PIDS=""
az_cleanup() {
	for p in $AZ_PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $AZ_PIDS; do wait "$p" 2>/dev/null || true; done
}
trap az_cleanup EXIT

azurite_install() {
	bin=$AZURITE_CACHE/node_modules/.bin/azurite-blob
	if [ -x "$bin" ] && grep -q "\"version\": \"$AZURITE_VERSION\"" \
		"$AZURITE_CACHE/node_modules/azurite/package.json" 2>/dev/null; then
		return
	fi
	mkdir -p "$AZURITE_CACHE"
	# One installer at a time (tests run side by side).
	( flock 9; [ -x "$bin" ] || npm install --prefix "$AZURITE_CACHE" \
		--no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" \
		>"$T/npm.log" 2>&1 ) 9>"$AZURITE_CACHE.lock" ||
		fail "npm install azurite@$AZURITE_VERSION failed: $(tail -5 "$T/npm.log")"
	[ -x "$bin" ] || fail "azurite not installed in $AZURITE_CACHE"
}

# wait_port PORT: until something listens there (30 s).
wait_port() {
	for _ in $(seq 1 300); do
		python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1)" \
			2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

azurite_start() {
	azurite_install
	scheme=http
	tls=""
	if [ "${1:-}" = https ]; then
		scheme=https
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
			-addext subjectAltName=IP:127.0.0.1 -keyout "$T/az.key" \
			-out "$T/az.crt" >/dev/null 2>&1 || fail "openssl req failed"
		tls="--cert $T/az.crt --key $T/az.key"
	fi
	mkdir -p "$T/azurite"
	for try in 1 2 3; do
		AZ_PORT=$($AZBLOB freeport)
		# shellcheck disable=SC2086
		"$AZURITE_CACHE/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 \
			--blobPort "$AZ_PORT" --location "$T/azurite" --disableTelemetry \
			--skipApiVersionCheck --loose --silent $tls \
			>"$T/azurite.log" 2>&1 &
		pid=$!
		AZ_PIDS="$AZ_PIDS $pid"
		wait_port "$AZ_PORT" && kill -0 "$pid" 2>/dev/null && break
		[ "$try" = 3 ] && fail "azurite did not start: $(tail -5 "$T/azurite.log")"
	done
	AZ=$scheme://127.0.0.1:$AZ_PORT/devstoreaccount1
	if [ "$scheme" = https ]; then
		export CURL_CA_BUNDLE=$T/az.crt
	fi
}

proxy_start() {
	rm -f "$T/px.port"
	PX_COUNT=$T/px.count.$RANDOM
	python3 "$TOP/tests/azblob.py" proxy "127.0.0.1:$AZ_PORT" "$T/px.port" \
		"$PX_COUNT" "${1:-}" 2>"$T/proxy.log" &
	AZ_PIDS="$AZ_PIDS $!"
	for _ in $(seq 1 100); do [ -s "$T/px.port" ] && break; sleep 0.1; done
	[ -s "$T/px.port" ] || fail "proxy did not start: $(cat "$T/proxy.log")"
	PX=http://127.0.0.1:$(cat "$T/px.port")/devstoreaccount1
	PX_PID=$!
}
# Body bytes the proxy forwarded so far.
proxy_bytes() { cut -d' ' -f1 "$PX_COUNT"; }
# Response body bytes it passed back so far.
proxy_answered() { cut -d' ' -f3 "$PX_COUNT"; }

# data_extents IMAGE: "start end" of the data extents (vhdtool map), merged.
data_extents() {
	"$VHDTOOL" map --json "$1" | python3 -c '
import json, sys
out = []
for e in json.load(sys.stdin):
    if e["data"]:
        s, n = e["offset"], e["length"]
        if out and out[-1][1] == s: out[-1][1] = s + n
        else: out.append([s, s + n])
for s, e in out: print(s, e)'
}
