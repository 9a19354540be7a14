#!/usr/bin/env bash
# The failure hook of every rule (ON_FAILURE in workflow/rules/common.smk):
#
#     <command> > {log} 2>&1 || bash on_failure.sh $? {log:q}
#
# Usage: on_failure.sh STATUS LOG [JOB]. A job killed by a signal (status > 128: SIGKILL from the
# out-of-memory killer or a scheduler cannot be caught by the job itself) gets a line
# "KILLED: exit status 137 = SIGKILL (...)" appended to its log. Then the one-line reason (the log's first
# line starting "ERROR:" or "KILLED:", else its last line) goes to stderr, that is the Snakemake console:
#
#     <JOB>: <reason> (full log: <LOG>)
#
# JOB defaults to the log's path under the run's logs/ without .log (embed/7net-0/0000,
# figures/fig1_pca, parse_structures): the rule, or its group of rules, and the wildcards. Exits with
# STATUS, so the job fails as it did.
status=${1:?usage: on_failure.sh STATUS LOG [JOB]}
log=${2:?usage: on_failure.sh STATUS LOG [JOB]}
job=${3:-${log%.log}}
if [[ -z ${3:-} ]]; then
    case "$job" in
    */logs/*) job=${job##*/logs/} ;;
    logs/*) job=${job#logs/} ;;
    esac
fi

if ((status > 128)); then
    name=$(kill -l $((status - 128)) 2>/dev/null) || name="signal $((status - 128))"
    case "$name" in
    KILL) why=" (out of memory or a time limit?)" ;;
    TERM) why=" (Snakemake cancelled the job, or a scheduler time limit)" ;;
    INT) why=" (interrupted)" ;;
    BUS) why=" (a memory-mapped file could not be written: disk full?)" ;;
    SEGV | ABRT | ILL | FPE) why=" (a crash in native code)" ;;
    *) why="" ;;
    esac
    [[ $name == signal* ]] || name="SIG$name"
    [[ ! -s $log || -z $(tail -c1 "$log") ]] || echo >>"$log" # a progress bar cut off mid-line
    echo "KILLED: exit status $status = $name$why" >>"$log" 2>/dev/null
fi

reason=""
if [[ -s $log ]]; then
    reason=$(grep -m1 -E '^(ERROR|KILLED):' "$log" 2>/dev/null)
    [[ -n $reason ]] || reason=$(grep -v '^[[:space:]]*$' "$log" | tail -n1)
    reason=${reason##*$'\r'} # the last state of a progress bar
fi
[[ -n $reason ]] || reason="exit status $status, nothing in the log"
echo "$job: $reason (full log: $log)" >&2
exit "$status"
