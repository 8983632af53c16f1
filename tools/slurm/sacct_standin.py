#!/usr/bin/env python3
"""Minimal ``sacct`` stand-in for a loopback SLURM without slurmdbd.

Why: submitit (and so Hydra's submitit launcher) polls job states with
``sacct -o JobID,State,NodeList --parsable2 -j ID [-j ID ...]``.  Without an
accounting database the real ``sacct`` fails, submitit only logs a warning and
keeps the state UNKNOWN, and a job that dies without writing its result pickle
(SIGKILL, OOM, node failure) is then waited on forever.  This script answers the
same question from the controller itself.

Sources, later ones winning for the same job id:
  1. the jobcomp/filetxt log (``JobCompLoc`` in slurm.conf, found through
     ``$SLURM_CONF`` or ``$CALO_SLURM_JOBCOMP``): one line per finished job;
     it survives ``MinJobAge`` purges and controller restarts;
  2. ``scontrol show job -o``: the live view (pending/running/recently done).

Output mimics ``sacct``: a ``|``-separated header and one row per job or array
element (``<arrayjobid>_<taskid>``; a still-pending array remainder is printed
as ``<arrayjobid>_[<range>]`` like sacct does).  No ``.batch``/``.extern``
step rows are printed (submitit skips them anyway).  Jobs unknown to both
sources are simply not listed (sacct does the same for unknown ids).

Standard library only, so it runs with any python3 on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

DEFAULT_FIELDS = ["JobID", "JobName", "Partition", "Account", "AllocCPUS", "State", "ExitCode"]

# scontrol/jobcomp records are "Key=value Key=value ..."; values may contain
# spaces (JobName, Reason, Command), so a key is an upper-case word that
# follows a space.  Good enough for the fields used here.
_KEY_RE = re.compile(r"(?:^|(?<= ))([A-Z][A-Za-z0-9_:/]*)=")


def parse_record(line: str) -> dict:
    matches = list(_KEY_RE.finditer(line))
    rec = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        rec[m.group(1)] = line[m.end():end].strip()
    return rec


def conf_value(key: str):
    """Read one key from $SLURM_CONF (case-insensitive, last one wins)."""
    path = os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    value = None
    try:
        with open(path) as fh:
            for raw in fh:
                line = raw.split("#", 1)[0].strip()
                if "=" in line:
                    k, v = line.split("=", 1)
                    if k.strip().lower() == key.lower():
                        value = v.strip()
    except OSError:
        pass
    return value


def jobcomp_records() -> list:
    path = os.environ.get("CALO_SLURM_JOBCOMP")
    if not path and (conf_value("JobCompType") or "").lower() == "jobcomp/filetxt":
        path = conf_value("JobCompLoc")
    if not path:
        return []
    try:
        with open(path, errors="replace") as fh:
            return [parse_record(line.rstrip("\n")) for line in fh if line.startswith("JobId=")]
    except OSError:
        return []


def live_records() -> list:
    # All jobs in one call (the controller keeps finished ones for MinJobAge);
    # querying per id would need one call per id and errors for purged ids.
    proc = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(f"sacct (stand-in): scontrol failed: {proc.stderr.strip()}\n")
        sys.exit(1)
    return [parse_record(line) for line in proc.stdout.splitlines() if line.startswith("JobId=")]


def _num(value: str) -> int:
    m = re.match(r"\d+", value or "")
    return int(m.group()) if m else -1


def display_id(rec: dict) -> str:
    job_id = rec.get("JobId", "")
    array_job = rec.get("ArrayJobId", "")
    task = rec.get("ArrayTaskId", "")
    if array_job and task and task not in ("N/A", "(null)"):
        task = task.split("%", 1)[0]  # drop the throttle, e.g. 0-3%2
        if re.fullmatch(r"\d+", task):
            return f"{array_job}_{task}"
        return f"{array_job}_[{task}]"  # pending remainder of an array
    return job_id


def state_of(rec: dict) -> str:
    state = rec.get("JobState", "UNKNOWN") or "UNKNOWN"
    if state == "CANCELLED":
        # sacct prints "CANCELLED by <uid of the canceller>"; the controller
        # does not keep the canceller, so use the job owner's uid.
        m = re.search(r"\((\d+)\)", rec.get("UserId", ""))
        state = f"CANCELLED by {m.group(1) if m else 0}"
    return state


# sacct fields that are one scontrol key (or the first present of several) under another name.
SCONTROL_KEYS = {
    "jobidraw": ("JobId",),
    "jobname": ("JobName", "Name"),
    "alloccpus": ("NumCPUs", "ProcCnt"),
    "nnodes": ("NumNodes", "NodeCnt"),
    "elapsed": ("RunTime",),
    "start": ("StartTime",),
    "end": ("EndTime",),
    "submit": ("SubmitTime",),
    "timelimit": ("TimeLimit",),
    "restarts": ("Restarts",),
}


def field_value(rec: dict, field: str) -> str:
    f = field.lower()
    if f == "jobid":
        return display_id(rec)
    if f == "state":
        return state_of(rec)
    if f == "nodelist":
        nodes = rec.get("NodeList", "")
        return "None assigned" if nodes in ("", "(null)") else nodes
    if f in ("user", "uid"):
        m = re.match(r"([^(]*)\((\d+)\)", rec.get("UserId", ""))
        if not m:
            return ""
        return m.group(1) if f == "user" else m.group(2)
    if f in SCONTROL_KEYS:
        return next((rec[k] for k in SCONTROL_KEYS[f] if k in rec), "")
    for key in rec:  # Partition, Account, ExitCode, Reason, WorkDir, ...
        if key.lower() == f:
            return "" if rec[key] == "(null)" else rec[key]
    return ""


CANONICAL = {f.lower(): f for f in [
    "JobID", "JobIDRaw", "JobName", "State", "NodeList", "User", "UID", "AllocCPUS", "NNodes",
    "Elapsed", "Start", "End", "Submit", "Timelimit", "Restarts", "Partition", "Account",
    "ExitCode", "Reason", "WorkDir"]}


def parse_args(argv: list):
    fields, ids = None, []
    parsable, parsable2, header = False, False, True
    # Options of real sacct that take a value: skip their value so it is not
    # mistaken for something else.  Everything else unknown is ignored.
    with_value = {"-A", "-C", "-E", "-e", "-g", "-i", "-I", "-k", "-K", "-M", "-N", "-q", "-r",
                  "-S", "-s", "-T", "-u", "-W", "-x", "-f", "-L"}
    i = 0
    while i < len(argv):
        a = argv[i]
        val = None
        if a.startswith("--") and "=" in a:
            a, val = a.split("=", 1)
        elif len(a) > 2 and a[0] == "-" and a[1] != "-" and a[:2] in ("-o", "-j"):
            a, val = a[:2], a[2:]

        def take(val=val):  # bound now: the value of this argument
            nonlocal i
            if val is not None:
                return val
            i += 1
            return argv[i] if i < len(argv) else ""

        if a in ("-o", "--format"):
            names = [f.split("%", 1)[0] for f in take().split(",") if f]
            fields = (fields or []) + [CANONICAL.get(n.lower(), n) for n in names]
        elif a in ("-j", "--jobs"):
            ids += [j for j in take().split(",") if j]
        elif a in ("-P", "--parsable2"):
            parsable2 = True
        elif a in ("-p", "--parsable"):
            parsable = True
        elif a in ("-n", "--noheader"):
            header = False
        elif a in ("-h", "--help"):
            print("sacct stand-in (scontrol based): sacct [-o FIELDS] [-j IDS] [-P|-p] [-n]")
            sys.exit(0)
        elif a in with_value and val is None:
            i += 1
        i += 1
    return fields or DEFAULT_FIELDS, ids, parsable, parsable2, header


def wanted(rec: dict, ids: list) -> bool:
    if not ids:
        return True
    job_id, array_job = rec.get("JobId", ""), rec.get("ArrayJobId", "")
    task = rec.get("ArrayTaskId", "")
    for want in ids:
        main, _, sub = want.partition("_")
        main = main.split(".", 1)[0]
        if not sub:
            if main == job_id or (array_job and main == array_job):
                return True
        elif array_job == main and _task_in(sub, task):
            return True
    return False


def _task_in(sub: str, task: str) -> bool:
    """Is array index ``sub`` part of ``task`` (``3``, ``0-3``, ``1,4-6%2``)?"""
    if not sub.isdigit():
        return sub == task
    for part in task.split("%", 1)[0].split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and int(lo) <= int(sub) <= int(hi if hi.isdigit() else lo):
            return True
    return False


def main(argv: list) -> int:
    fields, ids, parsable, parsable2, header = parse_args(argv)
    records = {}
    for rec in jobcomp_records():
        records[rec.get("JobId", "")] = rec  # file is chronological: last wins
    for rec in live_records():
        records[rec.get("JobId", "")] = rec  # the controller's view beats the log
    rows = [r for r in records.values() if wanted(r, ids)]
    rows.sort(key=lambda r: (_num(r.get("ArrayJobId") or r.get("JobId")),
                             _num(r.get("ArrayTaskId", "")), _num(r.get("JobId"))))
    table = [[field_value(r, f) for f in fields] for r in rows]
    out = []
    if parsable or parsable2:
        end = "|" if parsable and not parsable2 else ""
        if header:
            out.append("|".join(fields) + end)
        out += ["|".join(row) + end for row in table]
    else:
        widths = [max([10, len(f)] + [len(row[k]) for row in table]) for k, f in enumerate(fields)]
        if header:
            out.append(" ".join(f.rjust(w) for f, w in zip(fields, widths)))
            out.append(" ".join("-" * w for w in widths))
        out += [" ".join(v.rjust(w) for v, w in zip(row, widths)) for row in table]
    if out:
        print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
