#!/usr/bin/env python3
"""Warden against rsigma on real Windows event logs: alerts per rule.

Usage:
  python3 benches/rsigma/evtx_diff.py FILE.evtx|FILE.json|DIR [...]
Environment as for compare.py: WARDEN [target/release/warden], RSIGMA
(required), SIGMA [../shared/sigma], WORK [/tmp/warden-vs-rsigma].

Each log is read by `warden detect` (records rendered as evtx_dump does);
its records, written out as JSON lines, are flattened for rsigma as in
compare.py. Warden runs the five SigmaHQ folders with --mapping windows on
the .evtx itself; rsigma the same rules with its Sysmon pipeline and
logsource routing on the flat copy. Prints, per log, the alert counts and
every rule whose count differs.

A `.json`/`.jsonl` file (or one in DIR) holds records already flat, one
JSON object a line, as NXLog and Windows event forwarders write them
(`Channel`, `EventID`, `SourceName`, `Hostname` and the event data at the
top level; OTRF's Security-Datasets): both engines read it as it is.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

from compare import flatten, rule_folders


def main():
    warden = os.environ.get("WARDEN", "target/release/warden")
    rsigma = os.environ["RSIGMA"]
    sigma = os.environ.get("SIGMA", "../shared/sigma")
    work = os.environ.get("WORK", "/tmp/warden-vs-rsigma")
    os.makedirs(work, exist_ok=True)
    rules, w_rules = rule_folders(sigma, work)
    logs = []
    for a in sys.argv[1:]:
        if os.path.isdir(a):
            logs += sorted(os.path.join(a, f) for f in os.listdir(a)
                           if f.endswith((".evtx", ".json", ".jsonl")))
        else:
            logs.append(a)
    with tempfile.TemporaryDirectory() as tmp:
        # A rule every record matches, to have the records written out.
        with open(os.path.join(tmp, "all.yml"), "w") as f:
            f.write("title: every record\nid: all\nlogsource: {product: windows}\n"
                    "detection:\n  sel:\n    Event.System.EventID|exists: true\n  condition: sel\n")
        for log in logs:
            if log.endswith(".evtx"):
                out = subprocess.run([warden, "detect", "--threads", "1", "--rules", tmp, "--input", log],
                                     capture_output=True, text=True)
                records = [json.loads(l)["event"] for l in out.stdout.splitlines()]
                flat = os.path.join(work, "evtx-flat.jsonl")
                with open(flat, "w") as f:
                    for ev in records:
                        f.write(json.dumps(flatten(ev, False)) + "\n")
            else:
                with open(log, "rb") as f:
                    records = [line for line in f if line.strip()]
                flat = log
            w = subprocess.run([warden, "detect", "--threads", "1", *w_rules, "--mapping", "windows",
                                "--input", log], capture_output=True, text=True).stdout
            r = subprocess.run([rsigma, "engine", "eval", "-r", rules, "--output-format", "ndjson",
                                "-p", "sysmon", "--logsource-routing", "--event-logsource", "product=windows"],
                               stdin=open(flat), capture_output=True, text=True).stdout
            wc = collections.Counter(json.loads(l)["rule_title"] for l in w.splitlines())
            rc = collections.Counter(json.loads(l)["rule_title"] for l in r.splitlines())
            print(f"{os.path.basename(log)[:60]:60} {len(records):6} records  warden {sum(wc.values()):5}"
                  f"  rsigma {sum(rc.values()):5}  {'same' if wc == rc else 'differ'}")
            for k in sorted(set(wc) | set(rc)):
                if wc[k] != rc[k]:
                    print(f"    {k}: warden {wc[k]}, rsigma {rc[k]}")


if __name__ == "__main__":
    main()
