# TLS (--tls, --tls-psk, --tls-certificates, --tls-verify-peer), judged by
# clients we did not write: nbdinfo and nbdcopy on nbds:// and
# nbds+unix:// URIs, qemu-img and qemu-io with tls-creds-psk and
# tls-creds-x509 objects.  The right key or certificate is served, the
# data written through TLS is what lands in the image; a wrong key, an
# unknown user, an untrusted server or client certificate and a plaintext
# client of --tls=require get nothing; STARTTLS follows proto.md (raw
# socket checks in tls.py); a stalled handshake is dropped in time.
. "$TOP/tests/lib.sh"
. "$TOP/tests/nbd/nbd-lib.bash"
need nbdcopy libnbd-bin
need qemu-img qemu-utils
need qemu-io qemu-utils
need certtool gnutls-bin
need psktool gnutls-bin

# ---- credentials -------------------------------------------------------
mkdir psk srv cli noclient rogue roguecl
psktool -u alice -p psk/keys.psk >/dev/null
psktool -u alice -p wrong.psk >/dev/null
psktool -u bob -p bob.psk >/dev/null
cmp -s psk/keys.psk wrong.psk && fail "psktool made the same key twice"

cat >ca.info <<'EOF'
cn = libvhd test CA
ca
cert_signing_key
expiration_days = 30
EOF
cat >server.info <<'EOF'
organization = libvhd tests
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
tls_www_server
encryption_key
signing_key
expiration_days = 30
EOF
cat >client.info <<'EOF'
organization = libvhd tests
cn = test client
tls_www_client
encryption_key
signing_key
expiration_days = 30
EOF
key() { certtool --generate-privkey --key-type=ecdsa --outfile "$1" 2>/dev/null; }
ca() {   # DIR: a CA key and self-signed certificate in DIR
	key "$1/ca-key.pem"
	certtool --generate-self-signed --load-privkey "$1/ca-key.pem" \
		--template ca.info --outfile "$1/ca-cert.pem" >/dev/null 2>&1
}
sign() { # CADIR TEMPLATE KEY CERT
	key "$3"
	certtool --generate-certificate --load-privkey "$3" \
		--load-ca-certificate "$1/ca-cert.pem" --load-ca-privkey "$1/ca-key.pem" \
		--template "$2" --outfile "$4" >/dev/null 2>&1
}
mkdir ca rogueca
ca ca
ca rogueca
cp ca/ca-cert.pem srv/
sign ca server.info srv/server-key.pem srv/server-cert.pem
cp ca/ca-cert.pem cli/
sign ca client.info cli/client-key.pem cli/client-cert.pem
cp ca/ca-cert.pem noclient/                    # trusts us, has no certificate
cp rogueca/ca-cert.pem rogue/                  # trusts another CA only
sign rogueca client.info rogue/client-key.pem rogue/client-cert.pem
cp ca/ca-cert.pem roguecl/                     # a client certificate we did not sign
sign rogueca client.info roguecl/client-key.pem roguecl/client-cert.pem
for f in srv/server-cert.pem cli/client-cert.pem roguecl/client-cert.pem; do
	[ -s "$f" ] || fail "certtool did not make $f"
done

mkdata data.raw 32 tls
"$VHDTOOL" create disk.vhd 32M >/dev/null
vpc_json='json:{"driver":"vpc","force_size_calc":"current_size","file":{"driver":"file","filename":"disk.vhd"}}'

# ---- bad options: one line, exit 2, before any image is opened ----------
expect_exit 2 "$VHDNBD" --tls=yes disk.vhd 2>err.txt
grep -q "off, on or require" err.txt || fail "bad --tls value: $(cat err.txt)"
expect_exit 2 "$VHDNBD" --tls=require disk.vhd 2>err.txt
expect_exit 2 "$VHDNBD" --tls-psk psk/keys.psk disk.vhd 2>err.txt
expect_exit 2 "$VHDNBD" --tls=on --tls-psk psk/keys.psk --tls-certificates srv disk.vhd 2>err.txt
expect_exit 2 "$VHDNBD" --tls=on --tls-psk psk/keys.psk --tls-verify-peer disk.vhd 2>err.txt
expect_exit 1 "$VHDNBD" --tls=on --tls-certificates noclient disk.vhd 2>err.txt
grep -q "noclient/server-cert.pem" err.txt || fail "missing certificate not named: $(cat err.txt)"
mkdir mismatch
cp srv/server-cert.pem mismatch/
cp cli/client-key.pem mismatch/server-key.pem
expect_exit 1 "$VHDNBD" --tls=on --tls-certificates mismatch disk.vhd 2>err.txt
grep -q "mismatch/server-cert.pem'.*do not match" err.txt || fail "key not matching: $(cat err.txt)"
echo "alice:nothex" >bad.psk
expect_exit 1 "$VHDNBD" --tls=on --tls-psk bad.psk disk.vhd 2>err.txt
grep -q "'bad.psk': line 1" err.txt || fail "bad PSK file not named: $(cat err.txt)"
[ "$(wc -l <err.txt)" -eq 1 ] || fail "more than one line for a bad PSK file"

# ---- PSK, --tls=require, Unix socket ----------------------------------
start_server --tls=require --tls-psk psk/keys.psk --unix "$SOCK" disk.vhd
u="nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$T/psk/keys.psk"
nbdinfo "$u" >info.txt || fail "nbdinfo with the PSK"
grep -q "with TLS" info.txt || fail "nbdinfo did not use TLS: $(head -1 info.txt)"
[ "$(nbdinfo --size "$u")" = 33554432 ] || fail "size over TLS"
nbdcopy data.raw "$u" || fail "nbdcopy into the export over TLS"
nbdcopy --connections=4 "$u" out.raw || fail "nbdcopy out of the export over TLS"
cmp data.raw out.raw || fail "data read back over TLS differ"
# One session, many requests in flight: replies from several threads at
# once must reach the client whole and in TLS records of their own.
nbdcopy --connections=1 --requests=64 --request-size=65536 "$u" one.raw ||
	fail "nbdcopy with 64 requests on one TLS connection"
cmp data.raw one.raw || fail "data read on one busy TLS connection differ"
expect_exit 1 nbdinfo "nbds+unix://alice@/?socket=$SOCK&tls-psk-file=$T/wrong.psk" >/dev/null 2>&1
expect_exit 1 nbdinfo "nbds+unix://bob@/?socket=$SOCK&tls-psk-file=$T/bob.psk" >/dev/null 2>&1
expect_exit 1 nbdinfo "nbd+unix:///?socket=$SOCK" >/dev/null 2>&1
"$PY" "$TOP/tests/nbd/tls.py" require "$SOCK"
"$PY" "$TOP/tests/nbd/tls.py" inject "$SOCK"
"$PY" "$TOP/tests/nbd/tls.py" stall "$SOCK" nbdinfo --size "$u"
[ "$(nbdinfo --size "$u")" = 33554432 ] || fail "not served after the refused clients"
stop_server
qemu-img compare -q -f raw data.raw "$vpc_json" || fail "image differs from what was written over TLS"

# ---- PSK with qemu over TCP --------------------------------------------
port=$(free_port)
start_server --tls=require --tls-psk psk/keys.psk --bind 127.0.0.1 --port "$port" disk.vhd
psk_obj="tls-creds-psk,id=tls0,endpoint=client,dir=$T/psk,username=alice"
nbd_json() { echo "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":\"inet\",\"host\":\"127.0.0.1\",\"port\":\"$port\"},\"export\":\"disk\",\"tls-creds\":\"tls0\"}}"; }
qemu-img compare -q --object "$psk_obj" -f raw data.raw "$(nbd_json)" ||
	fail "qemu-img compare over TLS (PSK)"
qemu-io --object "$psk_obj" -c "write -P 0x5a 1M 64k" "$(nbd_json)" >qio.out ||
	{ cat qio.out; fail "qemu-io write over TLS (PSK)"; }
qemu-io --object "$psk_obj" -c "read -P 0x5a 1M 64k" "$(nbd_json)" >qio.out &&
	! grep -qi "fail\|error" qio.out || { cat qio.out; fail "qemu-io read back over TLS (PSK)"; }
expect_exit 1 qemu-img info --object "tls-creds-psk,id=tls0,endpoint=client,dir=$T/psk,username=bob" \
	"$(nbd_json)" >/dev/null 2>&1
stop_server

# ---- X.509, --tls=require, TCP -----------------------------------------
port=$(free_port)
start_server --tls=require --tls-certificates srv --bind 127.0.0.1 --port "$port" disk.vhd
x="nbds://localhost:$port/disk?tls-certificates=$T/cli"
nbdinfo "$x" | grep -q "with TLS" || fail "nbdinfo with certificates"
nbdcopy --connections=4 "$x" out.raw || fail "nbdcopy over TLS (X.509)"
cmp -s -n 1048576 data.raw out.raw || fail "start of the export changed"
x509_obj="tls-creds-x509,id=tls0,endpoint=client,dir=$T/cli"
qemu-io --object "$x509_obj" -c "read -P 0x5a 1M 64k" -c "write -P 0x6b 3M 128k" \
	"$(nbd_json)" >qio.out && ! grep -qi "fail\|error" qio.out ||
	{ cat qio.out; fail "qemu-io over TLS (X.509)"; }
qemu-img convert --object "$x509_obj" -O raw "$(nbd_json)" conv.raw ||
	fail "qemu-img convert over TLS (X.509)"
qemu-img compare -q --object "$x509_obj" -f raw conv.raw "$(nbd_json)" ||
	fail "qemu-img compare over TLS (X.509)"
# A client that does not trust our certificate refuses it.
expect_exit 1 nbdinfo "nbds://localhost:$port/disk?tls-certificates=$T/rogue" >/dev/null 2>&1
expect_exit 1 qemu-img info --object "tls-creds-x509,id=tls0,endpoint=client,dir=$T/rogue" \
	"$(nbd_json)" >/dev/null 2>&1
expect_exit 1 nbdinfo "nbd://localhost:$port/disk" >/dev/null 2>&1
stop_server
qemu-io -c "read -P 0x6b 3M 128k" "$vpc_json" >qio.out && ! grep -qi "fail\|error" qio.out ||
	{ cat qio.out; fail "write over TLS (X.509) not in the image"; }

# ---- the start-up warning ----------------------------------------------
# Read-write on every address (in a network namespace of our own): quiet
# with --tls=require, a warning with --tls=on, which serves plaintext too.
if $PRIVATE_NET true 2>/dev/null; then
	for mode in require on; do
		rm -f warn.pid
		$PRIVATE_NET "$VHDNBD" --tls=$mode --tls-psk psk/keys.psk \
			--port "$(free_port)" --pid-file warn.pid disk.vhd 2>warn.txt &
		p=$!
		for _ in $(seq 100); do [ -s warn.pid ] && break; sleep 0.1; done
		[ -s warn.pid ] || fail "--tls=$mode on every address did not start: $(cat warn.txt)"
		kill -TERM $p; wait $p || true
		if [ $mode = require ]; then
			grep -q warning warn.txt && fail "warning with --tls=require: $(cat warn.txt)"
		else
			grep -q "warning: serving read-write without TLS" warn.txt ||
				fail "no warning with --tls=on: $(cat warn.txt)"
		fi
	done
else
	fail "$PRIVATE_NET (a network namespace) not available for the warning test"
fi

# ---- client certificates: --tls=on --tls-verify-peer -------------------
port=$(free_port)
start_server --tls=on --tls-certificates srv --tls-verify-peer --bind 127.0.0.1 --port "$port" disk.vhd
nbdinfo "nbds://localhost:$port/disk?tls-certificates=$T/cli" | grep -q "with TLS" ||
	fail "client with a certificate the CA signed"
expect_exit 1 nbdinfo "nbds://localhost:$port/disk?tls-certificates=$T/noclient" >/dev/null 2>&1
expect_exit 1 nbdinfo "nbds://localhost:$port/disk?tls-certificates=$T/roguecl" >/dev/null 2>&1
# --tls=on also serves plaintext clients (SELECTIVETLS, as in nbdkit).
nbdinfo "nbd://localhost:$port/disk" | grep -q "without TLS" || fail "--tls=on refused plaintext"
"$PY" "$TOP/tests/nbd/tls.py" starttls 127.0.0.1 "$port" "$T/cli"
stop_server

# ---- socket activation with TLS ----------------------------------------
"$PY" - "$VHDNBD" "$T/act.sock" "$T/nbd.pid" disk.vhd "$T/psk/keys.psk" <<'PY' 2>>"$T/nbd.log" &
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[2]); s.listen(8)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], [sys.argv[1], "--pid-file", sys.argv[3], "--tls=require",
                       "--tls-psk", sys.argv[5], sys.argv[4]])
PY
SERVER_PID=$!
for _ in $(seq 50); do [ -s "$T/nbd.pid" ] && break; sleep 0.1; done
[ -s "$T/nbd.pid" ] || fail "socket-activated server did not start"
[ "$(nbdinfo --size "nbds+unix://alice@/?socket=$T/act.sock&tls-psk-file=$T/psk/keys.psk")" = 33554432 ] ||
	fail "socket activation with TLS"
expect_exit 1 nbdinfo "nbd+unix:///?socket=$T/act.sock" >/dev/null 2>&1
stop_server
