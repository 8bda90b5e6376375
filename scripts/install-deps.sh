#!/bin/sh
# Installs the Debian packages updns builds, tests and benchmarks with,
# but only those that are missing, so a prepared machine starts at once.
set -eu

build="cmake g++ make pkg-config libldns-dev libuv1-dev liblmdb-dev libssl-dev
libyaml-cpp-dev libhttp-parser-dev nlohmann-json3-dev libcurl4-openssl-dev
libgtest-dev libgmock-dev libbenchmark-dev"
# Real peers and clients the integration tests talk to.
peers="nsd knot knot-dnsutils bind9-dnsutils ldnsutils lmdb-utils curl ddclient inadyn
python3-aiosmtpd dnsperf libio-socket-ssl-perl"
# The libFuzzer targets (`make fuzz`): clang and its runtime libraries.
fuzz="clang libclang-rt-14-dev"

missing=""
for pkg in $build ${UPDNS_WITH_PEERS:+$peers} ${UPDNS_WITH_FUZZ:+$fuzz}; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing Debian packages:$missing" >&2
  echo "install-deps: run as root, or install them with apt-get" >&2
  exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Packaged servers (nsd) must not start system-wide instances on port 53:
# tests start their own on loopback ports.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
[ -n "$created_policy" ] && rm -f "$policy"
exit 0
