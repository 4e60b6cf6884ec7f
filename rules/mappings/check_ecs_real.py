#!/usr/bin/env python3
"""Check ecs.yml on real Elastic output: the same Windows records in two
shapes must raise the same alerts.

Usage:
  python3 rules/mappings/check_ecs_real.py [--fields] DIR...
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

Benign test records raise few alerts, so `--fields` checks the mappings
field by field instead, with no rules: each record is routed by both
mappings' conditions (ecs.yml on the document, windows.yml on the rebuilt
record; they must agree on the logsources), and every Sigma field the
record holds under windows.yml (its event data, the entry's renames) and
some SigmaHQ rule of that logsource reads is resolved by both. Every value ecs.yml finds at any of its paths for the
field must be one windows.yml finds (compared as text, case folded):
Warden accepts a condition when any path's value does, so a path holding
something else (another process's image, a transformed value) can raise
or filter an alert on the ECS side alone. Prints each field that differs
with a sample, per logsource entry; exits 1 when any does.
"""
import collections
import copy
import glob
import itertools
import json
import os
import re
import subprocess
import sys

import xml.etree.ElementTree as ET

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../benches/rsigma"))
from compare import FOLDERS, rule_documents  # noqa: E402


def as_number(x):
    try:
        return int(x)
    except (TypeError, ValueError):
        return x


def xml_value(el):
    """An XML element as evtx_dump renders it: attributes under
    `#attributes`, text alone when there is nothing else, children by name."""
    attrs = dict(el.attrib)
    kids = list(el)
    txt = (el.text or "").strip()
    if not kids and not attrs:
        return as_number(txt) if txt.isdigit() and len(txt) < 10 else (txt or None)
    out = {}
    if attrs:
        out["#attributes"] = attrs
    for k in kids:
        out[k.tag.split("}")[-1]] = xml_value(k)
    if txt:
        out["#text"] = txt
    return out


def from_original(xml):
    """The record rebuilt from the raw XML a pipeline kept in `event.original`."""
    # Some pipelines keep text after the record (its rendering): read the
    # first element only.
    return from_element(next(iter(ET.fromstring("<r>" + xml + "</r>"))))


def from_element(root):
    """An `<Event>` element in the evtx_dump layout."""
    event = {}
    for part in root:
        name = part.tag.split("}")[-1]
        if name == "EventData":
            data = {}
            for k in part:
                if k.get("Name") is not None:
                    data[k.get("Name")] = (k.text or "")
            event[name] = data
        else:
            event[name] = xml_value(part)
    return {"Event": event}


def evtx_layout(d):
    """The record as evtx_dump renders it: from the raw XML when the
    pipeline kept it (`event.original`), else from the document's `winlog`
    (whose `event_data` some pipelines empty once mapped to ECS)."""
    original = (d.get("event") or {}).get("original")
    w = d["winlog"]
    raw = RAW_FOR.get(id(d))
    if (isinstance(original, str) and original.lstrip().startswith("<Event")) or raw:
        rebuilt = copy.deepcopy(raw) if raw else from_original(original)
        if "message" in d:
            rebuilt["Event"]["RenderingInfo"] = {"Message": d["message"]}
        return rebuilt
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


# Raw records found beside the documents: file stem -> (channel, record id)
# -> the record in the evtx_dump layout; and per document (by id) its own.
RAW = collections.defaultdict(dict)
RAW_FOR = {}


def read_raw(dirs):
    """Raw records for documents whose pipeline kept no `event.original`:
    `*.evtx.xml` files (`<Event>` elements one after another, as
    python-evtx's evtx_dump.py prints an .evtx file, such as the .evtx
    files beside Winlogbeat's golden files). A document takes the record
    of its channel and record id from the file whose stem (`X` of
    `X.evtx.xml`) starts its own file's name, and only with the same event
    id."""
    for top in dirs:
        for f in sorted(glob.glob(os.path.join(top, "**", "*.evtx.xml"), recursive=True)):
            text = re.sub(r"<\?xml[^>]*\?>", "", open(f, encoding="utf-8").read())
            for el in ET.fromstring("<r>" + text + "</r>"):
                rec = from_element(el)
                sys_ = rec["Event"].get("System") or {}
                stem = os.path.basename(f)[: -len(".evtx.xml")]
                RAW[stem][(sys_.get("Channel"), str(sys_.get("EventRecordID")))] = rec


def documents(dirs):
    for top in dirs:
        files = sorted(glob.glob(os.path.join(top, "**", "*.golden.json"), recursive=True)
                       + glob.glob(os.path.join(top, "**", "*-expected.json"), recursive=True))
        for f in files:
            data = json.load(open(f, encoding="utf-8"))
            if isinstance(data, dict):
                data = data.get("expected") or []
            stems = [st for st in RAW if os.path.basename(f).startswith(st)]
            for i, d in enumerate(data):
                if isinstance(d, dict) and isinstance(d.get("winlog"), dict):
                    w = d["winlog"]
                    for st in stems:
                        rec = RAW[st].get((w.get("channel"), str(w.get("record_id"))))
                        eid = ((rec or {}).get("Event", {}).get("System") or {}).get("EventID")
                        if isinstance(eid, dict):
                            eid = eid.get("#text")
                        if rec and str(eid) == str(w.get("event_id")):
                            RAW_FOR[id(d)] = rec
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


def values(doc, path):
    """The scalar values at a dotted path (nested objects; a list at the end
    or on the way gives each element)."""
    cur = [doc]
    for seg in path.split("."):
        nxt = []
        for c in cur:
            if isinstance(c, list):
                c = [x for x in c if isinstance(x, dict)]
            for o in (c if isinstance(c, list) else [c]):
                if isinstance(o, dict) and seg in o:
                    v = o[seg]
                    nxt.extend(v if isinstance(v, list) else [v])
        cur = nxt
    # evtx_dump's `{"#text": x, "#attributes": {...}}` reads as x.
    cur = [v["#text"] if isinstance(v, dict) and "#text" in v else v for v in cur]
    return [v for v in cur if v is not None and not isinstance(v, (dict, list))]


def objects(doc, path):
    """The objects at a dotted path (an array's object elements)."""
    cur = [doc]
    for seg in path.split("."):
        nxt = []
        for c in cur:
            for o in (c if isinstance(c, list) else [c]):
                if isinstance(o, dict) and seg in o:
                    nxt.append(o[seg])
        cur = nxt
    out = []
    for c in cur:
        out.extend(x for x in (c if isinstance(c, list) else [c]) if isinstance(x, dict))
    return out


def text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v).casefold()


def as_list(x):
    return x if isinstance(x, list) else [x]


def routed(mapping, doc):
    """The logsource entries whose conditions the document meets."""
    out = []
    for e in mapping["logsources"]:
        ok = True
        for path, want in (e.get("conditions") or {}).items():
            have = {text(v) for v in values(doc, path)}
            if not have & {text(w) for w in as_list(want)}:
                ok = False
                break
        if ok:
            out.append(e)
    return out


def convert(func, raw):
    """A template reference's conversion (None: the part is left out)."""
    if func is None:
        return raw
    if func == "lower":
        return raw.casefold()
    if func == "upper":
        return raw.upper()
    raw = raw.strip()
    try:
        n = int(raw, 16) if raw[:2].lower() == "0x" else int(raw)
    except ValueError:
        return None
    if n < 0:
        return None
    if func == "hex32":
        return f"0x{n:08x}" if n <= 0xFFFFFFFF else None
    if func == "qword":
        return f"0x{n >> 32:08x}-0x{n & 0xFFFFFFFF:08x}"
    raise ValueError(f"unknown conversion {func}")


TEMPLATE_REF = re.compile(r"\{\{|\}\}|\{([^{}|]+)(?:\|(\w+))?\}")


def derived_values(spec, doc):
    """The values of a mapping's derived value on `doc` (rules/README.md,
    "Derived values"): written here again from the documentation, so that
    the check does not trust Warden's reading of it."""
    def holds(conds):
        for path, want in conds.items():
            have = {text(v) for v in values(doc, path)}
            want = [text(w) for w in as_list(want)]
            if not (have if "*" in want or not want else have & set(want)):
                return False
        return True

    if not holds(spec.get("require") or {}):
        return []
    unless = spec.get("unless") or {}
    if any(holds({p: w}) for p, w in unless.items()):
        return []
    if spec.get("each"):
        one = {k: v for k, v in spec.items() if k not in ("each", "each_join", "require", "unless")}
        out = [v for o in objects(doc, spec["each"]) for v in derived_values(one, o)]
        if spec.get("each_join") is None:
            return out
        return [spec["each_join"].join(out)] if out else []
    parts = spec.get("parts") or [spec["template"]]
    refs = sorted({m.group(1).strip() for t in parts for m in TEMPLATE_REF.finditer(t) if m.group(1)})
    choices = [[text_raw(v) for v in values(doc, r)] or [None] for r in refs]
    out = []
    for pick in itertools.islice(itertools.product(*choices), 1024):
        if len(out) == 256:
            break
        chosen = dict(zip(refs, pick))
        built = []
        for t in parts:
            ok = True

            def sub(m):
                nonlocal ok
                if m.group(0) in ("{{", "}}"):
                    return m.group(0)[0]
                v = chosen[m.group(1).strip()]
                v = None if v is None else convert(m.group(2), v)
                if v is None:
                    ok = False
                    return ""
                return v
            piece = TEMPLATE_REF.sub(sub, t)
            if ok:
                built.append(piece)
        if not built:
            continue
        v = (spec.get("join") or "").join(built)
        table = spec.get("values")
        if table is not None:
            table = {text(k): str(x) for k, x in table.items()}
            if text(v) not in table:
                continue
            v = table[text(v)]
        out.append(v)
    return out


def text_raw(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def field_values(mapping, entry, field, doc):
    """Every value of a Sigma field on `doc` under `mapping`."""
    out = []
    for p in paths(mapping, entry, field):
        if p.startswith("derived:"):
            out.extend(derived_values(mapping["derived"][p[len("derived:"):]], doc))
        else:
            out.extend(values(doc, p))
    return out


def paths(mapping, entry, field):
    p = (entry.get("fields") or {}).get(field) or (mapping.get("fields") or {}).get(field)
    if p is None:
        p = [d.replace("{field}", field) for d in mapping["default_paths"]]
    return as_list(p)


def logsource(e):
    ls = e["logsource"]
    return (ls.get("product"), ls.get("category"), ls.get("service"))


def rule_fields(sigma):
    """The field names SigmaHQ's rules read, per (product, category, service)."""
    out = collections.defaultdict(set)
    for _, doc in rule_documents(sigma):
        ls = doc.get("logsource") or {}
        det = doc.get("detection") or {}
        key = (ls.get("product"), ls.get("category"), ls.get("service"))
        for name, body in det.items():
            if name == "condition":
                continue
            for m in body if isinstance(body, list) else [body]:
                if isinstance(m, dict):
                    out[key].update(str(k).split("|")[0] for k in m)
    return out


def check_fields(docs, sigma):
    used = rule_fields(sigma)
    ecs_map = yaml.safe_load(open(os.path.join(HERE, "ecs.yml"), encoding="utf-8"))
    win_map = yaml.safe_load(open(os.path.join(HERE, "windows.yml"), encoding="utf-8"))
    problems = collections.defaultdict(list)
    checked = collections.Counter()
    for f, i, d in docs:
        rebuilt = evtx_layout(d)
        ecs_doc = ecs_document(d)
        we = {logsource(e): e for e in routed(win_map, rebuilt)}
        ee = {logsource(e): e for e in routed(ecs_map, ecs_doc)}
        where = f"{f}#{i}"
        if set(we) != set(ee):
            problems[("routing", str(sorted(set(we) ^ set(ee), key=str)))].append(where)
        data = rebuilt["Event"].get("EventData") or {}
        for ls in set(we) & set(ee):
            w, e = we[ls], ee[ls]
            fields = (set(data) | set(w.get("fields") or {})) & used[ls]
            for field in sorted(fields):
                wv = {text(v) for p in paths(win_map, w, field) for v in values(rebuilt, p)}
                if not wv:
                    continue
                checked[e["name"]] += 1
                ev = {text(v) for v in field_values(ecs_map, e, field, ecs_doc)}
                if not ev:
                    problems[(e["name"], f"{field}: not found")].append(where)
                elif ev - wv:
                    sample = f"ecs {sorted(ev - wv)[:2]} / windows {sorted(wv)[:2]}"
                    problems[(e["name"], f"{field}: {sample}")].append(where)
    for (entry, what), where in sorted(problems.items(), key=lambda x: -len(x[1])):
        print(f"{len(where):4} {entry}: {what}  (e.g. {where[0]})")
    print(f"{len(docs)} records, {sum(checked.values())} field values compared "
          f"({', '.join(f'{n} {k}' for k, n in checked.most_common())}); "
          f"{len(problems)} differences")
    sys.exit(1 if problems else 0)


def main():
    args = sys.argv[1:]
    fields = "--fields" in args
    args = [a for a in args if a != "--fields"]
    if not args:
        sys.exit(__doc__)
    warden = os.environ.get("WARDEN", "target/release/warden")
    sigma = os.environ.get("SIGMA", "../shared/sigma")
    read_raw(args)
    docs = list(documents(args))
    if not docs:
        sys.exit("no documents with a winlog object found")
    if fields:
        check_fields(docs, sigma)
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
