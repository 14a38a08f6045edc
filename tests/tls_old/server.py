#!/usr/bin/env python3
"""A TLS server for the below-minimum TLS probes: it serves the old versions and weak suites a
conforming server must refuse, so the raw-ClientHello probes have something to catch.

    python3 server.py --cert CERT --key KEY [--versions tls1,tls1_1,tls1_2] [--ciphers STRING]

It binds 127.0.0.1 on a free port and prints `LISTENING <port>` (flushed). Each connection gets a
TLS handshake in its own thread (a failed handshake is the probe's business, so it is ignored);
after one, the server reads up to 4 KiB and answers a WebSocket upgrade with a 101 (and then
silence), anything else with `404 Not Found`.

Before listening it checks, with an in-memory handshake against itself, that this machine's
OpenSSL can really negotiate each requested version under the cipher string: a build without
SSL 3.0, RC4 or 3DES must not make a test pass for the wrong reason. When it cannot, it prints
`UNSUPPORTED <what>` and exits 3. Standard library only.
"""

import argparse
import base64
import hashlib
import re
import socket
import ssl
import sys
import tempfile
import threading
import warnings

# The per-version OP_NO_* options are deprecated, but they are the only way to leave a gap
# between the minimum and maximum version (tls1 and tls1_2 without tls1_1).
warnings.simplefilter("ignore", DeprecationWarning)

# Per version: its TLSVersion, the option that switches it off, whether this OpenSSL has it,
# and the name SSLObject.version() reports for it.
VERSIONS = {
    "ssl3": (ssl.TLSVersion.SSLv3, "OP_NO_SSLv3", ssl.HAS_SSLv3, "SSLv3"),
    "tls1": (ssl.TLSVersion.TLSv1, "OP_NO_TLSv1", ssl.HAS_TLSv1, "TLSv1"),
    "tls1_1": (ssl.TLSVersion.TLSv1_1, "OP_NO_TLSv1_1", ssl.HAS_TLSv1_1, "TLSv1.1"),
    "tls1_2": (ssl.TLSVersion.TLSv1_2, "OP_NO_TLSv1_2", ssl.HAS_TLSv1_2, "TLSv1.2"),
    "tls1_3": (ssl.TLSVersion.TLSv1_3, "OP_NO_TLSv1_3", ssl.HAS_TLSv1_3, "TLSv1.3"),
}
ORDER = list(VERSIONS)

# The ffdhe2048 group of RFC 7919. Python's ssl module sets no DH parameters by itself, and without
# them OpenSSL offers no DHE or anonymous DH (ADH) suite at all.
FFDHE2048 = """-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

RESPONSE = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def reason(err):
    # SSLError has `reason` only when OpenSSL gave one ("No cipher can be selected" has none).
    return getattr(err, "reason", None) or (err.args[-1] if err.args else str(err))


def unsupported(what):
    print(f"UNSUPPORTED {what}", flush=True)
    sys.exit(3)


def cipher_string(ciphers):
    # OpenSSL 3 refuses TLS 1.0/1.1 (SHA-1 signatures) and weak suites above security level 0.
    return f"{ciphers}:@SECLEVEL=0"


def limit_versions(ctx, names):
    """Offer exactly `names`: the lowest as minimum, the highest as maximum, gaps switched off."""
    indices = sorted(ORDER.index(name) for name in names)
    low, high = ORDER[indices[0]], ORDER[indices[-1]]
    ctx.minimum_version = VERSIONS[low][0]
    ctx.maximum_version = VERSIONS[high][0]
    for name in ORDER[indices[0] : indices[-1] + 1]:
        option = getattr(ssl, VERSIONS[name][1], 0)
        if name in names:
            # Python and distributions switch the old versions off by option, too.
            ctx.options &= ~option
        else:
            ctx.options |= option


def server_context(args, versions):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # OpenSSL skips the parts of a cipher string it has no cipher for as long as one part
    # matches, so "RC4:AES128-SHA" would quietly serve no RC4: each part must match on its own.
    for part in re.split(r"[:, ]+", args.ciphers):
        if part and part[0] not in "!-+@":
            try:
                ctx.set_ciphers(cipher_string(part))
            except ssl.SSLError as err:
                unsupported(f"cipher string {part!r}: {reason(err)}")
    try:
        ctx.set_ciphers(cipher_string(args.ciphers))
    except ssl.SSLError as err:
        unsupported(f"cipher string {args.ciphers!r}: {reason(err)}")
    try:
        limit_versions(ctx, versions)
    except (ValueError, ssl.SSLError) as err:
        unsupported(f"versions {','.join(versions)}: {err}")
    ctx.load_cert_chain(args.cert, args.key)
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as params:
        params.write(FFDHE2048)
        params.flush()
        ctx.load_dh_params(params.name)
    return ctx


def self_check(server_ctx, args, version):
    """Handshakes with `server_ctx` in memory as a client limited to `version` and the ciphers."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    try:
        client.set_ciphers(cipher_string(args.ciphers))
        limit_versions(client, [version])
    except (ValueError, ssl.SSLError) as err:
        return f"{version} with {args.ciphers!r}: {err}"
    to_client, to_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    ends = [
        client.wrap_bio(to_client, to_server, server_hostname="localhost"),
        server_ctx.wrap_bio(to_server, to_client, server_side=True),
    ]
    done = [False, False]
    for _ in range(20):
        for i, end in enumerate(ends):
            if done[i]:
                continue
            try:
                end.do_handshake()
                done[i] = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except ssl.SSLError as err:
                return f"{version} with {args.ciphers!r}: {reason(err)}"
        if all(done):
            got = ends[0].version()
            if got != VERSIONS[version][3]:
                return f"{version} with {args.ciphers!r}: negotiated {got} instead"
            return None
    return f"{version} with {args.ciphers!r}: the handshake did not finish"


def upgrade(request):
    """A 101 for a WebSocket upgrade request (RFC 6455 4.2.2), else None."""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            digest = hashlib.sha1(value.strip() + WEBSOCKET_GUID).digest()
            accept = base64.b64encode(digest)
            return (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
    return None


def serve(conn, ctx):
    conn.settimeout(10)
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            request = tls.recv(4096)
            switching = upgrade(request)
            if switching is None:
                tls.sendall(RESPONSE)
            else:
                # Upgraded, then silent until the client leaves: only the handshake matters.
                tls.sendall(switching)
                while tls.recv(4096):
                    pass
    except (OSError, ssl.SSLError):
        pass  # a refused or aborted handshake is what the probes provoke
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--versions", default="tls1,tls1_1,tls1_2")
    parser.add_argument("--ciphers", default="DEFAULT")
    args = parser.parse_args()

    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    for name in versions:
        if name not in VERSIONS:
            parser.error(f"unknown version {name!r}; known: {', '.join(ORDER)}")
        if not VERSIONS[name][2]:
            unsupported(f"{name}: this OpenSSL ({ssl.OPENSSL_VERSION}) is built without it")
    if not versions:
        parser.error("--versions names no version")

    ctx = server_context(args, versions)
    for name in versions:
        problem = self_check(ctx, args, name)
        if problem:
            unsupported(problem)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(f"LISTENING {listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, ctx), daemon=True).start()


if __name__ == "__main__":
    main()
