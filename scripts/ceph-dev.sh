#!/usr/bin/env bash
# A single-node Ceph on 127.0.0.1 for the second-tier tests: one mon, one mgr, one OSD on a sparse
# bluestore file, and radosgw serving S3. No systemd, no containers: the daemons run as children of
# nobody, with every file (config, keyrings, data, logs, pids) under the directory given.
#
#   scripts/ceph-dev.sh start [DIR]   start (DIR: a new temp dir when omitted); prints DIR, and
#                                     DIR/s3.env holds REWIND_TIER_ENDPOINT, AWS_ACCESS_KEY_ID,
#                                     AWS_SECRET_ACCESS_KEY, AWS_REGION for the tests
#   scripts/ceph-dev.sh stop DIR      stop the daemons started there (by their pid files)
#   scripts/ceph-dev.sh rgw-stop DIR  stop only radosgw (fault tests); rgw-start DIR starts it again
#                                     (on DIR's port)
#
# Ports: CEPH_DEV_MON_PORT (default 6789, msgr v1 only) and CEPH_DEV_RGW_PORT (default 7480).
# Facts behind the settings (../shared/FIELD-NOTES.md): pool size 1, 8 PGs, autoscale off,
# mon max pg per osd 1000, public and cluster address 127.0.0.1.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
mon_port="${CEPH_DEV_MON_PORT:-6789}"
rgw_port="${CEPH_DEV_RGW_PORT:-7480}"

die() { echo "ceph-dev: $*" >&2; exit 1; }

ceph_() { ceph -c "$dir/ceph.conf" --connect-timeout 20 "$@"; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local i
  for ((i = 0; i < limit * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  die "timed out after ${limit}s waiting for $what (logs in $dir/log)"
}

start_rgw() {
  radosgw -c "$dir/ceph.conf" -n client.rgw.dev --pid-file "$dir/run/rgw.pid" --log-file "$dir/log/rgw.log"
  wait_for 60 "radosgw on port $rgw_port" curl -sf "http://127.0.0.1:$rgw_port/"
}

stop_pidfile() {
  local f=$1
  [[ -f "$f" ]] || return 0
  local pid
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    local i
    for ((i = 0; i < 120; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

case "$cmd" in
  start)
    command -v ceph-mon >/dev/null || die "ceph is not installed (apt-get install -y ceph radosgw)"
    command -v radosgw >/dev/null || die "radosgw is not installed (apt-get install -y radosgw)"
    if [[ -z "$dir" ]]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/ceph-dev.XXXXXX"); fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -e "$dir/ceph.conf" ]] && die "$dir already holds a cluster (stop it and remove the directory first)"
    mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/mgr" "$dir/osd" "$dir/rgw"
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring.\$name
mon data avail warn = 2
mon warn on insecure global id reclaim allowed = false
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
[mon]
mon data = $dir/mon/\$name
keyring = $dir/mon/\$name/keyring
mon cluster log file = $dir/log/cluster.log
[mgr]
mgr data = $dir/mgr/\$name
[osd]
osd data = $dir/osd/\$name
osd objectstore = bluestore
bluestore block path = $dir/osd/\$name.block
bluestore block create = true
bluestore block size = 10737418240
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 134217728
[client.rgw.dev]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
EOF
    conf="$dir/ceph.conf"
    ceph-authtool --create-keyring "$dir/keyring.mon" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$dir/keyring.client.admin" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$dir/keyring.mon" --import-keyring "$dir/keyring.client.admin" >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
    mkdir -p "$dir/mon/mon.a"
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring.mon"
    ceph-mon -c "$conf" -i a --pid-file "$dir/run/mon.pid"
    wait_for 30 "the monitor" ceph_ mon stat

    mkdir -p "$dir/mgr/mgr.x"
    ceph_ auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$dir/keyring.mgr.x"
    ceph-mgr -c "$conf" -i x --pid-file "$dir/run/mgr.pid"

    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_id=$(ceph_ osd new "$osd_uuid")
    mkdir -p "$dir/osd/osd.$osd_id"
    ceph-authtool --create-keyring "$dir/keyring.osd.$osd_id" --gen-key -n "osd.$osd_id" >/dev/null
    ceph_ auth add "osd.$osd_id" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' -i "$dir/keyring.osd.$osd_id" >/dev/null
    ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" --keyring "$dir/keyring.osd.$osd_id" >/dev/null 2>&1 \
      || die "ceph-osd --mkfs failed (see $dir/log/osd.$osd_id.log)"
    ceph-osd -c "$conf" -i "$osd_id" --pid-file "$dir/run/osd.pid"
    wait_for 60 "the OSD to come up" bash -c "ceph -c '$conf' osd stat | grep -q '1 up'"

    ceph_ auth get-or-create client.rgw.dev mon 'allow rw' osd 'allow rwx' mgr 'allow rw' -o "$dir/keyring.client.rgw.dev"
    start_rgw
    access=$(head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
    secret=$(head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n')
    radosgw-admin -c "$conf" -n client.admin user create --uid=rewind --display-name=rewind \
      --access-key="$access" --secret-key="$secret" >/dev/null
    cat >"$dir/s3.env" <<EOF
REWIND_TIER_ENDPOINT=http://127.0.0.1:$rgw_port
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
AWS_REGION=us-east-1
EOF
    echo "$dir"
    ;;
  stop)
    [[ -n "$dir" && -f "$dir/ceph.conf" ]] || die "usage: $0 stop DIR (a directory given to start)"
    for d in rgw osd mgr mon; do stop_pidfile "$dir/run/$d.pid"; done
    ;;
  rgw-stop)
    [[ -n "$dir" && -f "$dir/ceph.conf" ]] || die "usage: $0 rgw-stop DIR"
    stop_pidfile "$dir/run/rgw.pid"
    ;;
  rgw-start)
    [[ -n "$dir" && -f "$dir/ceph.conf" ]] || die "usage: $0 rgw-start DIR"
    # The port radosgw listens on is DIR's (set at start), whatever CEPH_DEV_RGW_PORT says now.
    rgw_port=$(sed -n 's/^rgw frontends = .*endpoint=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/ceph.conf")
    [[ -n "$rgw_port" ]] || die "no radosgw endpoint in $dir/ceph.conf"
    start_rgw
    ;;
  *)
    die "usage: $0 start [DIR] | stop DIR | rgw-stop DIR | rgw-start DIR"
    ;;
esac
