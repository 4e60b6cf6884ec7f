#!/usr/bin/env python3
"""Check ecs.yml on real Elastic output: the same Windows records in two
shapes must raise the same alerts.

Usage:
  python3 rules/mappings/check_ecs_real.py DIR...
Environment: WARDEN [target/release/warden], SIGMA [../shared/sigma].

DIR holds ECS documents as Elastic's own tests keep them: Winlogbeat
module golden files (`*.golden.json`, a JSON array of documents, from
elastic/beats `x-pack/winlogbeat/module/*/test/testdata/`) or pipeline
test expectations (`*-expected.json`, `{"expected": [...]}`, from
elastic/integrations `packages/*/data_stream/*/_dev/test/pipeline/`),
searched recursively. Neither is shipped here (Elastic License 2.0).

Every document with a `winlog` object is run twice through
`warden detect` with SigmaHQ's rules: as it is with `--mapping ecs`
(less `event.original`, the raw XML some pipelines keep, which the
rebuilt record does not have), and rebuilt in the evtx_dump layout from
its `winlog` members (`channel`, `event_id`, `provider_name`,
`computer_name`, `event_data`, `user_data`, `message`) with
`--mapping windows`. ecs.yml resolves each Sigma field to the ECS field
the pipelines fill, falling back to `winlog.event_data`; windows.yml
reads the event data directly. Prints each record whose alerts differ and
a count per rule; exits 1 when any does.

A difference is not always ecs.yml's fault: some pipelines move a field
out of `winlog.event_data` into ECS only (older Winlogbeat security
modules keep a 4688's `NewProcessName` only as `process.executable`), so
the rebuilt record lacks it. Check each in the printed record.
"""
import collections
import glob
import json
import os
import subprocess
import sys

FOLDERS = ["rules", "rules-compliance", "rules-emerging-threats",
           "rules-threat-hunting", "rules-placeholder"]


def as_number(x):
    try:
        return int(x)
    except (TypeError, ValueError):
        return x


def evtx_layout(d):
    """The record as evtx_dump renders it, from the document's `winlog`."""
    w = d["winlog"]
    proc = w.get("process", {})
    system = {
        "Provider": {"#attributes": {"Name": w.get("provider_name"),
                                     "Guid": w.get("provider_guid")}},
        "EventID": as_number(w.get("event_id")),
        "Version": w.get("version"),
        "Channel": w.get("channel"),
        "Computer": w.get("computer_name"),
        "EventRecordID": as_number(w.get("record_id")),
        "Execution": {"#attributes": {"ProcessID": proc.get("pid"),
                                      "ThreadID": proc.get("thread", {}).get("id")}},
    }
    if "user" in w:
        system["Security"] = {"#attributes": {"UserID": w["user"].get("identifier")}}
    event = {"System": {k: v for k, v in system.items() if v is not None}}
    if "event_data" in w:
        event["EventData"] = w["event_data"]
    if "user_data" in w:
        # Winlogbeat flattens UserData one level and keeps the element's name.
        data = dict(w["user_data"])
        event["UserData"] = {data.pop("xml_name", "EventXML"): data}
    if "message" in d:
        event["RenderingInfo"] = {"Message": d["message"]}
    return {"Event": event}


def ecs_document(d):
    d = json.loads(json.dumps(d))
    if isinstance(d.get("event"), dict):
        d["event"].pop("original", None)
    return d


def documents(dirs):
    for top in dirs:
        files = sorted(glob.glob(os.path.join(top, "**", "*.golden.json"), recursive=True)
                       + glob.glob(os.path.join(top, "**", "*-expected.json"), recursive=True))
        for f in files:
            data = json.load(open(f, encoding="utf-8"))
            if isinstance(data, dict):
                data = data.get("expected") or []
            for i, d in enumerate(data):
                if isinstance(d, dict) and isinstance(d.get("winlog"), dict):
                    yield os.path.relpath(f, top), i, d


def alerts(warden, sigma, mapping, lines):
    """Rule titles per input line (1-based)."""
    rules = [a for f in FOLDERS if os.path.isdir(os.path.join(sigma, f))
             for a in ("--rules", os.path.join(sigma, f))]
    p = subprocess.run([warden, "detect", "--mapping", mapping, "--input", "-"] + rules,
                       input="\n".join(lines) + "\n", capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"warden detect --mapping {mapping} failed:\n{p.stderr}")
    refused = [l for l in p.stderr.splitlines() if ": invalid JSON" in l or "not a JSON object" in l]
    if refused:
        sys.exit("\n".join(refused[:5]))
    out = collections.defaultdict(set)
    for line in p.stdout.splitlines():
        a = json.loads(line)
        out[a["line"]].add(a["rule_title"])
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    warden = os.environ.get("WARDEN", "target/release/warden")
    sigma = os.environ.get("SIGMA", "../shared/sigma")
    docs = list(documents(sys.argv[1:]))
    if not docs:
        sys.exit("no documents with a winlog object found")
    ecs = alerts(warden, sigma, "ecs", [json.dumps(ecs_document(d)) for _, _, d in docs])
    win = alerts(warden, sigma, "windows", [json.dumps(evtx_layout(d)) for _, _, d in docs])
    differ = 0
    per_rule = collections.Counter()
    channels = collections.Counter()
    for n, (f, i, d) in enumerate(docs, 1):
        channels[d["winlog"].get("channel")] += 1
        if ecs[n] == win[n]:
            continue
        differ += 1
        w = d["winlog"]
        print(f"{f}#{i} ({w.get('channel')} {w.get('event_id')}):")
        for t in sorted(ecs[n] - win[n]):
            print(f"    ecs only:     {t}")
            per_rule["ecs only:     " + t] += 1
        for t in sorted(win[n] - ecs[n]):
            print(f"    windows only: {t}")
            per_rule["windows only: " + t] += 1
    print(f"{len(docs)} records ({', '.join(f'{c} {n}' for c, n in channels.most_common())}); "
          f"alerts: {sum(map(len, ecs.values()))} with ecs.yml, "
          f"{sum(map(len, win.values()))} with windows.yml; records that differ: {differ}")
    for k, v in per_rule.most_common():
        print(f"  {v:5} {k}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
