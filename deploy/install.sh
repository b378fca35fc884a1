#!/bin/sh
# install.sh: installs or upgrades chwatch on a systemd box. Safe to run again:
# a second run changes nothing, and a run after an upgrade replaces only what
# the new version ships. It never overwrites the config or the keys; it does put
# modes and owners back where they belong.
#
#   sudo deploy/install.sh [--binary FILE] [--root DIR] [--litestream] [--no-cron] [--no-enable]
#
# What it sets up (docs/deploy.md explains each):
#   user and group chwatch (system, no login, home /var/lib/chwatch)
#   /usr/local/bin/chwatch                 0755 root:root  the binary (the one it replaces: chwatch.previous)
#   /usr/local/bin/chwatch-backup          0755 root:root  nightly backup with rotation
#   /var/lib/chwatch                       2770 chwatch:chwatch  setgid: files made there stay in group chwatch
#   /var/backups/chwatch                   2770 chwatch:chwatch  chwatch-backup writes here
#   /srv/chwatch/exports                   2770 chwatch:chwatch  for the cron exports
#   /etc/chwatch                           0750 root:chwatch
#   /etc/chwatch/chwatch.toml              0640 root:chwatch  from config.example.toml, only when missing
#   /etc/chwatch/chwatch.env               0600 root:root     the keys (read by systemd), only when missing
#   /etc/systemd/system/chwatch.service    0644, enabled (not started: put the keys in first)
#   /etc/systemd/system/litestream.service 0644, enabled with --litestream
#   /etc/cron.d/chwatch                    0644, the nightly backup (and export examples), unless --no-cron
#   /usr/local/share/doc/chwatch/          README, docs, config example, Prometheus and Grafana files
#
# --root DIR (or DESTDIR=DIR) installs into DIR instead of /, for packaging and
# for CI (scripts/test-install): users are added to DIR/etc/passwd, owners are
# set by number, and the unit is enabled offline (systemctl --root).
set -eu

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

ROOT=${DESTDIR:-}
BINARY=
ENABLE=1
CRON=1
LITESTREAM=0
while [ $# -gt 0 ]; do
	case $1 in
	--root) [ $# -ge 2 ] || { echo "install.sh: --root needs a directory" >&2; exit 2; }; ROOT=$2; shift 2 ;;
	--root=*) ROOT=${1#--root=}; shift ;;
	--binary) [ $# -ge 2 ] || { echo "install.sh: --binary needs a file" >&2; exit 2; }; BINARY=$2; shift 2 ;;
	--binary=*) BINARY=${1#--binary=}; shift ;;
	--litestream) LITESTREAM=1; shift ;;
	--no-cron) CRON=0; shift ;;
	--no-enable) ENABLE=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "install.sh: unknown option $1 (see install.sh --help)" >&2; exit 2 ;;
	esac
done
ROOT=${ROOT%/}
SRC=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" != 0 ]; then
	echo "install.sh: run it as root (sudo): it creates a system user and sets owners" >&2
	exit 1
fi
if [ -n "$ROOT" ] && [ ! -f "$ROOT/etc/passwd" ]; then
	echo "install.sh: $ROOT/etc/passwd is missing: --root must be a system root with /etc/passwd and /etc/group" >&2
	exit 2
fi

if [ -z "$BINARY" ]; then
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	armv7l | armv7*) arch=armv7 ;;
	*) arch=$(uname -m) ;;
	esac
	for f in "$SRC/chwatch" "$SRC/dist/chwatch-linux-$arch"; do
		if [ -x "$f" ]; then BINARY=$f; break; fi
	done
	if [ -z "$BINARY" ]; then
		echo "install.sh: no binary found: run make build (or make cross), or pass --binary FILE" >&2
		exit 2
	fi
fi
if ! "$BINARY" version >/dev/null 2>&1; then
	echo "install.sh: $BINARY does not run here (wrong architecture?): pass --binary with the build for this machine" >&2
	exit 2
fi

# --- user and group --------------------------------------------------------
prefix=
[ -n "$ROOT" ] && prefix="--prefix $ROOT"
lookup() { # lookup FILE NAME: the numeric id of NAME in FILE (passwd or group)
	awk -F: -v n="$2" '$1 == n { print $3 }' "$ROOT/etc/$1"
}
if [ -z "$(lookup group chwatch)" ]; then
	# shellcheck disable=SC2086 # $prefix is empty or two words
	groupadd $prefix --system chwatch
fi
if [ -z "$(lookup passwd chwatch)" ]; then
	# shellcheck disable=SC2086
	useradd $prefix --system --gid chwatch --home-dir /var/lib/chwatch --no-create-home \
		--shell /usr/sbin/nologin --comment "chwatch service" chwatch
fi
UID_=$(lookup passwd chwatch)
GID_=$(lookup group chwatch)

# --- helpers: each sets mode and owner every time, and copies only on change ---
changed=
dir() { # dir MODE OWNER GROUP PATH
	mkdir -p "$ROOT$4"
	chown "$2:$3" "$ROOT$4"
	chmod "$1" "$ROOT$4"
}
put() { # put MODE OWNER GROUP SRC DEST: atomic (a running binary is never half written)
	if ! cmp -s "$4" "$ROOT$5"; then
		mkdir -p "$(dirname "$ROOT$5")"
		cp "$4" "$ROOT$5.install-tmp"
		chown "$2:$3" "$ROOT$5.install-tmp"
		chmod "$1" "$ROOT$5.install-tmp"
		mv -f "$ROOT$5.install-tmp" "$ROOT$5"
		changed="$changed $5"
	fi
	chown "$2:$3" "$ROOT$5"
	chmod "$1" "$ROOT$5"
}

# --- directories -----------------------------------------------------------
# setgid (2770): the database, its -wal and -shm, backups and an operator's
# files made there all stay in group chwatch, so operators in the group can
# read them; nobody else can.
dir 2770 "$UID_" "$GID_" /var/lib/chwatch
dir 2770 "$UID_" "$GID_" /var/backups/chwatch
dir 0755 0 0 /srv/chwatch
dir 2770 "$UID_" "$GID_" /srv/chwatch/exports
dir 0750 0 "$GID_" /etc/chwatch

# --- binary, scripts, units, cron, docs ------------------------------------
# The binary it replaces is kept as chwatch.previous: rolling back an upgrade
# needs the old binary after the new one has migrated the schema down
# (docs/runbook.md).
if [ -f "$ROOT/usr/local/bin/chwatch" ] && ! cmp -s "$BINARY" "$ROOT/usr/local/bin/chwatch"; then
	put 0755 0 0 "$ROOT/usr/local/bin/chwatch" /usr/local/bin/chwatch.previous
fi
put 0755 0 0 "$BINARY" /usr/local/bin/chwatch
put 0755 0 0 "$SRC/deploy/chwatch-backup" /usr/local/bin/chwatch-backup
put 0644 0 0 "$SRC/deploy/chwatch.service" /etc/systemd/system/chwatch.service
put 0644 0 0 "$SRC/deploy/litestream.service" /etc/systemd/system/litestream.service
if [ "$CRON" = 1 ]; then
	put 0644 0 0 "$SRC/deploy/cron" /etc/cron.d/chwatch
fi
doc=/usr/local/share/doc/chwatch
dir 0755 0 0 $doc
dir 0755 0 0 $doc/docs
dir 0755 0 0 $doc/prometheus
dir 0755 0 0 $doc/grafana
put 0644 0 0 "$SRC/README.md" $doc/README.md
put 0644 0 0 "$SRC/config.example.toml" $doc/config.example.toml
for f in "$SRC"/docs/*.md; do put 0644 0 0 "$f" "$doc/docs/$(basename "$f")"; done
for f in "$SRC"/deploy/prometheus/*.yml; do put 0644 0 0 "$f" "$doc/prometheus/$(basename "$f")"; done
put 0644 0 0 "$SRC/deploy/grafana/chwatch.json" $doc/grafana/chwatch.json

# --- config and keys: written once, never overwritten ------------------------
conf=/etc/chwatch/chwatch.toml
if [ ! -e "$ROOT$conf" ]; then
	sed 's|^path = "chwatch.db"|path = "/var/lib/chwatch/chwatch.db"|' "$SRC/config.example.toml" >"$ROOT$conf.install-tmp"
	mv "$ROOT$conf.install-tmp" "$ROOT$conf"
	changed="$changed $conf"
fi
chown "0:$GID_" "$ROOT$conf"
chmod 0640 "$ROOT$conf"

envf=/etc/chwatch/chwatch.env
if [ ! -e "$ROOT$envf" ]; then
	(
		umask 077
		cat >"$ROOT$envf" <<-'EOF'
			# chwatch keys, read by systemd (EnvironmentFile=) as root: keep this file 0600 root:root.
			# A change takes effect on restart: sudo systemctl restart chwatch
			CHWATCH_STREAM_KEY=
			CHWATCH_API_KEY=
			# The webhook URL carries a token: keep it here rather than in chwatch.toml.
			#CHWATCH_ALERT_WEBHOOK_URL=
		EOF
	)
	changed="$changed $envf"
fi
chown 0:0 "$ROOT$envf"
chmod 0600 "$ROOT$envf"

if [ "$LITESTREAM" = 1 ]; then
	if [ ! -e "$ROOT/etc/litestream.yml" ]; then
		if [ -f "$SRC/deploy/litestream.yml" ]; then
			put 0640 0 "$GID_" "$SRC/deploy/litestream.yml" /etc/litestream.yml
		else
			echo "install.sh: warning: deploy/litestream.yml not found; write /etc/litestream.yml yourself (docs/deploy.md)" >&2
		fi
	else
		chown "0:$GID_" "$ROOT/etc/litestream.yml"
		chmod 0640 "$ROOT/etc/litestream.yml"
	fi
	lsenv=/etc/chwatch/litestream.env
	if [ ! -e "$ROOT$lsenv" ]; then
		(
			umask 077
			cat >"$ROOT$lsenv" <<-'EOF'
				# Litestream replica credentials, read by systemd (litestream.service) as root.
				# Keep this file 0600 root:root; a file replica needs none.
				#LITESTREAM_ACCESS_KEY_ID=
				#LITESTREAM_SECRET_ACCESS_KEY=
			EOF
		)
		changed="$changed $lsenv"
	fi
	chown 0:0 "$ROOT$lsenv"
	chmod 0600 "$ROOT$lsenv"
	[ -x "$ROOT/usr/local/bin/litestream" ] ||
		echo "install.sh: warning: /usr/local/bin/litestream is missing: install it before starting litestream.service (docs/deploy.md)" >&2
fi

# --- systemd ---------------------------------------------------------------
units=chwatch.service
[ "$LITESTREAM" = 1 ] && units="$units litestream.service"
if [ -n "$ROOT" ]; then
	if [ "$ENABLE" = 1 ]; then
		# shellcheck disable=SC2086
		systemctl --root="$ROOT" --quiet enable $units
	fi
else
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
	fi
	if [ "$ENABLE" = 1 ]; then
		# shellcheck disable=SC2086
		systemctl --quiet enable $units
	fi
fi

if [ -n "$changed" ]; then
	echo "chwatch: installed or updated:$changed"
else
	echo "chwatch: nothing to change"
fi
if [ -z "$ROOT" ]; then
	case $changed in
	*/usr/local/bin/chwatch\ * | */usr/local/bin/chwatch)
		if systemctl --quiet is-active chwatch.service 2>/dev/null; then
			echo "chwatch: the service still runs the old binary: sudo systemctl restart chwatch (pending migrations run at start, after a backup)"
		fi
		;;
	esac
	if grep -q '^CHWATCH_STREAM_KEY=$' "$envf"; then
		echo "chwatch: next: put the keys in $envf, then: sudo systemctl start chwatch; chwatch status"
	fi
fi
