#!/bin/sh
# Guard and Slurm: a held job is cancelled only on an administrator's word,
# and nothing stays held once Slurm is done with a job.
#
#   guard-slurm.sh list                   the Slurm jobs Guard holds on this node
#   guard-slurm.sh cancel JOBID [REASON]  an administrator's word: cancel a job Guard
#                                         holds (scancel --full), noting why on the job
#   guard-slurm.sh epilog                 as slurm.conf's Epilog (root, on each node
#                                         of a job that ended): Guard lets go of it
#
# slurm.conf:  Epilog=/usr/share/guard/slurm/guard-slurm.sh
# (an Epilog named by its path runs with the argument-less call; the epilog
# mode is chosen when SLURM_JOB_ID is set and no argument is given.)
#
# It reads `guard status -o json` (holds: "job": "slurm:N") and needs root,
# python3 (to read JSON) and, for cancel, scancel and scontrol on PATH.
# Exit codes: 0 done; 1 refused or failed; 2 usage.
set -eu

guard=${GUARD:-guard}

usage() {
    echo "usage: guard-slurm.sh list | cancel JOBID [REASON] | epilog" >&2
    exit 2
}

# The Slurm job numbers Guard holds here, one a line.
held_jobs() {
    "$guard" status -o json | python3 -c '
import json, sys
status = json.load(sys.stdin)
for hold in status.get("quarantined", []):
    job = str(hold.get("job", ""))
    if job.startswith("slurm:") and job[6:].isdigit():
        print(job[6:])
'
}

is_job_number() {
    case "$1" in
    "" | *[!0-9]*) return 1 ;;
    *) return 0 ;;
    esac
}

mode=${1:-}
if [ -z "$mode" ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    mode=epilog
fi

case "$mode" in
list)
    held_jobs
    ;;
cancel)
    [ $# -ge 2 ] || usage
    job=$2
    reason=${3:-cancelled after Guard held it}
    is_job_number "$job" || { echo "guard-slurm: '$job' is not a Slurm job number" >&2; exit 2; }
    if ! held_jobs | grep -qx "$job"; then
        echo "guard-slurm: Guard holds no Slurm job $job on this node; nothing cancelled" >&2
        exit 1
    fi
    # The word is the administrator's: who gave it goes on the job with the reason.
    who=${SUDO_USER:-$(id -un)}
    scontrol update JobId="$job" Comment="guard: $reason (by $who)" || true
    # Every step, the batch script included: SIGKILL reaches held (stopped or frozen) processes.
    scancel --full --signal=KILL "$job"
    scancel "$job"
    echo "guard-slurm: cancelled Slurm job $job ($reason)"
    ;;
epilog)
    job=${SLURM_JOB_ID:-}
    is_job_number "$job" || { echo "guard-slurm: epilog without a SLURM_JOB_ID" >&2; exit 1; }
    # Slurm has ended the job; a hold that outlived it would keep its leftovers frozen.
    if held_jobs | grep -qx "$job"; then
        "$guard" release --job "slurm:$job" || { echo "guard-slurm: guard release --job slurm:$job failed" >&2; exit 1; }
    fi
    ;;
*)
    usage
    ;;
esac
