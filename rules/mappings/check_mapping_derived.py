#!/usr/bin/env python3
"""Check that Warden reads a mapping as written, with events built to fire
every rule the mapping routes.

Usage:
  python3 rules/mappings/check_mapping_derived.py [MAPPING]
MAPPING: a mapping file [rules/mappings/windows.yml]. Environment: WARDEN
[target/release/warden], SIGMA [../shared/sigma], WORK
[/tmp/warden-mapping-check], SEED [1], REPS [2].

For every SigmaHQ rule whose logsource the mapping routes,
benches/rsigma/rule_diff.py's generator builds flat events keyed by the
rule's field names (each search identifier alone, all of them, all but
filters, near misses). Each event is then written as the mapping says the
source logs it, for every entry the rule's logsource routes to: the
entry's conditions set (channel, event id, provider, ...), and every field
placed at the path the mapping resolves it to for that entry (the entry's
own fields, then the global ones, then `default_paths`; the first of a
list), so that with windows.yml a Security 4688 event gets
`NewProcessName` where a Sysmon 1 event gets `Image`. Events in the
evtx_dump layout (`Event.System`, `Event.EventData`, `Event.UserData`)
are written a second time flat, as windows.yml's `aliases` read them:
those members at the top level, the provider's name as `Provider_Name`.

Warden runs the flat events with no mapping (every rule sees every event,
fields named as the rules name them) and the written ones with the
mapping. For the rule each event was built from, the two verdicts must
agree: the mapping must route the event to the rule and resolve every
field the rule reads. Events whose own fields contradict the entry's
conditions (a rule asking for `EventID: 4104` under an entry for 4103)
cannot be routed and are counted apart, as are events setting a field
the entry reads only as a derived value (`derived:NAME`: no value can be
written to it). Prints the disagreements per rule
and entry; exits 1 when there is any.
"""
import collections
import json
import os
import random
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../benches/rsigma"))
from compare import FOLDERS, rule_documents  # noqa: E402
from rule_diff import rule_events  # noqa: E402

LS_KEYS = ("category", "product", "service")


def routes(entries, ls):
    """The mapping entries a rule's logsource routes to: those equal to it,
    else every entry agreeing on each key the rule sets."""
    key = tuple(ls.get(k) for k in LS_KEYS)
    exact = [e for e in entries if tuple(e["logsource"].get(k) for k in LS_KEYS) == key]
    if exact:
        return exact
    return [e for e in entries if all(e["logsource"].get(k) == ls[k] for k in LS_KEYS if ls.get(k))]


def path_of(mapping, entry, field):
    """The first path the field resolves to, past derived values (`derived:NAME`,
    which no value can be written to); None when it has only those."""
    p = (entry.get("fields") or {}).get(field) or (mapping.get("fields") or {}).get(field)
    if p is None:
        p = mapping["default_paths"][0].replace("{field}", field)
    return next((x for x in (p if isinstance(p, list) else [p]) if not x.startswith("derived:")), None)


def put(ev, path, value):
    parts = path.split(".")
    node = ev
    for seg in parts[:-1]:
        nxt = node.get(seg)
        if not isinstance(nxt, dict):
            nxt = node[seg] = {}
        node = nxt
    node[parts[-1]] = value


def get(ev, path):
    node = ev
    for seg in path.split("."):
        if not isinstance(node, dict) or seg not in node:
            return None
        node = node[seg]
    return node


def satisfied(ev, conditions):
    for path, want in conditions.items():
        have = get(ev, path)
        wants = want if isinstance(want, list) else [want]
        if want == "*":
            if have is None:
                return False
        elif not any(str(have).lower() == str(w).lower() for w in wants):
            return False
    return True


def nested(mapping, entry, flat):
    ev = {}
    for path, want in entry.get("conditions", {}).items():
        put(ev, path, "x" if want == "*" else (want[0] if isinstance(want, list) else want))
    for field, value in flat.items():
        if field != "_n":
            path = path_of(mapping, entry, field)
            if path is None:
                return None
            put(ev, path, value)
    ev["_n"] = flat["_n"]
    ev["_entry"] = entry["name"]
    return ev


def flattened(ev):
    """`ev` as flat-layout forwarders write it (the mapping's `aliases`):
    System and EventData members at the top level, the provider's name as
    Provider_Name."""
    out = {}
    for k, v in ev["Event"].get("System", {}).items():
        if k == "Provider" and isinstance(v, dict):
            name = (v.get("#attributes") or {}).get("Name")
            if name is not None:
                out["Provider_Name"] = name
        else:
            out[k] = v
    for part in ("EventData", "UserData"):
        out.update(ev["Event"].get(part, {}))
    out["_n"] = ev["_n"]
    out["_entry"] = ev["_entry"] + "/flat"
    return out


def alerts(warden, args, path):
    out = subprocess.run([warden, "detect", *args, "--input", path], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr[-2000:])
    got = set()
    for line in out.stdout.splitlines():
        a = json.loads(line)
        got.add((a["event"]["_n"], a["event"].get("_entry"), a["rule_id"]))
    return got


def main():
    warden = os.environ.get("WARDEN", "target/release/warden")
    sigma = os.environ.get("SIGMA", "../shared/sigma")
    work = os.environ.get("WORK", "/tmp/warden-mapping-check")
    mapping_file = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "windows.yml")
    os.makedirs(work, exist_ok=True)
    with open(mapping_file, encoding="utf-8") as f:
        mapping = yaml.safe_load(f)
    entries = mapping["logsources"]
    rng = random.Random(int(os.environ.get("SEED", "1")))
    reps = int(os.environ.get("REPS", "2"))
    flat_path, nested_path = os.path.join(work, "flat.jsonl"), os.path.join(work, "nested.jsonl")
    origin, contradicted, underived, n = {}, collections.Counter(), collections.Counter(), 0
    titles = {}
    with open(flat_path, "w") as flat_out, open(nested_path, "w") as nested_out:
        for _, doc in rule_documents(sigma):
            ls = doc.get("logsource") or {}
            if not isinstance(doc.get("detection"), dict) or not isinstance(ls, dict) or "id" not in doc:
                continue
            targets = routes(entries, ls)
            if not targets:
                continue
            titles[doc["id"]] = doc.get("title")
            for ev in rule_events(doc["detection"], rng, reps):
                ev["_n"] = n
                origin[n] = doc["id"]
                flat_out.write(json.dumps(ev) + "\n")
                for entry in targets:
                    nev = nested(mapping, entry, ev)
                    if nev is None:
                        underived[(doc["id"], entry["name"])] += 1
                    elif satisfied(nev, entry.get("conditions", {})):
                        nested_out.write(json.dumps(nev) + "\n")
                        if set(nev.get("Event", {"": 0})) <= {"System", "EventData", "UserData"}:
                            nested_out.write(json.dumps(flattened(nev)) + "\n")
                    else:
                        contradicted[(doc["id"], entry["name"])] += 1
                n += 1
    rules = sum((["--rules", os.path.join(sigma, d)] for d in FOLDERS), [])
    plain = {(e, i) for e, _, i in alerts(warden, rules, flat_path)}
    mapped = alerts(warden, rules + ["--mapping", mapping_file], nested_path)
    mapped_own = {(e, entry) for e, entry, i in mapped if origin[e] == i}
    checked = agree = fired = 0
    differ = collections.defaultdict(list)
    with open(nested_path) as f:
        for line in f:
            ev = json.loads(line)
            e, entry = ev["_n"], ev["_entry"]
            want = (e, origin[e]) in plain
            got = (e, entry) in mapped_own
            checked += 1
            fired += want
            if want == got:
                agree += 1
            else:
                differ[(origin[e], entry, want)].append(ev)
    print(f"{n} flat events from {len(titles)} rules; {checked} written for their mapping entries "
          f"({sum(contradicted.values())} left out: the rule's own fields contradict the entry; "
          f"{sum(underived.values())}: a field the entry reads only as a derived value)")
    print(f"{agree} verdicts the same ({fired} of the events raise their rule unmapped), "
          f"{checked - agree} differ")
    for (rid, entry), k in sorted(contradicted.items()):
        print(f"{k:5} left out: {titles.get(rid)} ({rid}) via {entry}")
    for (rid, entry, want), evs in sorted(differ.items(), key=lambda x: -len(x[1])):
        side = "unmapped only" if want else "mapped only"
        print(f"{len(evs):5} {side}: {titles.get(rid)} ({rid}) via {entry}")
        print("        e.g.", json.dumps(evs[0])[:400])
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
