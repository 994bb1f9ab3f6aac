#!/usr/bin/env bash
# A real one-node SLURM cluster with accounting, on this machine, for tests (run as root).
#
#   bash tests/slurm_cluster.sh start    # installs missing Debian packages, starts it, waits
#                                        # till the node is idle and sacct answers
#   bash tests/slurm_cluster.sh status   # exit 0 if its cluster answers (sinfo), else 1
#   bash tests/slurm_cluster.sh stop     # cancels its jobs, stops exactly the daemons it started
#
# Environment: SLURM_TEST_DIR (state folder), SLURM_TEST_PORT (slurmctld's port, default SLURM's
# 6817; slurmd and slurmdbd take the next two: a second cluster needs other ports and
# SLURM_CONF exported), SLURM_TEST_TIMEOUT (seconds to come up, default 60).
#
# Everything lives in one state folder ($SLURM_TEST_DIR, default /tmp/deep-vs-wide-slurm):
# etc/ (slurm.conf, slurmdbd.conf), munge/ (key and socket), mysql/ (MariaDB's datadir),
# run/ (sockets, the daemons' own pid files), pids/ (the pids this script started and stops),
# spool/ (slurmctld's saved state, slurmd's spool) and log/. The daemons run in the foreground
# of their own session (setsid), by hand: no systemd, no init scripts, no system-wide munged or
# MariaDB. Daemons and commands of this script read $SLURM_CONF=<state>/etc/slurm.conf; for
# everyone else (sbatch in a test, submitit) /etc/slurm/slurm.conf is made a symlink to it, but
# only where no /etc/slurm/slurm.conf exists (otherwise export SLURM_CONF, as start says).
#
# Settings that are not SLURM's defaults, and why:
# - munged and MariaDB are private, so nothing of the system's own is touched: munged on a socket
#   in the state folder with its own key (AuthInfo=socket=... tells the daemons where;
#   AccountingStoragePass=<that socket> tells sacct/sacctmgr, whose connection to slurmdbd
#   ignores AuthInfo in 22.05); mariadbd with --skip-networking, on a unix socket in the state
#   folder (slurmdbd's libmariadb finds it through MYSQL_UNIX_PORT), InnoDB buffer pool 512M and
#   lock wait 900 s (below half of slurm's recommendation slurmdbd logs an error).
# - SlurmctldHost/NodeAddr are 127.0.0.1, NodeName is `hostname -s` (slurmd finds its node by
#   that name, which must resolve: added to /etc/hosts as 127.0.0.1 only where it does not).
# - ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, JobAcctGatherType=jobacct_gather/none:
#   no cgroups (a container or VM may not delegate them); jobs are tracked by parent pid.
# - SelectType=select/cons_tres with CR_Core_Memory: jobs share the node by core and memory, so
#   several one-CPU jobs run at once; DefMemPerCPU splits RealMemory (95% of MemTotal) evenly.
# - ReturnToService=2: after a stop/start the node comes back idle rather than DOWN.
# - KillWait=5: a job past its time limit or cancelled gets SIGKILL 5 s after SIGTERM (30 s by
#   default). OverTimeLimit=0: no grace minutes; slurmctld checks time limits every 30 s, so a
#   --time=1 job ends TIMEOUT 60 to 90 s after it starts.
# - SchedulerParameters: batch_sched_delay=0 schedules a submitted batch job at once (by default
#   slurmctld may hold it up to 3 s, to batch submissions); sched_interval=5,bf_interval=5 look at
#   pending jobs (array tasks waiting for a CPU) every 5 s rather than every 60/30 s.
# - AuthInfo=...,cred_expire=10: a requeued job may start again 11 s later (SLURM holds it for
#   the job credential's lifetime, 120 s by default); launching a job takes well under 10 s.
# - JobRequeue=1 (scontrol requeue, submitit's preemption path), MaxArraySize=10001 and
#   MaxJobCount=50000 (big arrays), MailProg=/bin/true (no mail).
# - No AccountingStorageEnforce: any user's job is accepted; root has an association anyway.
# Harmless in the logs: "mpi/pmix... can not load PMIx library" (slurmd loads every MPI plugin)
# and, at a first start, "Could not open ... state file" (there is no saved state yet).
set -euo pipefail

STATE=${SLURM_TEST_DIR:-/tmp/deep-vs-wide-slurm}
STATE=${STATE%/}
TIMEOUT=${SLURM_TEST_TIMEOUT:-60} # seconds for the daemons to come up, once packages are in
CLUSTER=dvwtest
PARTITION=cpu
HOST=$(hostname -s)
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd) # start order; stop goes backwards
# slurmctld's port; slurmd and slurmdbd listen on the next two.
PORT=${SLURM_TEST_PORT:-6817}
SLURM_PORTS=("$PORT" $((PORT + 1)) $((PORT + 2)))

export SLURM_CONF=$STATE/etc/slurm.conf
MUNGE_SOCKET=$STATE/munge/munge.socket.2
DB_SOCKET=$STATE/run/mysqld.sock
ME="${SLURM_TEST_DIR:+SLURM_TEST_DIR=$STATE }bash tests/slurm_cluster.sh"

say() { echo "slurm: $*"; }
die() {
    echo "slurm: $*" >&2
    exit 1
}

# -- pids ----------------------------------------------------------------------------------

pid_of() { cat "$STATE/pids/$1.pid" 2>/dev/null || true; }

# Whether the recorded pid of daemon $1 is alive and still that daemon (not a recycled pid).
is_running() {
    local pid
    pid=$(pid_of "$1")
    [[ -n $pid && -d /proc/$pid ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] || return 1
    ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# Start daemon $1 (command: the rest) in its own session, in the foreground; the process
# writes its own pid before exec, so the recorded pid is the daemon's whatever setsid does.
launch() {
    local name=$1
    shift
    rm -f "$STATE/pids/$name.pid"
    # shellcheck disable=SC2016  # $$ and $0 are the inner shell's
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$STATE/pids/$name.pid" "$@" \
        >>"$STATE/log/$name.out" 2>&1 </dev/null &
    local t=0 # until the pid is written and exec'd into the daemon (or 5 s)
    until is_running "$name"; do
        sleep 0.05
        ((++t < 100)) || die "$name did not start (see $STATE/log/$name.out)"
    done
}

# Stop daemon $1 if it is ours: SIGTERM, then SIGKILL after 20 s.
stop_daemon() {
    local name=$1 pid i
    pid=$(pid_of "$name")
    if is_running "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
            is_running "$name" || break
            sleep 0.1
        done
        if is_running "$name"; then
            say "$name (pid $pid) ignored SIGTERM for 20 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$STATE/pids/$name.pid"
}

# -- waiting -------------------------------------------------------------------------------

DEADLINE=0

# Wait until command (the rest) succeeds; past the deadline, stop what was started and fail
# with the tail of daemon $1's log.
wait_for() {
    local name=$1 what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ! is_running "$name" || ((SECONDS > DEADLINE)); then
            local log=$STATE/log/$name.log
            [[ -s $log ]] || log=$STATE/log/$name.out
            echo "slurm: $what not ready after $SECONDS s ($name $(is_running "$name" &&
                echo running || echo exited)); last lines of $log:" >&2
            tail -n 15 "$log" >&2 || true
            stop_all >/dev/null
            exit 1
        fi
        sleep 0.2
    done
}

# -- setup ---------------------------------------------------------------------------------

install_missing_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return
    say "installing ${missing[*]}"
    # Debian's postinst scripts start the system's own daemons where an init system runs;
    # policy-rc.d forbids that for the duration of the install.
    local policy=/usr/sbin/policy-rc.d made_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    local ok=1
    if ! apt_install "${missing[@]}"; then
        apt-get update -q >/dev/null && apt_install "${missing[@]}" || ok=
    fi
    [[ -z $made_policy ]] || rm -f "$policy"
    [[ -n $ok ]] || die "apt-get install ${missing[*]} failed"
}

apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }

# slurmd finds its NodeName by `hostname -s`, which must resolve.
ensure_host_resolves() {
    getent hosts "$HOST" >/dev/null && return
    echo "127.0.0.1 $HOST" >>/etc/hosts
    say "added '127.0.0.1 $HOST' to /etc/hosts"
}

check_ports_free() {
    local port
    for port in "${SLURM_PORTS[@]}"; do
        if ss -Hltn "sport = :$port" | grep -q .; then
            die "port $port is taken (another SLURM? set SLURM_TEST_PORT):" \
                "$(ss -Hltnp "sport = :$port")"
        fi
    done
}

make_folders() {
    mkdir -p "$STATE"/{etc,munge,mysql,run,pids,log,spool/slurmctld,spool/slurmd}
    # Other users' sbatch reads slurm.conf and talks to munged through the socket in munge/.
    chmod 755 "$STATE" "$STATE"/{etc,munge,run,log,spool}
    chmod 700 "$STATE/mysql" "$STATE/pids"
}

write_munge_key() {
    [[ -s $STATE/munge/munge.key ]] && return
    mungekey --create --keyfile="$STATE/munge/munge.key"
    chmod 600 "$STATE/munge/munge.key"
}

db_password() {
    [[ -s $STATE/etc/db.pass ]] ||
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/etc/db.pass")
    cat "$STATE/etc/db.pass"
}

init_mariadb() {
    [[ -d $STATE/mysql/mysql ]] && return
    mariadb-install-db --no-defaults --user=root --datadir="$STATE/mysql" \
        --auth-root-authentication-method=socket --skip-test-db \
        >>"$STATE/log/mariadbd.out" 2>&1 ||
        die "mariadb-install-db failed (see $STATE/log/mariadbd.out)"
}

# RealMemory a bit below the machine's memory (slurmd drains a node that has less than its
# RealMemory); the topology is slurmd's own (slurmd -C), CPUs as nproc sees them.
write_slurm_conf() {
    local mem_mb real cpus topology
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    real=$((mem_mb * 95 / 100))
    cpus=$(nproc)
    local hw
    hw=$(slurmd -C 2>/dev/null | head -n 1 || true)
    topology=$(grep -o 'Boards=.* ThreadsPerCore=[0-9]*' <<<"$hw" || true)
    [[ $(grep -o 'CPUs=[0-9]*' <<<"$hw") == "CPUs=$cpus" ]] || topology=
    cat >"$SLURM_CONF" <<EOF
# Written by tests/slurm_cluster.sh (rewritten at each start): see its header for the settings.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
SlurmctldPort=${SLURM_PORTS[0]}
SlurmdPort=${SLURM_PORTS[1]}
StateSaveLocation=$STATE/spool/slurmctld
SlurmdSpoolDir=$STATE/spool/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((real / cpus))
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=${SLURM_PORTS[2]}
AccountingStoragePass=$MUNGE_SOCKET
JobCompType=jobcomp/none
ReturnToService=2
KillWait=5
OverTimeLimit=0
InactiveLimit=0
JobRequeue=1
MaxArraySize=10001
MaxJobCount=50000
SchedulerParameters=batch_sched_delay=0,sched_interval=5,bf_interval=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus ${topology} RealMemory=$real State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 644 "$SLURM_CONF"
}

# slurmdbd refuses a slurmdbd.conf that others can read (it holds the database password).
write_slurmdbd_conf() {
    local conf=$STATE/etc/slurmdbd.conf pass
    pass=$(db_password)
    (umask 077 && cat >"$conf") <<EOF
# Written by tests/slurm_cluster.sh (rewritten at each start).
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdPort=${SLURM_PORTS[2]}
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$pass
StorageLoc=slurm_acct_db
EOF
    chown root:root "$conf"
    chmod 600 "$conf"
}

# Only where there is none: plain sbatch/sacct (a test, submitit) then find this cluster.
link_etc_slurm_conf() {
    local etc=/etc/slurm/slurm.conf
    if [[ ! -e $etc && ! -L $etc ]]; then
        mkdir -p /etc/slurm
        ln -s "$SLURM_CONF" "$etc"
        say "$etc -> $SLURM_CONF (symlink written, as there was none)"
    fi
}

etc_conf_is_ours() {
    [[ $(readlink -f /etc/slurm/slurm.conf 2>/dev/null) == "$(readlink -f "$SLURM_CONF")" ]]
}

# -- daemons -------------------------------------------------------------------------------

db() { mariadb --no-defaults --socket="$DB_SOCKET" -u root "$@"; }

start_munged() {
    # --force: munged would refuse a state folder below a group- or world-writable folder.
    launch munged munged --foreground --force --socket="$MUNGE_SOCKET" \
        --key-file="$STATE/munge/munge.key" --pid-file="$STATE/run/munged.pid" \
        --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munged.seed"
    wait_for munged "munged" bash -c "munge -n -S '$MUNGE_SOCKET' | unmunge -S '$MUNGE_SOCKET'"
}

start_mariadbd() {
    # The smallest InnoDB sizes and lock wait slurmdbd does not log an error about.
    launch mariadbd mariadbd --no-defaults --user=root --datadir="$STATE/mysql" \
        --socket="$DB_SOCKET" --skip-networking --pid-file="$STATE/run/mariadbd.pid" \
        --log-error="$STATE/log/mariadbd.log" --tmpdir="$STATE/run" \
        --innodb-buffer-pool-size=512M --innodb-log-file-size=64M \
        --innodb-lock-wait-timeout=900 --performance-schema=OFF --skip-log-bin
    wait_for mariadbd "MariaDB" db -e 'SELECT 1'
    local pass
    pass=$(db_password)
    db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
        ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
    # libmariadb connects to "localhost" through $MYSQL_UNIX_PORT.
    launch slurmdbd env MYSQL_UNIX_PORT="$DB_SOCKET" slurmdbd -D
    wait_for slurmdbd "slurmdbd" sacctmgr -n show cluster
}

# The cluster, and root's association (sacctmgr adds it with the cluster; added if missing).
register_cluster() {
    if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    if ! sacctmgr -n -P show assoc cluster="$CLUSTER" user=root format=user | grep -qx root; then
        sacctmgr -i add account root cluster="$CLUSTER" >/dev/null 2>&1 || true
        sacctmgr -i add user root account=root cluster="$CLUSTER" >/dev/null
    fi
}

node_idle() { [[ $(sinfo -h -n "$HOST" -o %t) == idle ]]; }

# A test cluster starts empty: jobs an earlier life left in slurmctld's saved state are cancelled
# (by %i: an array task requeued once is refused under its own job id).
start_slurmctld() {
    launch slurmctld slurmctld -D
    wait_for slurmctld "slurmctld" scontrol ping
    squeue -h -o %i | xargs -r scancel 2>/dev/null || true
}

# Job steps that outlived the daemons (a job that ignored SIGTERM when the cluster stopped) run
# on unseen: end them, and every process below them.
kill_job_steps() {
    local all frontier
    all=$(pgrep -f '^slurmstepd:' || true)
    frontier=$all
    while [[ -n $frontier ]]; do
        frontier=$(for p in $frontier; do pgrep -P "$p" || true; done)
        all="$all $frontier"
    done
    if [[ -n ${all// /} ]]; then
        # shellcheck disable=SC2086  # a list of pids
        kill -KILL $all 2>/dev/null || true
    fi
}

start_slurmd() {
    launch slurmd slurmd -D
    wait_for slurmd "node $HOST idle" node_idle
}

# -- commands ------------------------------------------------------------------------------

all_running() {
    local d
    for d in "${DAEMONS[@]}"; do is_running "$d" || return 1; done
}

# Without its slurm.conf, sinfo would retry for 60 s before it fails.
answers() { [[ -f $SLURM_CONF ]] && timeout 20 sinfo -h >/dev/null 2>&1; }

# Cancel this cluster's jobs (their slurmstepd would outlive slurmd), then stop the daemons.
stop_all() {
    local i d
    if is_running slurmctld && answers && [[ -n $(squeue -h -o %i) ]]; then
        squeue -h -o %i | xargs -r scancel 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.2
        done
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        d=${DAEMONS[i]}
        stop_daemon "$d"
    done
    kill_job_steps
}

cmd_stop() {
    [[ -d $STATE/pids ]] || {
        say "nothing to stop ($STATE/pids does not exist)"
        return
    }
    stop_all
    say "stopped (state kept in $STATE)"
}

cmd_status() {
    if answers; then
        say "cluster $CLUSTER answers (SLURM_CONF=$SLURM_CONF)"
    else
        say "no cluster answers at SLURM_CONF=$SLURM_CONF"
        return 1
    fi
}

cmd_start() {
    [[ $(id -u) == 0 ]] || die "start needs root"
    if all_running && answers; then
        say "cluster $CLUSTER already up (state in $STATE); stop with: $ME stop"
        return
    fi
    [[ -d $STATE/pids ]] && stop_all # some of ours died: start all afresh
    kill_job_steps
    install_missing_packages
    SECONDS=0
    DEADLINE=$TIMEOUT
    ensure_host_resolves
    check_ports_free
    make_folders
    write_munge_key
    init_mariadb
    write_slurm_conf
    write_slurmdbd_conf
    start_munged
    start_mariadbd
    start_slurmdbd
    register_cluster
    start_slurmctld
    start_slurmd
    wait_for slurmdbd "sacct" sacct -n -X
    link_etc_slurm_conf
    local cpus mem
    read -r cpus mem < <(sinfo -h -n "$HOST" -o '%c %m')
    say "one-node cluster $HOST with $cpus CPUs and $mem MB up (accounting on) in $SECONDS s;" \
        "stop with: $ME stop"
    etc_conf_is_ours ||
        say "/etc/slurm/slurm.conf is not this cluster's: export SLURM_CONF=$SLURM_CONF"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) die "usage: $ME start|stop|status (state folder: $STATE)" ;;
esac
