#!/usr/bin/env bash
# A real single-node SLURM (Debian's slurm-wlm 22.05 + munge) on loopback, for
# testing Hydra's submitit launcher end to end.  No systemd: every daemon is
# started by hand and stopped by its pid file (never by process name, other
# people may run their own daemons on the same machine).
#
# Usage:
#   tools/slurm/loopback.sh install            # apt-get the packages if missing (root)
#   tools/slurm/loopback.sh start [STATE_DIR]  # write slurm.conf, start munged/slurmctld/slurmd
#   eval "$(tools/slurm/loopback.sh env [STATE_DIR])"   # SLURM_CONF + sacct stand-in on PATH
#   tools/slurm/loopback.sh status [STATE_DIR]
#   tools/slurm/loopback.sh stop [STATE_DIR]   # cancel jobs, stop daemons, wait for the pids
#   tools/slurm/loopback.sh clean [STATE_DIR]  # stop, then delete STATE_DIR
#
# STATE_DIR defaults to $CALO_SLURM_STATE_DIR or /tmp/calo_calib_slurm.
# Tunables (environment): CALO_SLURM_START_TIMEOUT (s, default 60),
# CALO_SLURM_CTLD_PORT (6817), CALO_SLURM_SLURMD_PORT (6818),
# CALO_SLURM_CRED_EXPIRE (s, default 10: delay before a requeued job restarts).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The daemons and munged live in /usr/sbin, which a non-login PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"
DEFAULT_STATE_DIR="${CALO_SLURM_STATE_DIR:-/tmp/calo_calib_slurm}"
START_TIMEOUT="${CALO_SLURM_START_TIMEOUT:-60}"
CTLD_PORT="${CALO_SLURM_CTLD_PORT:-6817}"
SLURMD_PORT="${CALO_SLURM_SLURMD_PORT:-6818}"
CRED_EXPIRE="${CALO_SLURM_CRED_EXPIRE:-10}"
# Slurm silently falls back to 120 s below 5 (only a log line says so).
[[ "$CRED_EXPIRE" =~ ^[0-9]+$ ]] && ((CRED_EXPIRE >= 5)) || { echo "CALO_SLURM_CRED_EXPIRE must be an integer >= 5" >&2; exit 2; }
# munged's default socket/pid file: Debian's client libraries look there.
MUNGE_RUN_DIR=/run/munge
MUNGE_PIDFILE="$MUNGE_RUN_DIR/munged.pid"
MARKER=".calo_calib_slurm"  # proves a directory is ours before `clean` deletes it

log() { echo "[slurm-loopback] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

set_paths() {
    STATE_DIR="$(realpath -m "${1:-$DEFAULT_STATE_DIR}")"
    CONF="$STATE_DIR/slurm.conf"
    RUN_DIR="$STATE_DIR/run"
    LOG_DIR="$STATE_DIR/log"
    CTLD_PIDFILE="$RUN_DIR/slurmctld.pid"
    SLURMD_PIDFILE="$RUN_DIR/slurmd.pid"
    MUNGE_OWNED="$RUN_DIR/munged.owned"
    # Every client command (sinfo, scancel, ...) and the daemons must read our
    # private config; there is no /etc/slurm/slurm.conf on purpose.
    export SLURM_CONF="$CONF"
}

# A pid is "alive" if it exists and is not a zombie: PID 1 in a container is
# often not a real init and never reaps the daemonised processes we kill.
pid_alive() {
    local pid="$1" st
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/stat" ]] || return 1
    st="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ -n "$st" && "$st" != "Z" && "$st" != "X" ]]
}

# The pid from PIDFILE if it is alive *and* runs the expected program (guards
# against a stale pid file whose pid was recycled by something else).
pid_from_file() {
    local pidfile="$1" comm="$2" pid
    [[ -s "$pidfile" ]] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    pid_alive "$pid" || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$comm" ]] || return 1
    echo "$pid"
}

wait_gone() {  # wait_gone PID SECONDS
    local pid="$1" deadline=$((SECONDS + $2))
    while pid_alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# TERM, wait, then KILL: slurmctld saves its state on TERM (can take a couple
# of seconds); a restart while the old one still holds the port would fail.
stop_pid() {  # stop_pid NAME PID
    local name="$1" pid="$2"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 20; then
        log "$name did not exit after TERM, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "$name (pid $pid) would not die"
    fi
}

port_in_use() {  # bash's /dev/tcp: a connect succeeds only if someone listens
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

need_root() { [[ "$(id -u)" == 0 ]] || die "must run as root (slurmd runs jobs as their owner)"; }

cmd_install() {
    need_root
    local missing=0 c
    for c in slurmctld slurmd sbatch scontrol munged; do
        command -v "$c" >/dev/null 2>&1 || missing=1
    done
    if ((missing == 0)); then
        log "slurm and munge already installed: $(slurmctld -V 2>/dev/null || true)"
        return 0
    fi
    # Without systemd, the packages' init scripts could try to start the
    # daemons with a config we do not use; deny that through policy-rc.d (the
    # usual container trick) unless the machine already has one.
    local policy=/usr/sbin/policy-rc.d
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local pkgs=(slurmctld slurmd slurm-client munge)
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get install ${pkgs[*]}"
    if ! apt-get install -y --no-install-recommends "${pkgs[@]}"; then
        # Stale or missing package lists are the usual cause.
        apt-get update
        apt-get install -y --no-install-recommends "${pkgs[@]}"
    fi
}

# Real node facts: NodeName must be `hostname -s` (slurmd finds itself by it);
# RealMemory must not exceed what slurmd detects or the node is INVALID.
write_conf() {  # write_conf FILE
    local out="$1" host cpus mem
    host="$(hostname -s)"
    cpus="$(nproc)"
    mem="$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)"
    [[ -n "$mem" ]] || mem="$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)"
    cat >"$out" <<EOF
# Generated by tools/slurm/loopback.sh: a single-node SLURM on loopback.
ClusterName=calo_loopback
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire (default 120 s) is also how long a requeued job must wait before
# it may start again; submitit's preemption path ("scontrol requeue") would sit
# PENDING (Reason=BeginTime) for 2 minutes.  Launch credentials on loopback are
# used within a second, so a short lifetime is safe.
AuthInfo=cred_expire=${CRED_EXPIRE}
MpiDefault=none
# No cgroups in the container: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
# No slurmdbd: no accounting.  Finished jobs go to a text log instead, which the
# sacct stand-in in ${STATE_DIR}/bin reads once the controller forgets a job.
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOG_DIR}/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Schedule every second (default 60 s) so tests do not wait.
SchedulerParameters=sched_interval=1
# A node that was DOWN (e.g. slurmd restarted) comes back when it registers.
ReturnToService=2
# Keep finished jobs visible to scontrol (and so to the sacct stand-in) 10 min.
MinJobAge=600
KillWait=5
# Batch jobs may be requeued (submitit's preemption handler runs
# "scontrol requeue"); 1 is Slurm's default, set explicitly to document it.
JobRequeue=1
MailProg=/bin/true
StateSaveLocation=${STATE_DIR}/state
SlurmdSpoolDir=${STATE_DIR}/spool
SlurmctldPidFile=${CTLD_PIDFILE}
SlurmdPidFile=${SLURMD_PIDFILE}
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_ok; then
        # Already served (by us earlier or by someone else): reuse, and do not
        # claim ownership so `stop` leaves a munged it did not start alone.
        return 0
    fi
    [[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
    mkdir -p "$MUNGE_RUN_DIR"
    chown munge:munge "$MUNGE_RUN_DIR"
    chmod 0755 "$MUNGE_RUN_DIR"
    # munged refuses to run as root; it daemonises and writes its pid file.
    runuser -u munge -- /usr/sbin/munged
    local deadline=$((SECONDS + 10))
    until munge_ok; do
        ((SECONDS < deadline)) || die "munged did not come up (try: runuser -u munge -- /usr/sbin/munged -F)"
        sleep 0.2
    done
    cat "$MUNGE_PIDFILE" >"$MUNGE_OWNED"
    log "munged started (pid $(cat "$MUNGE_PIDFILE"))"
}

daemons_running() {
    pid_from_file "$CTLD_PIDFILE" slurmctld >/dev/null && pid_from_file "$SLURMD_PIDFILE" slurmd >/dev/null
}

node_state() { sinfo -h -N -o '%t' 2>/dev/null | head -n1; }

install_sacct() {
    mkdir -p "$STATE_DIR/bin"
    # A copy (not a symlink) so the state dir keeps working if the checkout moves.
    install -m 0755 "$SCRIPT_DIR/sacct_standin.py" "$STATE_DIR/bin/sacct"
}

print_logs() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
        log "---- tail of $f ----"
        tail -n 30 "$f" >&2 2>/dev/null || log "(missing)"
    done
    log "---- sinfo -R ----"
    sinfo -R >&2 2>/dev/null || true
}

cmd_start() {
    need_root
    set_paths "${1:-}"
    command -v slurmctld >/dev/null 2>&1 || die "slurm is not installed: run '$0 install' first"
    mkdir -p "$STATE_DIR" "$RUN_DIR" "$LOG_DIR" "$STATE_DIR/state" "$STATE_DIR/spool" "$STATE_DIR/bin"
    touch "$STATE_DIR/$MARKER"
    local new_conf="$STATE_DIR/slurm.conf.new"
    write_conf "$new_conf"

    if daemons_running && cmp -s "$new_conf" "$CONF" && munge_ok; then
        case "$(node_state)" in
            idle|mix|alloc|comp)
                rm -f "$new_conf"
                install_sacct
                log "already running (node $(node_state)), nothing to do"
                return 0 ;;
        esac
    fi
    # Anything half-running or configured differently: restart cleanly.
    cmd_stop "$STATE_DIR" keep-munge
    mv "$new_conf" "$CONF"
    install_sacct

    for port in "$CTLD_PORT" "$SLURMD_PORT"; do
        port_in_use "$port" && die "port $port is in use (another slurm?); set CALO_SLURM_CTLD_PORT/CALO_SLURM_SLURMD_PORT"
    done
    start_munge

    rm -f "$CTLD_PIDFILE" "$SLURMD_PIDFILE"
    local t0=$SECONDS
    # Both daemonise and write their pid files.  The state dir is kept between
    # starts so job ids keep increasing (stale result pickles of an old job id
    # in a reused submitit folder would otherwise look like fresh results).
    slurmctld -f "$CONF" || { print_logs; die "slurmctld failed to start"; }
    slurmd -f "$CONF" || { print_logs; die "slurmd failed to start"; }

    local deadline=$((SECONDS + START_TIMEOUT)) state=""
    while :; do
        state="$(node_state || true)"
        case "$state" in
            idle|mix|alloc) break ;;
            inval*|drain*|drng*|fail*)
                print_logs; cmd_stop "$STATE_DIR"; die "node state '$state' (config mismatch?)" ;;
        esac
        if ((SECONDS >= deadline)); then
            print_logs
            cmd_stop "$STATE_DIR"
            die "node not idle after ${START_TIMEOUT}s (last state: '${state:-no answer}')"
        fi
        sleep 0.3
    done
    log "running: node $(hostname -s) is $state after $((SECONDS - t0))s; SLURM_CONF=$CONF"
}

# Cancel all jobs first: slurmstepd and the job processes survive slurmd's
# shutdown, and a restarted controller would recover (and maybe requeue) them.
cancel_jobs() {
    pid_from_file "$CTLD_PIDFILE" slurmctld >/dev/null || return 0
    local ids
    ids="$(squeue -h -o '%A' 2>/dev/null | tr '\n' ' ' || true)"
    [[ -n "${ids// /}" ]] || return 0
    log "cancelling jobs: $ids"
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while [[ -n "$(squeue -h -t PD,R,CG,S,CF -o '%A' 2>/dev/null || true)" ]]; do
        ((SECONDS < deadline)) || { log "jobs still listed after 20s, going on"; break; }
        sleep 0.3
    done
}

# Last resort for leftovers of *this* instance only: processes that inherited
# SLURM_CONF=<our conf> and are slurmstepd or job processes (SLURM_JOB_ID set).
kill_strays() {
    local p env
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        [[ "$p" == "$$" ]] && continue
        env="$({ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null || true)"
        grep -qxF "SLURM_CONF=$CONF" <<<"$env" || continue
        if [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == slurmstepd ]] || grep -q '^SLURM_JOB_ID=' <<<"$env"; then
            pid_alive "$p" || continue
            log "killing leftover job process $p ($({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | cut -c1-80))"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
}

cmd_stop() {
    set_paths "${1:-}"
    local keep_munge="${2:-}" pid
    cancel_jobs
    if pid="$(pid_from_file "$SLURMD_PIDFILE" slurmd)"; then stop_pid slurmd "$pid"; fi
    if pid="$(pid_from_file "$CTLD_PIDFILE" slurmctld)"; then stop_pid slurmctld "$pid"; fi
    kill_strays
    rm -f "$CTLD_PIDFILE" "$SLURMD_PIDFILE"
    # munged is machine-wide (/run/munge); stop it only if this script started it.
    if [[ -z "$keep_munge" && -s "$MUNGE_OWNED" ]]; then
        pid="$(tr -dc '0-9' <"$MUNGE_OWNED")"
        if [[ "$(cat "$MUNGE_PIDFILE" 2>/dev/null | tr -dc '0-9')" == "$pid" ]] && pid_alive "$pid"; then
            stop_pid munged "$pid"
        fi
        rm -f "$MUNGE_OWNED"
    fi
}

cmd_env() {
    set_paths "${1:-}"
    printf 'export SLURM_CONF=%q\n' "$CONF"
    # Literal $PATH: expanded when the caller evals this line.
    printf 'export PATH=%q:"$PATH"\n' "$STATE_DIR/bin"
}

cmd_status() {
    set_paths "${1:-}"
    local pid rc=0
    for d in slurmctld slurmd; do
        local f="$RUN_DIR/$d.pid"
        if pid="$(pid_from_file "$f" "$d")"; then echo "$d: running (pid $pid)"; else echo "$d: stopped"; rc=3; fi
    done
    if munge_ok; then echo "munge: ok"; else echo "munge: not answering"; rc=3; fi
    echo "SLURM_CONF=$CONF"
    if ((rc == 0)); then
        sinfo -N -o '%N %t %c %m %P' || rc=3
        squeue || true
    fi
    return "$rc"
}

cmd_clean() {
    set_paths "${1:-}"
    cmd_stop "$STATE_DIR"
    if [[ -d "$STATE_DIR" ]]; then
        [[ -e "$STATE_DIR/$MARKER" ]] || die "$STATE_DIR has no $MARKER file; not deleting it"
        rm -rf "$STATE_DIR"
        log "removed $STATE_DIR"
    fi
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$cmd" in
        install) cmd_install ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "${1:-}" ;;
        env) cmd_env "$@" ;;
        status) cmd_status "$@" ;;
        clean) cmd_clean "$@" ;;
        *) usage ;;
    esac
}

main "$@"
