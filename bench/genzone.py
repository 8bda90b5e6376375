#!/usr/bin/env python3
"""Generate a dyndns-style test zone and a dnsperf query file.

usage: genzone.py ORIGIN HOSTS OUTDIR [SEED [QUERIES]]

Writes OUTDIR/zone.db (RFC 1035 master file: apex SOA/NS/MX/TXT, glue, a
wildcard, a CNAME, a delegation with glue, HOSTS hosts host0..hostN-1 with
an A record 10.x.y.z and every second one an AAAA) and OUTDIR/queries.txt
(dnsperf format, 'name TYPE' per line, QUERIES lines, default 200,000):
70% A hits, 15% AAAA hits, 7% NXDOMAIN, 3% wildcard, 2% CNAME, 1% MX,
1% referral, 1% NODATA (AAAA of a host without one). Deterministic for a
given seed. Adapted from the anchor lab's generator so that bench/compare
needs nothing outside this repository.
"""
import os
import random
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    origin = sys.argv[1].rstrip('.') + '.'
    n = int(sys.argv[2])
    out = sys.argv[3]
    rnd = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 200000
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, 'zone.db.tmp')
    with open(tmp, 'w', buffering=1 << 20) as z:
        z.write(f"$ORIGIN {origin}\n$TTL 60\n")
        z.write("@ 3600 IN SOA ns1 hostmaster 2026112901 7200 3600 1209600 60\n")
        z.write("@ 3600 IN NS ns1\n@ 3600 IN NS ns2\n")
        z.write("ns1 3600 IN A 192.0.2.1\nns2 3600 IN A 192.0.2.2\nns1 3600 IN AAAA 2001:db8::1\n")
        z.write("@ 3600 IN MX 10 mail\nmail 3600 IN A 192.0.2.25\n")
        z.write('@ 3600 IN TXT "v=spf1 mx -all"\n')
        z.write("*.wild 60 IN A 192.0.2.99\nwww 300 IN CNAME host1\n")
        z.write("sub 3600 IN NS ns.sub\nns.sub 3600 IN A 192.0.2.53\n")
        lines = []
        for i in range(n):
            lines.append(f"host{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            if i % 2 == 0:
                lines.append(f"host{i} IN AAAA 2001:db8:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::1\n")
            if len(lines) >= 100000:
                z.writelines(lines)
                lines.clear()
        z.writelines(lines)
    os.replace(tmp, os.path.join(out, 'zone.db'))
    with open(os.path.join(out, 'queries.txt'), 'w') as q:
        for _ in range(count):
            r = rnd.random()
            i = rnd.randrange(n)
            if r < 0.70:
                q.write(f"host{i}.{origin} A\n")
            elif r < 0.85:
                q.write(f"host{i - i % 2}.{origin} AAAA\n")
            elif r < 0.92:
                q.write(f"nohost{i}.{origin} A\n")
            elif r < 0.95:
                q.write(f"x{i}.wild.{origin} A\n")
            elif r < 0.97:
                q.write(f"www.{origin} A\n")
            elif r < 0.98:
                q.write(f"{origin} MX\n")
            elif r < 0.99:
                q.write(f"a.sub.{origin} A\n")
            else:
                # NODATA: odd hosts have no AAAA. (The lab's generator asked
                # for an even host here, which has one.)
                j = i | 1 if (i | 1) < n else 1
                q.write(f"host{j}.{origin} AAAA\n")


if __name__ == '__main__':
    main()
