#!/bin/sh
# The system side of `make install` (run after `cmake --install`): the
# `updns` system user the unit runs as, /etc/updns with the starting-point
# config and zone file unless they already exist, and a systemd reload.
# Nothing an operator wrote is overwritten. With DESTDIR set (packaging),
# only the files are staged: no user, no systemctl.
set -eu
cd "$(dirname "$0")/.."
etc="${DESTDIR:-}/etc/updns"

if [ -z "${DESTDIR:-}" ] && ! getent passwd updns >/dev/null; then
  useradd --system --home-dir /var/lib/updns --no-create-home \
    --shell /usr/sbin/nologin --comment "updns daemon" updns
  echo "install: created system user updns"
fi

install -d -m 0750 "$etc"
for file in updns.yaml dyn.example.zone; do
  if [ -e "$etc/$file" ]; then
    echo "install: $etc/$file exists, left as it is (see contrib/$file for the current example)"
  else
    install -m 0640 "contrib/$file" "$etc/$file"
    echo "install: wrote $etc/$file"
  fi
done
if [ -z "${DESTDIR:-}" ]; then
  chown -R root:updns "$etc"
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "install: systemd reloaded; edit $etc/updns.yaml, then: systemctl enable --now updnsd"
  fi
fi
