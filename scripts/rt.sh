#!/usr/bin/env bash
# A throwaway Request Tracker 5 (Debian's request-tracker5) for the RT integration test.
#   scripts/rt.sh install                    install RT 5 with its PostgreSQL driver, when missing
#   scripts/rt.sh init PGHOST PGPORT DBNAME  point RT at that Postgres, create and fill DBNAME
#                                            (RT's core data, then integrations/request-tracker/initdata)
#   scripts/rt.sh start PORT                 rt-server on 127.0.0.1:PORT, back when REST2 answers
#   scripts/rt.sh stop                       stop it
#   scripts/rt.sh status                     print the URL when it runs, exit 1 when not
#
# RT reads one configuration, so this is one RT per machine. The script writes three files into
# /etc/request-tracker5/RT_SiteConfig.d/ (RT 5 reads every *.pm there, in name order, after
# Debian's 50-debconf.pm and 51-dbconfig-common.pm):
#   90-rt-sh-database.pm   init: the database (overrides 51-dbconfig-common.pm)
#   91-rt-sh-web.pm        start: web path and base URL for the port, logging to rt-server's stderr
#   60-signoff.pm          init: a copy of integrations/request-tracker/RT_SiteConfig.d/60-signoff.pm
# Environment: RT_SH_STATE (pid and log files, default /var/tmp/signoff-rt), RT_DB_USER (default
# rt_user; the Postgres must let it in without a password, as scripts/pg.sh's trust auth does),
# RT_DBA (default postgres), RT_WORKERS (rt-server processes, default 3), RT_LOG_LEVEL (default info),
# RT_SIGNOFF_PASSWORD (the "signoff" RT user's, for a new database, default signoff-password),
# RT_ROOT_PASSWORD (root's password for a new database, default RT's own default, "password"),
# SIGNOFF_URL / SIGNOFF_TOKEN (written into 60-signoff.pm's settings by init, default unset).
# Everything is idempotent: installing an installed RT, filling a filled database, starting a
# running server do nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
etc=/etc/request-tracker5/RT_SiteConfig.d
state=${RT_SH_STATE:-/var/tmp/signoff-rt}
pidfile=$state/rt-server.pid
logfile=$state/rt-server.log
rtserver=/usr/share/request-tracker5/libexec/rt-server
setupdb=/usr/sbin/rt-setup-database-5
initdata=$here/integrations/request-tracker/initdata.pl
siteconfig=$here/integrations/request-tracker/RT_SiteConfig.d/60-signoff.pm

die() { echo "rt.sh: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "$1 needs root (it writes /etc/request-tracker5)"; }

# A Perl single-quoted string literal.
perlq() { printf "'%s'" "$(printf %s "$1" | sed "s/[\\\\']/\\\\&/g")"; }

installed() {
  dpkg-query -W -f='${Status}\n' request-tracker5 rt5-db-postgresql 2>/dev/null \
    | grep -c '^install ok installed$' | grep -qx 2
}

cmd_install() {
  if installed; then echo "rt.sh: request-tracker5 already installed"; return; fi
  need_root install
  # Without this, dbconfig-common asks (and with noninteractive, tries) to create a database on a
  # local server that does not exist; `init` does that job against our own Postgres instead.
  debconf-set-selections <<'EOF'
request-tracker5 request-tracker5/dbconfig-install boolean false
EOF
  # Wait for dpkg's lock rather than fail when another install (scripts/deps.sh) holds it.
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    request-tracker5 rt5-db-postgresql libwww-perl libjson-perl curl >/dev/null
  installed || die "install failed"
  echo "rt.sh: installed $(dpkg-query -W -f='${Package} ${Version}' request-tracker5)"
}

psql_q() { # HOST PORT DB SQL: one value, empty when the database is missing
  psql -X -q -h "$1" -p "$2" -U "${RT_DBA:-postgres}" -d "$3" -tAc "$4" 2>/dev/null || true
}

write_db_config() { # HOST PORT DB
  local f=$etc/90-rt-sh-database.pm
  mkdir -p "$etc"
  cat >"$f.tmp" <<EOF
# Written by signoff's scripts/rt.sh init: RT's database (overrides 51-dbconfig-common.pm).
Set(\$DatabaseType, 'Pg');
Set(\$DatabaseHost, $(perlq "$1"));
Set(\$DatabaseRTHost, $(perlq "$1"));
Set(\$DatabasePort, $(perlq "$2"));
Set(\$DatabaseName, $(perlq "$3"));
Set(\$DatabaseUser, $(perlq "${RT_DB_USER:-rt_user}"));
Set(\$DatabasePassword, 'rt_pass');
Set(\$DatabaseAdmin, $(perlq "${RT_DBA:-postgres}"));
1;
EOF
  chown root:www-data "$f.tmp"; chmod 640 "$f.tmp"; mv "$f.tmp" "$f"
}

write_signoff_config() {
  local f=$etc/60-signoff.pm
  [ -f "$siteconfig" ] || die "missing $siteconfig"
  {
    cat "$siteconfig"
    echo
    echo "# Set by scripts/rt.sh init from SIGNOFF_URL / SIGNOFF_TOKEN."
    [ -n "${SIGNOFF_URL:-}" ] && echo "Set(\$SignoffURL, $(perlq "$SIGNOFF_URL"));"
    [ -n "${SIGNOFF_TOKEN:-}" ] && echo "Set(\$SignoffToken, $(perlq "$SIGNOFF_TOKEN"));"
    echo "1;"
  } >"$f.tmp"
  chown root:www-data "$f.tmp"; chmod 640 "$f.tmp"; mv "$f.tmp" "$f"
}

cmd_init() {
  [ $# -eq 3 ] || die "usage: rt.sh init PGHOST PGPORT DBNAME"
  local host=$1 port=$2 db=$3
  need_root init
  installed || die "RT is not installed (rt.sh install)"
  # The Debian file is root-only until debconf "handles permissions"; rt-server runs as www-data.
  [ -f /etc/request-tracker5/RT_SiteConfig.pm ] && chgrp www-data /etc/request-tracker5/RT_SiteConfig.pm \
    && chmod 640 /etc/request-tracker5/RT_SiteConfig.pm
  write_db_config "$host" "$port" "$db"
  # The password initdata gives the "signoff" RT user (the host action logs in as it).
  export RT_SIGNOFF_PASSWORD=${RT_SIGNOFF_PASSWORD:-signoff-password}
  write_signoff_config
  # (A running rt-server sees the new files only after `rt.sh stop; rt.sh start`.)
  if [ "$(psql_q "$host" "$port" "$db" "SELECT count(*) FROM users WHERE name = 'root'")" != 1 ]; then
    if [ -n "$(psql_q "$host" "$port" postgres "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      die "database $db exists but holds no RT; drop it or pick another name"
    fi
    echo "rt.sh: creating RT's database $db on $host:$port"
    local pwfile; pwfile=$(mktemp); chmod 600 "$pwfile"
    printf %s "${RT_ROOT_PASSWORD:-password}" >"$pwfile"
    "$setupdb" --action init --dba "${RT_DBA:-postgres}" --dba-password '' --root-password-file "$pwfile" \
      </dev/null >"$state/init.log" 2>&1 || { rm -f "$pwfile"; cat "$state/init.log" >&2; die "rt-setup-database init failed"; }
    rm -f "$pwfile"
  else
    echo "rt.sh: $db already holds RT's core data"
  fi
  if [ "$(psql_q "$host" "$port" "$db" "SELECT count(*) FROM queues WHERE name = 'Purchases'")" != 1 ]; then
    echo "rt.sh: loading $initdata"
    "$setupdb" --action insert --datafile "$initdata" --dba "${RT_DBA:-postgres}" --dba-password "" \
      </dev/null >"$state/insert.log" 2>&1 || { cat "$state/insert.log" >&2; die "loading initdata failed"; }
    grep -iE '\[(error|crit)' "$state/insert.log" >&2 && die "initdata reported errors (see $state/insert.log)"
  else
    echo "rt.sh: the Purchases queue is already there"
  fi
  true
}

rest2_code() { # PORT: HTTP status of an unauthenticated GET /REST/2.0/
  curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$1/REST/2.0/" 2>/dev/null || true
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

cmd_start() {
  [ $# -eq 1 ] || die "usage: rt.sh start PORT"
  local port=$1 f=$etc/91-rt-sh-web.pm
  need_root start
  installed || die "RT is not installed (rt.sh install)"
  [ -f "$etc/90-rt-sh-database.pm" ] || die "no database configured (rt.sh init)"
  if running; then
    if [ "$(cat "$state/port" 2>/dev/null)" = "$port" ]; then
      echo "rt.sh: already running on 127.0.0.1:$port"; return
    fi
    die "already running on port $(cat "$state/port" 2>/dev/null); stop it first"
  fi
  cat >"$f.tmp" <<EOF
# Written by signoff's scripts/rt.sh start.
Set(\$WebPath, '');
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $port);
Set(\$WebBaseURL, 'http://127.0.0.1:$port');
Set(\$CanonicalizeRedirectURLs, 0);
# A throwaway RT sends no mail: mbox files under RT's var directory instead of sendmail.
Set(\$MailCommand, 'mbox');
# rt-server's stderr goes to $logfile; Debian's default is syslog at warning.
Set(\$LogToSyslog, undef);
Set(\$LogToSTDERR, '${RT_LOG_LEVEL:-info}');
1;
EOF
  chown root:www-data "$f.tmp"; chmod 640 "$f.tmp"; mv "$f.tmp" "$f"
  mkdir -p "$state"; echo "$port" >"$state/port"
  # Runs as www-data (the owner of RT's Mason cache and of the web server it stands for).
  start-stop-daemon --start --background --make-pidfile --pidfile "$pidfile" \
    --chuid www-data --chdir / --output "$logfile" \
    --startas /usr/bin/perl -- "$rtserver" --host 127.0.0.1 --port "$port" \
    --server Starlet --max-workers "${RT_WORKERS:-3}"
  local i code
  for i in $(seq 1 240); do
    code=$(rest2_code "$port")
    [ "$code" = 401 ] || [ "$code" = 200 ] && { echo "rt.sh: RT on http://127.0.0.1:$port (REST2 at /REST/2.0/)"; return; }
    running || { tail -30 "$logfile" >&2; die "rt-server exited (log: $logfile)"; }
    sleep 0.5
  done
  tail -30 "$logfile" >&2
  die "REST2 did not answer on port $port within 120 s (log: $logfile)"
}

cmd_stop() {
  if running; then
    start-stop-daemon --stop --quiet --pidfile "$pidfile" --retry TERM/20/KILL/5 || true
    echo "rt.sh: stopped"
  fi
  rm -f "$pidfile"
}

cmd_status() {
  if running; then echo "http://127.0.0.1:$(cat "$state/port")"; else echo "not running" >&2; exit 1; fi
}

mkdir -p "$state"
case "${1:-}" in
  install) cmd_install ;;
  init) shift; cmd_init "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install | init PGHOST PGPORT DBNAME | start PORT | stop | status" >&2; exit 2 ;;
esac
