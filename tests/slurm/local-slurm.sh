#!/usr/bin/env bash
# A real single-node Slurm on localhost, for the tests marked `slurm` (and for trying the Slurm profile).
#
#   tests/slurm/local-slurm.sh start    # install (Debian packages) if needed, start, wait until the node is idle
#   tests/slurm/local-slurm.sh status
#   tests/slurm/local-slurm.sh stop     # cancel every job, stop every daemon
#
# Idempotent: `start` on a running cluster returns at once. Runs as root (a CI container or a throw-away VM),
# without systemd: the daemons are started by hand. What it sets up:
#   - munge (authentication), a private MariaDB on 127.0.0.1:$CCRK_SLURM_DB_PORT and slurmdbd, so that
#     `sacct` works - without accounting submitit cannot tell a cancelled job from a running one;
#   - slurmctld + slurmd for one node "localhost" with all CPUs and $CCRK_SLURM_GPUS fake GPUs (character
#     devices, so GPU requests schedule and jobs get CUDA_VISIBLE_DEVICES);
#   - fast requeue (cred_expire=5, a 2 s scheduler interval), so a requeued job restarts in seconds.
# State, logs and the fake devices live under $CCRK_SLURM_DIR; the config goes to /etc/slurm.
set -euo pipefail

STATE=${CCRK_SLURM_DIR:-/tmp/ccrk-slurm}
GPUS=${CCRK_SLURM_GPUS:-2}
DB_PORT=${CCRK_SLURM_DB_PORT:-3306}
CLUSTER=ccrk
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)

log() { printf '[local-slurm] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"; }

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "no apt-get: install ${missing[*]} by hand (Debian/Ubuntu packages)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1 || {
        apt-get update -q >>"$STATE/apt.log" 2>&1
        apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1 || {
            tail -20 "$STATE/apt.log" >&2; die "apt-get install failed (log: $STATE/apt.log)"; }
    }
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    for _ in $(seq $((limit * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    die "timed out after ${limit}s waiting for $what (logs in $STATE/log)"
}

node_idle() { sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

write_config() {
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p /etc/slurm "$STATE"/{log,spool/ctld,spool/d,run,dev,mysql}
    for i in $(seq 0 $((GPUS - 1))); do [ -c "$STATE/dev/gpu$i" ] || mknod "$STATE/dev/gpu$i" c 1 3; done
    cat >/etc/slurm/slurm.conf <<EOF
# Written by tests/slurm/local-slurm.sh: a one-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=5
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
KillWait=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    echo "Name=gpu File=$STATE/dev/gpu[0-$((GPUS - 1))]" >/etc/slurm/gres.conf
    cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=ccrk
StorageLoc=slurm_acct_db
EOF
    chmod 600 /etc/slurm/slurmdbd.conf
}

start_munge() {
    alive "$STATE/run/munged.pid" && return 0
    install -d -o munge -g munge -m 0755 /run/munge
    [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    su -s /bin/sh munge -c "munged --pid-file=/run/munge/munged.pid" || die "munged did not start"
    cp /run/munge/munged.pid "$STATE/run/munged.pid"
}

start_db() {
    local sock=$STATE/run/mysqld.sock
    if ! alive "$STATE/run/mysqld.pid"; then
        if [ ! -d "$STATE/mysql/mysql" ]; then
            mariadb-install-db --user=root --datadir="$STATE/mysql" --auth-root-authentication-method=socket \
                >"$STATE/log/mysql-install.log" 2>&1 || die "mariadb-install-db failed ($STATE/log/mysql-install.log)"
        fi
        (mariadbd --user=root --datadir="$STATE/mysql" --socket="$sock" --port="$DB_PORT" --bind-address=127.0.0.1 \
            --pid-file="$STATE/run/mysqld.pid" --log-error="$STATE/log/mysqld.log" --innodb-buffer-pool-size=64M \
            >/dev/null 2>&1 &)
        wait_for 60 "MariaDB" mariadb --socket="$sock" -uroot -e "SELECT 1"
    fi
    mariadb --socket="$sock" -uroot -e "
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'ccrk';
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'ccrk';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start() {
    need_root
    mkdir -p "$STATE"
    if alive "$STATE/run/slurmctld.pid" && alive "$STATE/run/slurmd.pid" && node_idle; then
        log "already running"; return 0
    fi
    local t0=$SECONDS
    install_packages
    write_config
    start_munge
    start_db
    if ! alive "$STATE/run/slurmdbd.pid"; then
        slurmdbd || die "slurmdbd did not start ($STATE/log/slurmdbd.log)"
        wait_for 30 "slurmdbd" sacctmgr -n list cluster
    fi
    sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    alive "$STATE/run/slurmctld.pid" || slurmctld || die "slurmctld did not start ($STATE/log/slurmctld.log)"
    wait_for 30 "slurmctld" scontrol ping
    alive "$STATE/run/slurmd.pid" || slurmd -N localhost || die "slurmd did not start ($STATE/log/slurmd.log)"
    wait_for 60 "the node to be idle" node_idle
    scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
    log "up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %D %T %G')"
}

stop_pid() {  # stop_pid FILE NAME
    if alive "$1"; then
        local pid; pid=$(cat "$1"); kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        log "stopped $2"
    fi
    rm -f "$1"
}

stop() {
    need_root
    if command -v scancel >/dev/null && alive "$STATE/run/slurmctld.pid"; then
        scancel --user=root 2>/dev/null || true
        for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
    fi
    stop_pid "$STATE/run/slurmd.pid" slurmd
    stop_pid "$STATE/run/slurmctld.pid" slurmctld
    stop_pid "$STATE/run/slurmdbd.pid" slurmdbd
    stop_pid "$STATE/run/mysqld.pid" mariadb
    stop_pid "$STATE/run/munged.pid" munged
}

status() {
    for d in munged mysqld slurmdbd slurmctld slurmd; do
        if alive "$STATE/run/$d.pid"; then echo "$d: running (pid $(cat "$STATE/run/$d.pid"))"; else echo "$d: stopped"; fi
    done
    command -v sinfo >/dev/null && alive "$STATE/run/slurmctld.pid" && sinfo -N -o '%N %T %c %G' || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
