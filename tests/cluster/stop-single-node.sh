#!/usr/bin/env bash
# Stop exactly the daemons start-single-node.sh started (by recorded PID, never by name).
STATE=${STATE:-/tmp/slurm-state}
for d in slurmd slurmctld munged; do
  f="$STATE/$d.pid"; [ -s "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { echo "$d ($pid) ignored TERM, sending KILL"; kill -KILL "$pid"; }
  fi
  echo "stopped $d pid=$pid"; rm -f "$f"
  # daemons leave their pid files behind; a stale /run/slurmctld.pid makes
  # the slurmctld prerm (apt-get remove) run scancel and fail
  for pf in /run/$d.pid /run/munge/munged.pid; do
    [ "$(cat "$pf" 2>/dev/null)" = "$pid" ] && rm -f "$pf"
  done
done
