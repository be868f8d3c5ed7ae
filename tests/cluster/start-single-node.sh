#!/usr/bin/env bash
# Single-node SLURM 22.05 (Debian 12 packages) for tests/test_slurm.py and CI. Run as root; no
# systemd needed. The project's own copy of a measured recipe (install + daemons + smoke ~40 s).
# Leaves munged/slurmctld/slurmd running; their PIDs go to $STATE/*.pid (see teardown.sh).
set -euo pipefail
STATE=${STATE:-/tmp/slurm-state}
mkdir -p "$STATE"
now() { date +%s.%N; }
t0=$(now)

# --- 1. install -------------------------------------------------------------
# policy-rc.d exit 101 stops dpkg from trying to start the services itself
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
fi
command -v slurmctld >/dev/null || apt-get update -q >"$STATE/apt-update.log" 2>&1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    munge slurmctld slurmd slurm-client >"$STATE/apt.log" 2>&1 \
  || { tail -30 "$STATE/apt.log"; exit 1; }
t1=$(now)

# --- 2. config --------------------------------------------------------------
HOST=$(hostname -s)
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
NCPU=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2/1024*0.9)}' /proc/meminfo)   # ~90% of RAM
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=${HOST}
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
MpiDefault=none
# no cgroups: works in containers/VMs without a delegated cgroup tree
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd => sacct answers "Slurm accounting storage is disabled" (rc 1)
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
NodeName=${HOST} CPUs=${NCPU} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF

# --- 3. daemons (foreground flags + '&' => \$! is the daemon's own PID) ------
[ -s /etc/munge/munge.key ] || {   # Debian's postinst normally creates it
  mungekey --create --force --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key; }
install -d -o munge -g munge -m 0755 /run/munge
setpriv --reuid=munge --regid=munge --init-groups \
  /usr/sbin/munged --foreground >"$STATE/munged.out" 2>&1 &
echo $! > "$STATE/munged.pid"
for i in $(seq 100); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null   # fail loudly if munge is not up

/usr/sbin/slurmctld -D -c >"$STATE/slurmctld.out" 2>&1 &
echo $! > "$STATE/slurmctld.pid"
for i in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
/usr/sbin/slurmd -D >"$STATE/slurmd.out" 2>&1 &
echo $! > "$STATE/slurmd.pid"

st=
for i in $(seq 120); do
  st=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  [ "$st" = idle ] && break; sleep 0.5
done
if [ "$st" != idle ]; then
  echo "node state '$st' (expected idle)"; sinfo -R || true
  tail -n 30 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log "$STATE"/*.out; exit 1
fi
t2=$(now)

# --- 4. smoke tests ---------------------------------------------------------
sinfo
srun -N1 -n1 hostname
cd "$STATE"      # sbatch writes slurm-%j.out into the cwd
jid=$(sbatch --parsable --output="$STATE/smoke-%j.out" --wrap 'echo hi')
echo "sbatch job $jid"
for i in $(seq 120); do   # poll ourselves: 'sbatch --wait' backs off to ~10 s
  js=$(scontrol show job "$jid" | grep -o 'JobState=[A-Z]*' | cut -d= -f2)
  case "$js" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break;; esac
  sleep 0.5
done
[ "$js" = COMPLETED ] || { echo "smoke job $jid state $js"; exit 1; }
grep -qx hi "$STATE/smoke-$jid.out"
t3=$(now)
printf 'TIMING install=%.1fs config+daemons_to_idle=%.1fs smoke=%.1fs\n' \
  "$(awk "BEGIN{print $t1-$t0}")" "$(awk "BEGIN{print $t2-$t1}")" "$(awk "BEGIN{print $t3-$t2}")"
