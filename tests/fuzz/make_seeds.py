#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/ (committed; rerun to redo).

Real clients where there are real clients: DNS queries as dig, kdig, drill
and nsupdate send them, HTTP requests as curl, ddclient and inadyn send them,
captured on a loopback port that answers just enough for the client to be
done. Hand-made inputs for what no client sends (malformed packets, pipelined
and chunked requests, hostile JSON). Configs and zone files come from the
repository.

Usage: tests/fuzz/make_seeds.py   (Debian: bind9-dnsutils knot-dnsutils
ldnsutils curl ddclient inadyn; clients that are missing are skipped)
"""
import base64
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    if isinstance(data, str):
        data = data.encode()
    path = os.path.join(CORPUS, target, name)
    with open(path, "wb") as f:
        f.write(data)


def have(program):
    return shutil.which(program) is not None


# --- DNS ------------------------------------------------------------------


class DnsCapture:
    """A UDP and TCP listener on one loopback port: keeps the first message
    of each exchange and answers it with the same bytes, QR set."""

    def __init__(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(4)
        self.messages = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_udp, daemon=True).start()
        threading.Thread(target=self.serve_tcp, daemon=True).start()

    @staticmethod
    def reply(message):
        return message[:2] + bytes([message[2] | 0x80]) + message[3:]

    def keep(self, message):
        with self.lock:
            self.messages.append(message)

    def serve_udp(self):
        while True:
            data, peer = self.udp.recvfrom(65535)
            self.keep(data)
            self.udp.sendto(self.reply(data), peer)

    def serve_tcp(self):
        while True:
            conn, _ = self.tcp.accept()
            with conn:
                conn.settimeout(2)
                try:
                    size = struct.unpack("!H", recv_exact(conn, 2))[0]
                    data = recv_exact(conn, size)
                except (OSError, ValueError):
                    continue
                self.keep(data)
                answer = self.reply(data)
                try:
                    conn.sendall(struct.pack("!H", len(answer)) + answer)
                except OSError:
                    pass

    def run(self, argv, stdin=None):
        with self.lock:
            before = len(self.messages)
        subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=10, check=False)
        with self.lock:
            return self.messages[before] if len(self.messages) > before else None


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ValueError("short read")
        data += chunk
    return data


def name_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("latin-1")
    return out + b"\0"


def query(name, qtype=1, qclass=1, flags=0x0100, qd=1, an=0, ns=0, ar=0, extra=b"",
          qid=0x1234):
    header = struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)
    return header + name_wire(name) + struct.pack("!HH", qtype, qclass) + extra


def opt(payload=1232, version=0, do=False, options=b"", owner=b"\0"):
    ttl = (version << 16) | (0x8000 if do else 0)
    return owner + struct.pack("!HHIH", 41, payload, ttl, len(options)) + options


def dns_seeds():
    capture = DnsCapture()
    p = str(capture.port)
    real = []
    if have("dig"):
        dig = ["dig", "@127.0.0.1", "-p", p, "+tries=1", "+time=2"]
        for args in [
            ["host.test.example", "A"],
            ["host.test.example", "AAAA", "+dnssec"],
            ["test.example", "SOA", "+norec"],
            ["test.example", "ANY"],
            ["x.wild.test.example", "A", "+nocookie"],
            ["cname1.test.example", "A", "+noedns"],
            ["www.sub.test.example", "A"],
            ["sub.test.example", "DS", "+cd"],
            ["nothere.test.example", "A"],
            ["b.c.test.example", "TXT"],
            ["big.test.example", "TXT", "+bufsize=512"],
            ["_sip._udp.test.example", "SRV"],
            ["MiXeD.TEST.Example", "A"],
            ["www.example.org", "A"],
            ["test.example", "MX", "+nsid", "+subnet=192.0.2.0/24"],
            ["host.test.example", "A", "+edns=1"],
            ["version.bind", "TXT", "CH"],
            ["test.example", "NS", "+tcp"],
            ["test.example", "AXFR"],
            ["test.example", "IXFR=2024010100"],
            ["www.child.test.example", "A", "+bufsize=4096"],
            ["unknown.test.example", "TYPE65280"],
            [".", "NS", "+norec"],
        ]:
            real.append(("dig_" + "_".join(a.strip("+.=/") for a in args if a), dig + args))
    if have("kdig"):
        kdig = ["kdig", "@127.0.0.1", "-p", p, "+retry=0", "+time=2"]
        for args in [["host.test.example", "A"], ["loop1.test.example", "A", "+dnssec"],
                     ["many.test.example", "A", "+tcp"], ["ns.sub.test.example", "AAAA", "+nsid"]]:
            real.append(("kdig_" + "_".join(a.strip("+.") for a in args), kdig + args))
    if have("drill"):
        drill = ["drill", "-p", p]
        for args in [["host.test.example", "@127.0.0.1", "A"],
                     ["-D", "towild.test.example", "@127.0.0.1", "A"],
                     ["-t", "tosub.test.example", "@127.0.0.1", "A"]]:
            real.append(("drill_" + "_".join(a.strip("-.@") for a in args), drill + args))
    for name, argv in real:
        message = capture.run(argv)
        if message:
            write("query", name, message)
        else:
            print("no query from", " ".join(argv), file=sys.stderr)
    if have("nsupdate"):
        script = ("server 127.0.0.1 %s\nzone test.example\n"
                  "prereq yxdomain host.test.example\n"
                  "update delete x.test.example A\n"
                  "update add x.test.example 60 A 192.0.2.99\nsend\n" % p)
        for name, extra in [("nsupdate", []),
                            ("nsupdate_tsig",
                             ["-y", "hmac-sha256:update-key:" +
                              base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()])]:
            message = capture.run(["nsupdate"] + extra, stdin=script.encode())
            if message:
                write("query", name, message)

    # What no client sends.
    long_name = ".".join(["a" * 63] * 3 + ["b" * 61])  # 255 bytes in wire form
    hand = {
        "header_only": struct.pack("!HHHHHH", 1, 0, 0, 0, 0, 0),
        "qdcount_2": query("host.test.example", qd=2),
        "compressed_qname": struct.pack("!HHHHHH", 2, 0x100, 1, 0, 0, 0) + b"\xc0\x0c" +
                            struct.pack("!HH", 1, 1),
        "truncated_question": query("host.test.example")[:-3],
        "response": query("host.test.example", flags=0x8100),
        "answer_count_1": query("host.test.example", an=1),
        "two_opts": query("host.test.example", ar=2, extra=opt() + opt()),
        "opt_not_root": query("host.test.example", ar=1, extra=opt(owner=name_wire("x"))),
        "opt_bad_options": query("host.test.example", ar=1,
                                 extra=opt(options=struct.pack("!HH", 10, 8) + b"abc")),
        "opt_cookie": query("host.test.example", ar=1,
                            extra=opt(options=struct.pack("!HH", 10, 8) + b"clientck")),
        "opt_payload_0": query("big.test.example", qtype=16, ar=1, extra=opt(payload=0)),
        "opt_payload_max": query("big.test.example", qtype=16, ar=1, extra=opt(payload=65535)),
        "opt_version_3": query("host.test.example", ar=1, extra=opt(version=3, do=True)),
        "longest_name": query(long_name),
        "label_0x40": struct.pack("!HHHHHH", 3, 0x100, 1, 0, 0, 0) + b"\x41" + b"x" * 65 + b"\0" +
                      struct.pack("!HH", 1, 1),
        "qtype_opt": query("test.example", qtype=41),
        "qtype_tsig": query("test.example", qtype=250),
        "qtype_maila": query("test.example", qtype=254),
        "ixfr_with_soa": query("test.example", qtype=251, ns=1, extra=name_wire("test.example") +
                               struct.pack("!HHIH", 6, 1, 0, 22) + b"\0\0" + b"\0" * 20),
        "notify": query("test.example", qtype=6, flags=0x2000 | 0x0400),
        "opcode_15": query("test.example", flags=0x7800),
        "class_any": query("host.test.example", qclass=255),
        "root_any_tcp_size": query(".", qtype=255),
        "many_a_udp": query("many.test.example"),
        "cname_chain": query("c0.test.example", ar=1, extra=opt(payload=4096)),
        "binary_owner": struct.pack("!HHHHHH", 4, 0x100, 1, 0, 0, 0) + b"\x02\x00\xff" +
                        name_wire("test.example") + struct.pack("!HH", 16, 1),
        "tsig_in_additional": query("host.test.example", ar=1, extra=name_wire("key") +
                                    struct.pack("!HHIH", 250, 255, 0, 0)),
    }
    for name, data in hand.items():
        write("query", name, data)
    update_seeds(capture, p)
    tsig_seeds(capture, p)


SECRET_B64 = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()

NSUPDATE_SCRIPTS = {
    "add": "update add x.test.example 60 A 192.0.2.99\n",
    "add_aaaa_txt": ("update add x.test.example 60 AAAA 2001:db8::99\n"
                     "update add x.test.example 60 TXT \"hello\" \"world\"\n"),
    "delete_rrset": "update delete host.test.example A\n",
    "delete_name": "update delete host.test.example\n",
    "delete_rr": "update delete host.test.example A 192.0.2.10\n",
    "prereq_nxdomain": "prereq nxdomain new.test.example\nupdate add new.test.example 60 A 192.0.2.1\n",
    "prereq_yxrrset_value": ("prereq yxrrset host.test.example A 192.0.2.10\n"
                             "update delete host.test.example A\n"
                             "update add host.test.example 60 A 192.0.2.11\n"),
    "prereq_nxrrset": "prereq nxrrset host.test.example MX\nupdate add host.test.example 60 MX 10 mail\n",
    "cname": "update add alias2.test.example 60 CNAME host.test.example.\n",
    "soa": ("update add test.example 3600 SOA ns1.test.example. hostmaster.test.example. "
            "2030010101 3600 900 1209600 300\n"),
    "apex_ns": "update delete test.example NS\nupdate add test.example 3600 NS ns9.test.example.\n",
    "dyn_host": "update delete home.dyn.test.example AAAA\nupdate add home.dyn.test.example 60 AAAA 2001:db8::7\n",
    "outside_zone": "update add www.example.org 60 A 192.0.2.1\n",
    "wildcard": "update add *.w.test.example 60 A 192.0.2.5\n",
}


def update_seeds(capture, p):
    """UPDATE messages as nsupdate sends them: unsigned for rfc2136, signed
    for tsig, and both (behind the first byte) for dns_control."""
    if not have("nsupdate"):
        return
    for name, body in NSUPDATE_SCRIPTS.items():
        script = "server 127.0.0.1 %s\nzone test.example\n%ssend\n" % (p, body)
        message = capture.run(["nsupdate"], stdin=script.encode())
        if not message:
            print("no UPDATE for", name, file=sys.stderr)
            continue
        write("rfc2136", name, message)
        write("dns_control", "update_" + name, bytes([0b0010]) + message)  # signed: update-key
    for name, key in [("sha256", "hmac-sha256:update-key:"), ("sha1", "hmac-sha1:xfr-key:"),
                      ("sha512", "hmac-sha512:big.keys:")]:
        script = ("server 127.0.0.1 %s\nzone test.example\n%ssend\n"
                  % (p, NSUPDATE_SCRIPTS["add"]))
        message = capture.run(["nsupdate", "-y", key + SECRET_B64], stdin=script.encode())
        if message:
            write("tsig", "nsupdate_" + name, message)
            write("rfc2136", "signed_" + name, message)


def tsig_seeds(capture, p):
    """Signed queries and transfer requests as dig and kdig send them."""
    signed = []
    if have("dig"):
        dig = ["dig", "@127.0.0.1", "-p", p, "+tries=1", "+time=2"]
        signed += [
            ("dig_soa_sha256", dig + ["-y", "hmac-sha256:update-key:" + SECRET_B64, "test.example", "SOA"]),
            ("dig_axfr_sha1", dig + ["-y", "hmac-sha1:xfr-key:" + SECRET_B64, "test.example", "AXFR"]),
            ("dig_ixfr_sha512", dig + ["-y", "hmac-sha512:big.keys:" + SECRET_B64,
                                       "test.example", "IXFR=2024010101"]),
            ("dig_unknown_key", dig + ["-y", "hmac-sha256:nobody:" + SECRET_B64, "host.test.example"]),
        ]
    if have("kdig"):
        signed.append(("kdig_axfr_sha256", ["kdig", "@127.0.0.1", "-p", p, "+retry=0", "+time=2",
                                            "-y", "hmac-sha256:update-key:" + SECRET_B64,
                                            "test.example", "AXFR"]))
    for name, argv in signed:
        message = capture.run(argv)
        if message:
            write("tsig", name, message)
        else:
            print("no query from", " ".join(argv[:1]), file=sys.stderr)
    # Unsigned queries and transfers for the control path; the fuzzer signs
    # them itself (first byte), at the time it runs.
    plain = {
        "axfr_tcp_xfr_key": (0b0101, query("test.example", qtype=252, flags=0)),
        "axfr_tcp_loopback": (0b1001, query("test.example", qtype=252, flags=0)),
        "axfr_tcp_refused": (0b0001, query("test.example", qtype=252, flags=0)),
        "axfr_udp": (0b1000, query("test.example", qtype=252, flags=0)),
        "ixfr_tcp": (0b1001, query("test.example", qtype=251, flags=0, ns=1,
                                   extra=name_wire("test.example") +
                                   struct.pack("!HHIH", 6, 1, 0, 22) + b"\0\0" +
                                   struct.pack("!IIIII", 2024010101, 0, 0, 0, 0))),
        "ixfr_udp_current": (0b11000, query("test.example", qtype=251, flags=0, ns=1,
                                            extra=name_wire("test.example") +
                                            struct.pack("!HHIH", 6, 1, 0, 22) + b"\0\0" +
                                            struct.pack("!IIIII", 2024010103, 0, 0, 0, 0))),
        "signed_soa_udp": (0b0010, query("test.example", qtype=6)),
        "signed_big_udp": (0b0100, query("big.test.example", qtype=16)),
        "signed_unknown_key": (0b0110, query("host.test.example")),
        "signed_any_tcp": (0b0011, query("test.example", qtype=255, ar=1, extra=opt())),
        "axfr_other_zone": (0b1001, query("example.org", qtype=252, flags=0)),
    }
    for name, (flags, message) in plain.items():
        write("dns_control", name, bytes([flags]) + message)
    # Unsigned messages for the tsig target's sign-then-verify round trip.
    write("tsig", "unsigned_query", query("host.test.example", ar=1, extra=opt(do=True)))
    write("tsig", "unsigned_ixfr", plain["ixfr_tcp"][1])


# --- HTTP -------------------------------------------------------------------


class HttpCapture:
    """A loopback HTTP listener: keeps what each connection sends until its
    headers end (and a declared body), answers "good"."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(3)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                        if line.lower().startswith(b"expect:"):
                            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    while len(body) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        body += chunk
                        data += chunk
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: 17\r\nConnection: close\r\n\r\n"
                                 b"good 203.0.113.7\n")
                except (OSError, ValueError):
                    pass
                with self.lock:
                    self.requests.append(data)

    def run(self, argv, cwd=None):
        with self.lock:
            before = len(self.requests)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                       check=False, cwd=cwd)
        with self.lock:
            return self.requests[before] if len(self.requests) > before else None


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def http_seeds():
    capture = HttpCapture()
    base = "http://127.0.0.1:%d" % capture.port
    token = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    host = "home.dyn.example"
    real = []
    if have("curl"):
        real += [
            ("curl_token", ["curl", "-s", "-u", host + ":" + token,
                            base + "/nic/update?hostname=" + host + "&myip=203.0.113.7"]),
            ("curl_account_two_hosts", ["curl", "-s", "-u", "alice:a long passphrase",
                                        base + "/nic/update?hostname=home.dyn.example,"
                                        "nas.dyn.example&myip=203.0.113.7,2001:db8::7"]),
            ("curl_post_form", ["curl", "-s", "-u", host + ":" + token, "-d",
                                "hostname=" + host + "&myipv6=2001%3adb8%3A%3a51",
                                base + "/nic/update"]),
            ("curl_expect_continue", ["curl", "-s", "-H", "Expect: 100-continue", "-d",
                                      "hostname=" + host + "&junk=" + "x" * 1100,
                                      base + "/nic/update/"]),
            ("curl_user_pass_params", ["curl", "-s", base + "/nic/update?hostname=" + host +
                                       "&user=" + host + "&pass=" + token + "&myip=10.0.0.1"]),
            ("curl_api_login", ["curl", "-s", "-H", "Content-Type: application/json", "-d",
                                '{"name":"alice","password":"a long passphrase"}',
                                base + "/api/v1/login"]),
            ("curl_api_hosts", ["curl", "-s", "-H", "Authorization: Bearer " + "s" * 43,
                                base + "/api/v1/hosts"]),
            ("curl_api_delete_host", ["curl", "-s", "-X", "DELETE", "-H",
                                      "Authorization: Bearer " + "s" * 43,
                                      base + "/api/v1/hosts/home%2Edyn.example"]),
            ("curl_metrics", ["curl", "-s", base + "/metrics"]),
        ]
    tmp = tempfile.mkdtemp(prefix="updns_seeds_")
    try:
        if have("ddclient"):
            conf = os.path.join(tmp, "ddclient.conf")
            with open(conf, "w") as f:
                f.write("daemon=0\nsyslog=no\nssl=no\nprotocol=dyndns2\n"
                        "server=127.0.0.1:%d\nusev4=ipv4, ipv4=203.0.113.7\n"
                        "login=%s\npassword='%s'\n%s\n" % (capture.port, host, token, host))
            os.chmod(conf, 0o600)
            real.append(("ddclient", ["ddclient", "-foreground", "-daemon=0", "-file", conf,
                                      "-cache", os.path.join(tmp, "ddclient.cache")]))
        if have("inadyn"):
            for name, address in [("inadyn_v4", "203.0.113.9"), ("inadyn_v6", "2001:db8::9")]:
                conf = os.path.join(tmp, name + ".conf")
                with open(conf, "w") as f:
                    f.write('period = 300\nallow-ipv6 = true\ncustom updns {\n'
                            '  ddns-server = "127.0.0.1:%d"\n'
                            '  ddns-path = "/nic/update?hostname=%%h&myip=%%i"\n'
                            '  ssl = false\n  username = "%s"\n  password = "%s"\n'
                            '  hostname = "%s"\n  checkip-command = "echo %s"\n}\n'
                            % (capture.port, host, token, host, address))
                os.chmod(conf, 0o600)
                cache = os.path.join(tmp, name + "-cache")
                os.mkdir(cache)
                real.append((name, ["inadyn", "--foreground", "--once", "--no-pidfile",
                                    "--cache-dir=" + cache, "-f", conf]))
        for name, argv in real:
            request = capture.run(argv, cwd=tmp)
            if request:
                write("http", name, request)
            else:
                print("no request from", argv[0], file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    auth = basic(host, token)
    hand = {
        "pipelined_keep_alive": (
            "GET /nic/update?hostname=%s&myip=203.0.113.1 HTTP/1.1\r\nHost: x\r\n"
            "Authorization: %s\r\n\r\n"
            "GET /nic/update?hostname=%s&myip=203.0.113.2 HTTP/1.1\r\nHost: x\r\n"
            "Authorization: %s\r\nConnection: close\r\n\r\n" % (host, auth, host, auth)),
        "http10_keep_alive": ("GET /nic/update?hostname=%s HTTP/1.0\r\nConnection: keep-alive\r\n"
                              "Authorization: %s\r\n\r\n" % (host, auth)),
        "chunked_post": ("POST /nic/update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         "Authorization: %s\r\n\r\n9\r\nhostname=\r\n10\r\nhome.dyn.example\r\n"
                         "0\r\nX-Trailer: after\r\n\r\n" % auth),
        "chunked_api_body": ("POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                             "\r\nAuthorization: Bearer tok\r\n\r\n"
                             "1a\r\n{\"hostname\":\"a.dyn.example\r\n2\r\n\"}\r\n0\r\n\r\n"),
        "content_length_too_big": "POST /api/v1/login HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        "two_content_lengths": ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
                                "abcd"),
        "connect": "CONNECT 127.0.0.1:53 HTTP/1.1\r\nHost: 127.0.0.1:53\r\n\r\n",
        "absolute_url": ("GET http://updns.example:8053/nic/update?hostname=%s HTTP/1.1\r\n"
                         "Authorization: %s\r\n\r\n" % (host, auth)),
        "asterisk": "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        "upgrade": ("GET /api/v1/account HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    "\r\nGET /metrics HTTP/1.1\r\n\r\n"),
        "head_metrics": "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        "bad_percent": "GET /nic/update?hostname=%zz&myip=%4 HTTP/1.1\r\nAuthorization: " + auth +
                       "\r\n\r\n",
        "myip_lists": ("GET /nic/update?hostname=%s&myip=192.168.1.1/24,%%20fd00::1&myipv6=::ffff:"
                       "10.1.2.3&wildcard=NOCHG&mx=&backmx=NO&offline=NO&system=dyndns HTTP/1.1\r\n"
                       "Authorization: %s\r\n\r\n" % (host, auth)),
        "bad_basic": ("GET /nic/update?hostname=%s HTTP/1.1\r\nAuthorization: BASIC !!notbase64==\r\n"
                      "\r\n" % host),
        "basic_no_colon": ("GET /nic/update?hostname=%s HTTP/1.1\r\nAuthorization: basic %s\r\n\r\n"
                           % (host, base64.b64encode(b"nocolon").decode())),
        "folded_header": ("GET /nic/update?hostname=%s HTTP/1.1\r\nAuthorization:\r\n %s\r\n"
                          "X-Long: a\r\n\tb\r\n\r\n" % (host, auth)),
        "api_login_json": ("POST /api/v1/login/reseller HTTP/1.1\r\nContent-Type: application/json\r\n"
                           "Content-Length: 37\r\n\r\n{\"name\":\"r1\",\"password\":\"secret!\"}\n"),
        "api_routes": "".join(
            "%s /api/v1/%s HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n\r\n{}"
            % (m, p) for m, p in [("POST", "hosts/a.dyn.example/token"),
                                  ("POST", "hosts/a%2edyn.example/move-token"),
                                  ("POST", "hosts/move"), ("POST", "tokens/missing"),
                                  ("DELETE", "link"), ("POST", "password/reset"),
                                  ("PUT", "account/"), ("POST", "logout")]),
        "nul_in_url": b"GET /nic/update?hostname=a\x00b HTTP/1.1\r\n\r\n",
        "bare_lf": "GET /nic/update?hostname=%s HTTP/1.1\nAuthorization: %s\n\n" % (host, auth),
    }
    for name, data in hand.items():
        write("http", name, data)


# --- JSON API ------------------------------------------------------------------


def json_seeds():
    seeds = {
        "login": '{"name":"alice","password":"a long passphrase"}',
        "reseller_login": '{"name":"Reseller-1","password":"p"}',
        "add_host": '{"hostname":"Home.Dyn.Example."}',
        "move": '{"token":"MOVETOKENMOVETOKENMOVETOKEN23456"}',
        "link": '{"reseller":"r1","password":"secret"}',
        "reset": '{"token":"abc","password":"new long passphrase"}',
        "null_field": '{"name":null,"password":1}',
        "wrong_types": '{"name":["alice"],"password":{"a":true},"hostname":1e400}',
        "unicode_escapes": '{"name":"\\u00e9\\ud83d\\ude00","hostname":"xn--bcher-kva.example"}',
        "lone_surrogate": '{"name":"\\ud800","password":"x"}',
        "depth_16": "[" * 15 + "{}" + "]" * 15,
        "depth_17": "[" * 16 + "{}" + "]" * 16,
        "brackets_in_string": '{"name":"[[[[[[[[[[[[[[[[[[[[","password":"]]]]"}',
        "not_object": '["name","alice"]',
        "duplicate_keys": '{"name":"a","name":"b","password":"p"}',
        "long_field": '{"hostname":"' + "a" * 301 + '"}',
        "empty": "",
        "whitespace": " \r\n\t",
        "trailing_garbage": '{"name":"a"} {"name":"b"}',
        "comments": '{"name":"a" /* c */}',
    }
    for name, text in seeds.items():
        write("json_api", name, text)
    write("json_api", "invalid_utf8", b'{"name":"\xff\xfe\xc0\xaf","password":"\xed\xa0\x80"}')
    write("json_api", "nul_in_string", b'{"hostname":"a\\u0000.dyn.example","token":"\x00"}')


# --- Config and zone files ----------------------------------------------------------------


def config_seeds():
    shutil.copy(os.path.join(ROOT, "examples", "updns.yaml"),
                os.path.join(CORPUS, "config", "example"))
    full = """server:
  listen: ["127.0.0.1@5353", "::1@5353", "0.0.0.0", "::"]
  workers: 2
  tcp_idle_timeout: 10000
  tcp_max_connections: 256
  udp_payload: 1232
storage:
  path: ./var/db
  map_size: 1GiB
http:
  listen: ["127.0.0.1:8053", "[::1]:8053", "127.0.0.1@8054"]
  max_request_size: 8192
  max_body_size: 65536
  read_timeout: 10000
  idle_timeout: 30000
  max_connections: 1024
accounts:
  host_limit: 100
dyndns:
  max_hosts: 20
  nochg_limit: 5
  nochg_window: 600
  abuse_lock: 3600
api:
  session_ttl: 86400
  reset_ttl: 86400
  move_ttl: 86400
mail:
  smtp: "smtp://127.0.0.1:2525"
  from: "updns@dyn.example"
  reset_url: "https://dyn.example/reset?token="
  starttls: false
  username: "relay"
  password: "relay password"
  retry_initial: 30
  retry_max: 3600
zones:
  - name: dyn.example
    file: examples/dyn.example.zone
    host_ttl: 60
  - name: Other.Example.
"""
    write("config", "full", full)
    write("config", "flow_style", '{server: {listen: ["::1@53"], workers: 1}, zones: [{name: "."}]}')
    write("config", "anchors", "storage: &s {path: /tmp/x, map_size: 1048576}\nzones:\n"
          "  - &z {name: a.example}\n  - {<<: *z, name: b.example}\n")
    write("config", "two_documents", "zones: []\n---\nzones: []\n")
    write("config", "duplicate_zone", "zones:\n  - name: a.example\n  - name: A.EXAMPLE.\n")
    write("config", "bad_types", "server:\n  workers: -1\n  udp_payload: 99999\n"
          "  listen: 127.0.0.1@99999\nstorage:\n  map_size: 1XiB\n")
    write("config", "unknown_key", "server:\n  listne: []\nhttp:\n  listen: ['[::1]']\n")
    write("config", "password_file", "mail:\n  smtp: smtps://relay.example\n  from: a@b.example\n"
          "  username: u\n  password_file: /nonexistent/secret\n")
    write("config", "tags", "server: !!map\n  workers: !!str 2\nzones: !custom [1, 2]\n")


def zone_seeds():
    for path in ["tests/data/test.example.zone", "tests/data/neg.example.zone",
                 "examples/dyn.example.zone"]:
        shutil.copy(os.path.join(ROOT, path),
                    os.path.join(CORPUS, "zone_file", os.path.basename(path)))
    write("zone_file", "syntax_tour.zone", """$TTL 300
$ORIGIN dyn.example.
@   IN SOA ns1 hostmaster (
        2024010101 ; serial
        7200 3600 1209600 300 )
    IN NS ns1
    IN NS ns2.Other.Example.
    IN MX 10 Mail.Dyn.Example.
    IN TXT "v=spf1 -all" "say \\"hi\\" there"
    IN CAA 0 issue "letsencrypt.org"
mail IN A 192.0.2.5
ns1 IN A 192.0.2.1
ns1 IN AAAA 2001:db8::1
www 60 IN A 192.0.2.10
Alias IN CNAME www
_sip._udp IN SRV 10 5 5060 SipServer
*.wild IN A 192.0.2.20
sub IN NS ns.sub
ns.sub IN A 192.0.2.30
odd IN TYPE65534 \\# 3 abcdef
esc\\.aped\\032name IN TXT "\\000\\255"
$ORIGIN hosts.dyn.example.
h1 IN A 192.0.2.40
h2 3600 IN AAAA 2001:db8::2
$INCLUDE inc.zone more
h3 1w2d3h4m5s IN A 192.0.2.41
""")
    write("zone_file", "every_type.zone", """$ORIGIN example.com.
$TTL 1h
@ IN SOA ns.example.com. admin.example.com. 1 2 3 4 5
@ IN NS ns
ns IN A 192.0.2.1
@ IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
@ IN DS 2371 13 2 1F987CC6583E92DF0890718C42C8E3C0B5D2D3E8D5A9B8C7D6E5F4A3B2C1D0E9
@ IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
@ IN SSHFP 1 1 0123456789abcdef0123456789abcdef01234567
@ IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.com.
@ IN HINFO "PC" "Linux"
@ IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
@ IN RP admin.example.com. txt.example.com.
@ IN NSEC ns.example.com. A NS SOA RRSIG NSEC DNSKEY
@ IN RRSIG SOA 13 2 3600 20300101000000 20200101000000 2371 example.com. YWJjZGVm
@ IN SVCB 1 . alpn=h2
@ IN URI 10 1 "https://example.com/"
@ IN TXT ""
@ IN SPF "v=spf1 -all"
@ IN PTR host.example.com.
a.b.c.d.e.f.g IN AAAA ::ffff:192.0.2.1
""")
    write("zone_file", "root.zone", """$ORIGIN .
$TTL 86400
. IN SOA a.root-servers.net. nstld.verisign-grs.com. 2024010100 1800 900 604800 86400
. IN NS a.root-servers.net.
example. IN NS ns.example.
ns.example. IN A 192.0.2.53
""")
    write("zone_file", "errors.zone", """$ORIGIN test.example.
@ IN SOA ns1 hostmaster 1 2 3 4 5
@ IN SOA ns1 hostmaster 2 2 3 4 5
@ IN NS ns1
www IN CNAME host
www IN A 192.0.2.1
outside.example. IN A 192.0.2.2
@ CH TXT "chaos"
$TTL soon
$INCLUDE missing.zone
$GENERATE 1-10 host$ A 192.0.2.$
""")


def main():
    for target in ["query", "http", "json_api", "config", "zone_file", "tsig", "rfc2136",
                   "dns_control"]:
        os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    dns_seeds()
    http_seeds()
    json_seeds()
    config_seeds()
    zone_seeds()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print("%-10s %3d files, %6d bytes" % (target, len(files), size))


if __name__ == "__main__":
    main()
