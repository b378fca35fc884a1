#!/bin/sh
# Sets up a box for chwatch: the service user and group, the data directory
# and the config file. Run as root once; safe to run again.
set -eu
getent group chwatch >/dev/null || groupadd --system chwatch
id chwatch >/dev/null 2>&1 || useradd --system --gid chwatch --home-dir /var/lib/chwatch --shell /usr/sbin/nologin chwatch
# setgid: files created in it (the database, -wal, -shm, backups) stay in
# group chwatch, whoever creates them, so operators in the group can read.
install -d -o chwatch -g chwatch -m 2770 /var/lib/chwatch
install -d -o root -g chwatch -m 0750 /etc/chwatch
if [ ! -f /etc/chwatch/chwatch.toml ]; then
  sed 's|^path = "chwatch.db"|path = "/var/lib/chwatch/chwatch.db"|' "$(dirname "$0")/../config.example.toml" > /etc/chwatch/chwatch.toml
  chown root:chwatch /etc/chwatch/chwatch.toml
  chmod 0640 /etc/chwatch/chwatch.toml
fi
if [ ! -f /etc/chwatch/chwatch.env ]; then
  printf 'CHWATCH_STREAM_KEY=\nCHWATCH_API_KEY=\n' > /etc/chwatch/chwatch.env
  chmod 0600 /etc/chwatch/chwatch.env
fi
echo "chwatch: user and group ready; put the keys in /etc/chwatch/chwatch.env, then install deploy/chwatch.service"
