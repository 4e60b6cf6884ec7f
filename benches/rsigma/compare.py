#!/usr/bin/env python3
"""Warden against rsigma on the same rules and the same events, interleaved.

Usage:
  python3 benches/rsigma/compare.py ROUNDS
Environment (defaults in brackets):
  WARDEN   the warden binary [target/release/warden]
  RSIGMA   the rsigma binary, built with `cargo build --release
           --features daachorse-index` from timescale/rsigma [required]
  SIGMA    SigmaHQ's checkout with rules* folders [../shared/sigma]
  EVENTS   nested evtx_dump JSON lines, e.g. from `cargo run --release -p
           warden-benches --example gen_events 20000 42` repeated [required]
  WORK     scratch directory for the flattened copies [/tmp/warden-vs-rsigma]

rsigma's Windows pipelines read flat events, so it gets a copy with
Event.System and Event.EventData merged into one object (Provider, TimeCreated,
Execution and Security attributes lifted), and a second copy that also carries
product/service/category hints derived from Channel and EventID for its
logsource routing. Both copies are written before any timing.
Every round runs every setup once; the ratio reported is the median of the
per-round ratios (absolute rates drift between runs on shared machines).
Startup (rule loading) is subtracted: rate = events / (time - empty-input time),
the empty-input time being the fastest of five runs.

  python3 benches/rsigma/compare.py callgrind [N]
counts instructions instead of seconds (valgrind's callgrind, which is
deterministic on a noisy machine): every setup runs once on no events and
once on the first N events [5000]; instructions per event is the difference
divided by N, and the ratio is rsigma's count over Warden's.
"""
import json
import os
import statistics
import subprocess
import sys
import time

FOLDERS = ["rules", "rules-compliance", "rules-emerging-threats",
           "rules-placeholder", "rules-threat-hunting"]
CATEGORY = {  # Sysmon EventID -> Sigma category
    1: "process_creation", 3: "network_connection", 5: "process_termination",
    6: "driver_load", 7: "image_load", 8: "create_remote_thread",
    10: "process_access", 11: "file_event", 12: "registry_add",
    13: "registry_set", 14: "registry_rename", 15: "create_stream_hash",
    17: "pipe_created", 18: "pipe_created", 22: "dns_query", 23: "file_delete",
    26: "file_delete_detected", 29: "file_executable_detected",
}
SERVICE = {
    "Microsoft-Windows-Sysmon/Operational": "sysmon",
    "Security": "security", "System": "system",
    "Microsoft-Windows-PowerShell/Operational": "powershell",
    "Windows PowerShell": "powershell-classic",
}


def flatten(ev, hints):
    out = {}
    system = ev.get("Event", {}).get("System", {})
    for k, v in system.items():
        if isinstance(v, dict):
            out.update(v.get("#attributes", {}))
        else:
            out[k] = v
    data = ev.get("Event", {}).get("EventData") or {}
    if isinstance(data, dict):
        out.update(data)
    if hints:
        out["product"] = "windows"
        service = SERVICE.get(out.get("Channel"))
        if service:
            out["service"] = service
        eid = out.get("EventID")
        if service == "sysmon" and eid in CATEGORY:
            out["category"] = CATEGORY[eid]
        elif service == "security" and eid == 4688:
            out["category"] = "process_creation"
        elif service == "powershell" and eid == 4104:
            out["category"] = "ps_script"
    return out


def instructions(cmd, inp, stdin):
    """Instructions callgrind counts for one run of `cmd` on `inp`."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                         stdin=open(inp) if stdin else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in out.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    raise RuntimeError(f"no callgrind total for {cmd[0]}: {out.stderr[-500:]}")


def rule_folders(sigma, work):
    """SigmaHQ's five rule folders as each engine takes them: for rsigma one
    directory (a folder of symlinks to the five, under `work`), for Warden a
    `--rules` argument per folder."""
    rules = os.path.join(work, "rules")
    os.makedirs(rules, exist_ok=True)
    for d in FOLDERS:
        link = os.path.join(rules, d)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(sigma, d)), link)
    return rules, sum((["--rules", os.path.join(sigma, d)] for d in FOLDERS), [])


def rule_files(sigma):
    """Every YAML file of SigmaHQ's five rule folders, in a fixed order."""
    for folder in FOLDERS:
        for root, dirs, files in os.walk(os.path.join(sigma, folder)):
            dirs.sort()
            for name in sorted(files):
                if name.endswith((".yml", ".yaml")):
                    yield os.path.join(root, name)


def rule_documents(sigma):
    """(path, document) for every YAML document of those files that is a
    mapping; files that are not UTF-8 YAML are skipped."""
    import yaml

    for path in rule_files(sigma):
        try:
            with open(path, encoding="utf-8") as f:
                docs = list(yaml.safe_load_all(f))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        for doc in docs:
            if isinstance(doc, dict):
                yield path, doc


def main():
    count = len(sys.argv) > 1 and sys.argv[1] == "callgrind"
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 and not count else 3
    warden = os.environ.get("WARDEN", "target/release/warden")
    rsigma = os.environ["RSIGMA"]
    sigma = os.environ.get("SIGMA", "../shared/sigma")
    events = os.environ["EVENTS"]
    work = os.environ.get("WORK", "/tmp/warden-vs-rsigma")
    os.makedirs(work, exist_ok=True)
    flat, hint = os.path.join(work, "flat.jsonl"), os.path.join(work, "hint.jsonl")
    n = 0
    with open(events) as src, open(flat, "w") as f, open(hint, "w") as h:
        for line in src:
            ev = json.loads(line)
            f.write(json.dumps(flatten(ev, False)) + "\n")
            h.write(json.dumps(flatten(ev, True)) + "\n")
            n += 1
    rules, w_rules = rule_folders(sigma, work)
    rs = [rsigma, "engine", "eval", "-r", rules, "--output-format", "ndjson"]
    setups = {
        "warden": (lambda i: [warden, "detect", "--threads", "1", *w_rules, "--mapping", "windows", "--input", i], events, False),
        # The very file rsigma reads (the windows mapping reads flat events too).
        "warden-flat": (lambda i: [warden, "detect", "--threads", "1", *w_rules, "--mapping", "windows", "--input", i], flat, False),
        "rsigma-routing": (lambda i: rs + ["-p", "sysmon", "--logsource-routing", "--event-logsource", "product=windows"], flat, True),
        "rsigma-hints": (lambda i: rs + ["-p", "sysmon", "--logsource-routing"], hint, True),
        "rsigma-default": (lambda i: rs, flat, True),
    }

    if count:
        first = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
        per = {}
        for k, (mk, inp, stdin) in setups.items():
            head = os.path.join(work, f"head-{k}.jsonl")
            with open(inp) as src, open(head, "w") as dst:
                for i, line in enumerate(src):
                    if i >= first:
                        break
                    dst.write(line)
            base = instructions(mk("/dev/null"), "/dev/null", stdin)
            full = instructions(mk(head), head, stdin)
            per[k] = (full - base) / first
            print(f"{k:15} {per[k]:10.0f} instructions/event "
                  f"({first} events; startup {base / 1e9:.2f}G instructions)", flush=True)
        for k in setups:
            if not k.startswith("warden"):
                print(f"{k} / warden: {per[k] / per['warden']:.1f}x the instructions per event; "
                      f"/ warden-flat: {per[k] / per['warden-flat']:.1f}x")
        return

    def run(name, inp):
        mk, _, stdin = setups[name]
        t = time.time()
        out = subprocess.run(mk(inp), stdin=open(inp) if stdin else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return time.time() - t, out.stdout.count(b"\n")

    # Startup is fixed work that noise can only lengthen: its fastest of five runs.
    empty = {k: min(run(k, "/dev/null")[0] for _ in range(5)) for k in setups}
    rates = {k: [] for k in setups}
    alerts = {}
    for _ in range(rounds):
        for k, (_, inp, _) in setups.items():
            el, a = run(k, inp)
            rates[k].append(n / max(el - empty[k], 1e-9))
            alerts[k] = a
    for k in setups:
        r = rates[k]
        print(f"{k:15} {statistics.median(r):9.0f} events/s (median of {rounds}; "
              f"{min(r):.0f}..{max(r):.0f}), {alerts[k]} alerts, startup {empty[k]:.2f}s")
    for k in setups:
        if not k.startswith("warden"):
            q = sorted(a / b for a, b in zip(rates["warden"], rates[k]))
            print(f"warden / {k}: per-round median {statistics.median(q):.1f}x "
                  f"(range {q[0]:.1f}..{q[-1]:.1f})")
            q = sorted(a / b for a, b in zip(rates["warden-flat"], rates[k]))
            print(f"warden-flat / {k}: per-round median {statistics.median(q):.1f}x "
                  f"(range {q[0]:.1f}..{q[-1]:.1f})")


if __name__ == "__main__":
    main()
