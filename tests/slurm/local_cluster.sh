#!/usr/bin/env bash
# A single-node SLURM cluster on 127.0.0.1 with fake GPUs, for the SLURM tests (tests/test_slurm.py).
#
#   sudo bash tests/slurm/local_cluster.sh start    # install, configure, start (idempotent)
#   bash tests/slurm/local_cluster.sh status        # what runs; exit 0 when the node takes jobs
#   sudo bash tests/slurm/local_cluster.sh stop     # cancel its jobs, stop only what `start` started
#
# Needs root and apt-get (Debian/Ubuntu): `start` installs munge, slurmctld, slurmd, slurm-client,
# slurmdbd, mariadb-server-core and mariadb-client-core (~13 MB), writes /etc/slurm/slurm.conf,
# gres.conf and slurmdbd.conf (the default paths, which the `srun` inside a job reads too), and starts
# by hand (no systemd needed) munged (unless one runs), a private MariaDB server (its own data
# directory, socket and port under PLATONIC_SLURM_DIR, run as the slurm user; a MariaDB of the host is
# left alone), slurmdbd, slurmctld and slurmd, recording the pids of what it started. It refuses to
# touch a SLURM configuration or daemons it did not create. `stop` stops only the recorded daemons and
# removes its configuration (the packages and the accounting database under PLATONIC_SLURM_DIR
# stay). Exit status 3: this machine cannot run the cluster (not root, no Debian packages, another
# SLURM present, a port it needs taken); the reason is on stderr and the tests skip with it.
#
# The cluster: one node (this host, with the CPUs and memory `slurmd -C` finds), one partition,
# PLATONIC_SLURM_GPUS fake GPUs of type `fake` (gres/gpu backed by /dev/null: SLURM schedules them
# and sets CUDA_VISIBLE_DEVICES; nothing computes on them), accounting through slurmdbd with
# associations enforced (`sacct` works; sbatch rejects an account that is not registered): the account
# PLATONIC_SLURM_ACCOUNT is registered, with root (and the sudo user) in it as their default account.
# MinJobAge=3600 keeps finished jobs visible to squeue too (`--slurm-status-command squeue` works).
# A TaskProlog writes one line per job step into the job's output file, e.g.
#   platonic-slurm-task: SLURM_JOB_ID=12 SLURM_STEP_ID=batch CUDA_VISIBLE_DEVICES=0
#
# Settings (environment): PLATONIC_SLURM_DIR [/var/lib/platonic-slurm] state, spool, logs, pid
# records, accounting database; PLATONIC_SLURM_PARTITION [debug]; PLATONIC_SLURM_GPUS [2];
# PLATONIC_SLURM_ACCOUNT [platonic]; PLATONIC_SLURM_DB_PORT [3307] (MariaDB, on 127.0.0.1 only).
set -euo pipefail

CMD="${1:-status}"
STATE="${PLATONIC_SLURM_DIR:-/var/lib/platonic-slurm}"
PARTITION="${PLATONIC_SLURM_PARTITION:-debug}"
GPUS="${PLATONIC_SLURM_GPUS:-2}"
ACCOUNT="${PLATONIC_SLURM_ACCOUNT:-platonic}"
DB_PORT="${PLATONIC_SLURM_DB_PORT:-3307}"
DBD_PORT=6819
CLUSTER=platonic
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
DB="$STATE/db"                # the private MariaDB and slurmdbd: data, socket, logs (owned by slurm)
MARK="# written by platonic-mlip tests/slurm/local_cluster.sh"
OURS="$STATE/run/ours"        # <daemon>.pid: the daemons this script started (stop ends only these)
PACKAGES="munge slurmctld slurmd slurm-client slurmdbd mariadb-server-core mariadb-client-core"
NODE="$(hostname -s 2>/dev/null || uname -n | cut -d. -f1)"

log() { printf '[local_cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
unsupported() { printf 'local_cluster.sh: cannot run a SLURM cluster on this machine: %s\n' "$*" >&2; exit 3; }

wait_for() {  # wait_for <seconds> <what> <command...>: poll every 0.25 s
    local seconds=$1 what=$2; shift 2
    local end=$((SECONDS + seconds))
    while [ "$SECONDS" -lt "$end" ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    log "timed out after ${seconds}s waiting for $what"
    return 1
}

# pid of a daemon this script started, if that process still runs that program (not a reused pid)
our_pid() {
    local name=$1 f="$OURS/$1.pid" pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    echo "$pid"
}

running() {  # any process of that name, ours or not (/proc: minimal images have no pgrep)
    local comm
    for comm in /proc/[0-9]*/comm; do
        [ "$(cat "$comm" 2>/dev/null)" = "$1" ] && return 0
    done
    return 1
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
dbd_up() { timeout 10 sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1; }
ctld_up() { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_ready() { timeout 10 sinfo -h -n "$NODE" -o %t 2>/dev/null | grep -qE '^(idle|mix|mixed|alloc|allocated)$'; }

check_machine() {
    [ "$(id -u)" -eq 0 ] || unsupported "needs root to install Debian packages and start the SLURM daemons (running as $(id -un))"
    for f in "$CONF" "$DBD_CONF"; do
        if [ -e "$f" ] && ! grep -qF "$MARK" "$f"; then
            unsupported "$f exists and was not written by this script; not touching a real SLURM installation"
        fi
    done
    for d in slurmctld slurmd slurmdbd; do
        if running "$d" && ! our_pid "$d" >/dev/null; then
            unsupported "a $d not started by this script is running; not touching it"
        fi
    done
    local port
    for port in "$DB_PORT:mariadbd" "$DBD_PORT:slurmdbd"; do
        if ! our_pid "${port#*:}" >/dev/null && port_open "${port%%:*}"; then
            unsupported "port ${port%%:*} on 127.0.0.1 (for ${port#*:}) is taken by another program"
        fi
    done
}

install_packages() {
    local missing="" p
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null && [ -r /etc/debian_version ] ||
        unsupported "SLURM is not installed and there is no apt-get (Debian packages:$missing)"
    log "installing Debian packages:$missing"
    # keep the packages' maintainer scripts from starting daemons (we start ours by hand); only create
    # the policy file when the host has none, and remove only the one we created
    local own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    local rc=0
    timeout 300 apt-get update -qq >"$STATE/log/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends $missing \
            >>"$STATE/log/apt.log" 2>&1 || rc=$?
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    if [ "$rc" -ne 0 ]; then
        tail -5 "$STATE/log/apt.log" >&2
        unsupported "apt-get could not install$missing (exit $rc; log $STATE/log/apt.log)"
    fi
}

write_configs() {
    local cpus mem spec files="" i
    spec=$(timeout 30 slurmd -C 2>/dev/null | head -1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$spec")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$spec")
    [ -n "$cpus" ] && [ -n "$mem" ] || die "could not read CPUs and RealMemory from 'slurmd -C': $spec"
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/spool" "$STATE/gpu"
    for ((i = 0; i < GPUS; i++)); do   # gres/gpu wants a device file per GPU: /dev/null stands in
        ln -sfn /dev/null "$STATE/gpu/fake$i"
        files="$files,$STATE/gpu/fake$i"
    done
    cat >"$STATE/task_prolog.sh" <<'EOF'
#!/bin/sh
# TaskProlog of the local test cluster: a "print" line goes to the job step's output (the job's log)
echo "print platonic-slurm-task: SLURM_JOB_ID=${SLURM_JOB_ID:-} SLURM_STEP_ID=${SLURM_STEP_ID:-batch} CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"
EOF
    chmod 755 "$STATE/task_prolog.sh"
    local gres_types="" node_gres=""
    if [ "$GPUS" -gt 0 ]; then
        gres_types="GresTypes=gpu"
        node_gres="Gres=gpu:fake:$GPUS"
    fi
    cat >"$STATE/slurm.conf.new" <<EOF
$MARK
# a single-node test cluster on 127.0.0.1; "local_cluster.sh stop" stops it and removes this file
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
TaskProlog=$STATE/task_prolog.sh
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStorageEnforce=associations,limits
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=5
Waittime=0
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $node_gres State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if [ "$GPUS" -gt 0 ]; then
        printf '%s\nAutoDetect=off\nNodeName=%s Name=gpu Type=fake File=%s\n' "$MARK" "$NODE" "${files#,}" \
            >"$STATE/gres.conf.new"
    else
        printf '%s\n' "$MARK" >"$STATE/gres.conf.new"
    fi
    # the accounting database's password: made once, kept with the database (readable by slurm only)
    mkdir -p "$DB/data"
    chown slurm:slurm "$DB" "$DB/data" && chmod 700 "$DB"
    [ -s "$DB/password" ] || (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$DB/password")
    local pass
    pass=$(cat "$DB/password")
    (umask 077 && cat >"$STATE/slurmdbd.conf.new" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=slurm
LogFile=$DB/slurmdbd.log
PidFile=$DB/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$pass
EOF
    )
    chown slurm:slurm "$STATE/slurmdbd.conf.new"   # slurmdbd insists: owned by SlurmUser, mode 600
    # run by the private MariaDB at every start: the database and its user, whatever existed before
    (umask 077 && cat >"$DB/init.sql" <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
    )
    chown slurm:slurm "$DB/password" "$DB/init.sql"
    CHANGED=0 DBD_CHANGED=0
    local pair new dest
    for pair in "slurm.conf.new:$CONF" "gres.conf.new:$GRES_CONF" "slurmdbd.conf.new:$DBD_CONF"; do
        new="$STATE/${pair%%:*}" dest="${pair#*:}"
        if cmp -s "$new" "$dest"; then
            rm -f "$new"
        else
            mv "$new" "$dest"
            if [ "$dest" = "$DBD_CONF" ]; then DBD_CHANGED=1; else CHANGED=1; fi
        fi
    done
}

stop_daemon() {  # stop_daemon <name>: SIGTERM the one we started, wait, SIGKILL as a last resort
    local name=$1 pid
    if pid=$(our_pid "$name"); then
        log "stopping $name (pid $pid)"
        kill "$pid" 2>/dev/null || true
        if ! wait_for 30 "$name to exit" bash -c "[ ! -d /proc/$pid ]"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$OURS/$name.pid"
}

start_munge() {
    if timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then return 0; fi
    if [ ! -s /etc/munge/munge.key ]; then   # Debian's postinst normally creates it
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge && chown munge:munge /run/munge
    log "starting munged"
    timeout 30 runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    wait_for 20 munged bash -c 'timeout 5 munge -n | timeout 5 unmunge' || die "munged did not start"
    cp /run/munge/munged.pid "$OURS/munged.pid"
}

sql_ready() { [ -S "$DB/mysqld.sock" ] && [ -s "$DB/mariadbd.pid" ] && port_open "$DB_PORT"; }

start_accounting() {   # the private MariaDB, slurmdbd, then the cluster, account and users in it
    if [ "$DBD_CHANGED" = 1 ]; then stop_daemon slurmdbd; fi
    if ! our_pid mariadbd >/dev/null; then
        if [ ! -d "$DB/data/mysql" ]; then
            log "creating the accounting database"
            timeout 120 mariadb-install-db --no-defaults --user=slurm --datadir="$DB/data" \
                --auth-root-authentication-method=socket --skip-test-db >"$DB/install.log" 2>&1 ||
                { tail -20 "$DB/install.log" >&2; die "mariadb-install-db failed"; }
        fi
        log "starting mariadbd (127.0.0.1:$DB_PORT)"
        rm -f "$DB/mariadbd.pid"
        # no daemon mode of its own: detached here; its pid file says when it is up
        setsid /usr/sbin/mariadbd --no-defaults --user=slurm --datadir="$DB/data" \
            --socket="$DB/mysqld.sock" --pid-file="$DB/mariadbd.pid" --port="$DB_PORT" \
            --bind-address=127.0.0.1 --skip-name-resolve --log-error="$DB/mariadbd.log" \
            --init-file="$DB/init.sql" --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 \
            --skip-log-bin </dev/null >/dev/null 2>&1 &
        wait_for 60 mariadbd sql_ready || { tail -20 "$DB/mariadbd.log" >&2; die "mariadbd did not start"; }
        cp "$DB/mariadbd.pid" "$OURS/mariadbd.pid"
    fi
    if ! our_pid slurmdbd >/dev/null; then
        log "starting slurmdbd"
        rm -f "$DB/slurmdbd.pid"
        timeout 30 /usr/sbin/slurmdbd   # daemonizes
        wait_for 30 slurmdbd dbd_up || { tail -20 "$DB/slurmdbd.log" >&2; die "slurmdbd did not come up"; }
        wait_for 10 "slurmdbd pid file" bash -c "[ -s $DB/slurmdbd.pid ]" || die "slurmdbd wrote no pid file"
        cp "$DB/slurmdbd.pid" "$OURS/slurmdbd.pid"
    fi
    # sacctmgr -i: no questions; each item only when missing (adding an existing one is an error)
    local users u
    timeout 10 sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" ||
        timeout 30 sacctmgr -i add cluster "$CLUSTER" >/dev/null
    timeout 10 sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" ||
        timeout 30 sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="platonic-mlip tests" \
            Organization=platonic >/dev/null
    users=$(printf '%s\n' root ${SUDO_USER:-} | sort -u)
    for u in $users; do
        timeout 10 sacctmgr -n -P list association cluster="$CLUSTER" account="$ACCOUNT" user="$u" \
            format=user | grep -qx "$u" ||
            timeout 30 sacctmgr -i add user "$u" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
        [ "$(timeout 10 sacctmgr -n -P list user "$u" format=defaultaccount)" = "$ACCOUNT" ] ||
            timeout 30 sacctmgr -i modify user "$u" set DefaultAccount="$ACCOUNT" >/dev/null
    done
}

start_slurm() {
    if [ "$CHANGED" = 1 ]; then   # a new configuration: restart the daemons we run
        for d in slurmd slurmctld; do stop_daemon "$d"; done
    fi
    if ! our_pid slurmctld >/dev/null; then
        log "starting slurmctld"
        # -c: start without old jobs (a job still "running" when the daemons stopped would hold the node)
        timeout 30 /usr/sbin/slurmctld -i -c   # daemonizes: the timeout bounds only the start
        wait_for 30 slurmctld ctld_up || { tail -20 "$STATE/log/slurmctld.log" >&2; die "slurmctld did not come up"; }
        cp "$STATE/run/slurmctld.pid" "$OURS/slurmctld.pid"
    fi
    if ! our_pid slurmd >/dev/null; then
        log "starting slurmd"
        timeout 30 /usr/sbin/slurmd
        wait_for 10 slurmd bash -c "[ -s $STATE/run/slurmd.pid ]" || { tail -20 "$STATE/log/slurmd.log" >&2; die "slurmd did not start"; }
        cp "$STATE/run/slurmd.pid" "$OURS/slurmd.pid"
    fi
    if ! wait_for 30 "node $NODE to take jobs" node_ready; then
        timeout 10 scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        wait_for 15 "node $NODE to take jobs" node_ready || {
            timeout 10 sinfo -R >&2 || true
            tail -20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2
            die "node $NODE is not taking jobs"
        }
    fi
}

cancel_jobs() {
    our_pid slurmctld >/dev/null || return 0
    local jobs
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    [ -z "$jobs" ] && return 0
    log "cancelling jobs: $(echo $jobs)"
    timeout 20 scancel $jobs || true
    wait_for 30 "jobs to end" bash -c '[ -z "$(timeout 10 squeue -h -t running,pending,completing -o %i)" ]' || true
}

case "$CMD" in
    start)
        T0=$SECONDS
        check_machine
        mkdir -p "$STATE/run" "$STATE/log" "$OURS"
        install_packages
        write_configs
        start_munge
        start_accounting
        start_slurm
        log "ready in $((SECONDS - T0)) s: $(timeout 10 sinfo -h -o 'partition %P, %D node %N (%c CPUs, %m MB, gres %G), state %t')"
        ;;
    stop)
        cancel_jobs
        for d in slurmd slurmctld slurmdbd mariadbd munged; do stop_daemon "$d"; done
        # without a running controller, every SLURM client call (and so every Snakemake start, whose
        # SLURM plugin asks `scontrol show config`) would wait ~9 s for it: remove our configuration
        if ! running slurmctld && ! running slurmd && ! running slurmdbd; then
            for f in "$CONF" "$GRES_CONF" "$DBD_CONF"; do
                if [ -e "$f" ] && grep -qF "$MARK" "$f"; then rm -f "$f"; fi
            done
        fi
        ;;
    status)
        for d in munged mariadbd slurmdbd slurmctld slurmd; do
            if pid=$(our_pid "$d"); then
                echo "$d: running (pid $pid, started by this script)"
            elif running "$d"; then
                echo "$d: running (not started by this script)"
            else
                echo "$d: not running"
            fi
        done
        if command -v sinfo >/dev/null && ctld_up && node_ready; then
            timeout 10 sinfo
            exit 0
        fi
        echo "cluster: not ready"
        exit 1
        ;;
    *)
        echo "usage: $0 start|status|stop" >&2
        exit 2
        ;;
esac
