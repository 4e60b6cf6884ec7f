#!/usr/bin/env python3
"""Warden against rsigma on events derived from the rules themselves.

Usage:
  python3 benches/rsigma/rule_diff.py [EVENTS_OUT]
Environment as for compare.py: WARDEN [target/release/warden], RSIGMA
(required), SIGMA [../shared/sigma], WORK [/tmp/warden-vs-rsigma]; and
SEED [1], REPS [2] (rounds of events per rule).

Benign events (compare.py, evtx_diff.py) exercise few rules. Here every
rule of the five SigmaHQ folders gives events built to satisfy it: for each
round, one event per search identifier satisfying it alone, one satisfying
all of them (filters included), one satisfying every identifier whose name
does not start with `filter`, and a near miss of each of the last two (one
character dropped or inserted); the last two only when every identifier
could be satisfied. Values follow the modifiers: wildcards filled, case
scrambled unless `|cased`, contains/startswith/endswith padded, `|windash`
dashes and slashes at the start of a word varied, `|base64` and
`|base64offset` (at one of its three offsets, drawn at random) with the
UTF-16 forms encoded, `|re` strings generated from the pattern (and
checked with Python's `re`), `|cidr` addresses drawn from the network,
`|lt`..`|gte` numbers on the right side, `|fieldref` copies, `|neq` an
unrelated value, `|exists`, null.

Events are flat objects keyed by the rules' field names, each with an `_n`
number; both engines run without a mapping or pipeline, so every rule sees
every event (Warden: `warden detect` with no `--mapping`; rsigma: `engine
eval` with no pipeline). Prints the alert counts and, per rule Warden loads,
the events only one engine raised it on, with an example event.
"""
import base64
import collections
import ipaddress
import json
import os
import random
import re
import subprocess
import sys


try:  # Python 3.11 renamed the regex parser's modules
    import re._constants as C
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as C
    import sre_parse

from compare import rule_documents, rule_folders

FILL = ["", "x", " a ", "Zq9", "C:\\Windows\\Temp\\", " -f ", "\\", "..", "é", "0"]
CLASS = {C.CATEGORY_DIGIT: "5", C.CATEGORY_WORD: "k", C.CATEGORY_SPACE: " ",
         C.CATEGORY_NOT_DIGIT: "x", C.CATEGORY_NOT_WORD: "-", C.CATEGORY_NOT_SPACE: "q"}
OPERATORS = ("lt", "lte", "gt", "gte")


def scramble(s, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in s)


def filled(v, rng, wild=True):
    """A string Sigma value `v` matches: `*` and `?` filled, escapes resolved."""
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == "\\" and i + 1 < len(v) and v[i + 1] in "*?\\":
            out.append(v[i + 1])
            i += 2
            continue
        if c == "*" and wild:
            out.append(rng.choice(FILL))
        elif c == "?" and wild:
            out.append(rng.choice("a7_.Q"))
        else:
            out.append(c)
        i += 1
    return "".join(out)


def from_regex(pat, flags, rng):
    """A string `re.search(pat)` accepts, or None."""
    try:
        tree = sre_parse.parse(pat, flags)
    except Exception:
        return None

    groups = {}

    def gen(items):
        s = []
        for op, av in items:
            if op == C.LITERAL:
                s.append(chr(av))
            elif op == C.NOT_LITERAL:
                s.append("a" if av != ord("a") else "b")
            elif op == C.ANY:
                s.append(rng.choice("ab1 -"))
            elif op == C.IN:
                if any(o == C.NEGATE for o, _ in av):
                    s.append(rng.choice("qZ7_~% "))  # checked below
                    continue
                cands = []
                for o, a in av:
                    if o == C.LITERAL:
                        cands.append(chr(a))
                    elif o == C.RANGE:
                        c = rng.randint(a[0], a[1])
                        cands.append(chr(c if not 0xD800 <= c <= 0xDFFF else a[0]))
                    elif o == C.CATEGORY:
                        cands.append(CLASS.get(a, "z"))
                s.append(rng.choice(cands or ["a"]))
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
                lo, hi, sub = av
                for _ in range(rng.randint(lo, min(hi, lo + 3))):
                    s.append(gen(sub))
            elif op == C.SUBPATTERN:
                text = gen(av[-1])
                if av[0] is not None:
                    groups[av[0]] = text
                s.append(text)
            elif op == getattr(C, "ATOMIC_GROUP", None):
                s.append(gen(av))
            elif op == C.GROUPREF:
                s.append(groups.get(av, ""))
            elif op == C.BRANCH:
                s.append(gen(rng.choice(av[1])))
            elif op in (C.AT, C.ASSERT, C.ASSERT_NOT):
                pass
            elif op == C.CATEGORY:
                s.append(CLASS.get(av, "q"))
            else:
                raise ValueError(op)
        return "".join(s)

    for _ in range(8):
        groups.clear()
        try:
            core = gen(tree)
        except Exception:
            return None
        padded = rng.choice(["", "x ", "C:\\", "\n"]) + core + rng.choice(["", " y", "\\", ".exe"])
        for cand in (padded, core):
            try:
                if re.search(pat, cand, flags):
                    return cand
            except Exception:
                return None
    return None


def utf16(val, mods):
    if "utf16be" in mods:
        return val.encode("utf-16-be")
    if "utf16" in mods:
        return b"\xff\xfe" + val.encode("utf-16-le")
    if "wide" in mods or "utf16le" in mods:
        return val.encode("utf-16-le")
    return val.encode()


def base64_at(raw, off):
    """The base64 of `raw` written `off` bytes into a longer text."""
    return base64.b64encode(b"\0" * off + raw)[(0, 2, 3)[off]:].decode()


def value_for(mods, v, rng, ev):
    """(how, value) for a field that makes (`mods`, `v`) hold, or None:
    how is set, null or absent."""
    if v is None:
        return ("null", None)
    if isinstance(v, (list, dict)):
        return None
    if "neq" in mods and "fieldref" not in mods:
        # Differs from the value whatever else the modifiers say.
        return ("set", "zzneq" + str(rng.randint(0, 999)))
    if "exists" in mods:
        return ("set", "x") if v in (True, "true") else ("absent", None)
    if "fieldref" in mods:
        other = ev.get(str(v))
        if not isinstance(other, str):
            other = "ref" + str(rng.randint(0, 99))
            ev[str(v)] = other
        if "neq" in mods:
            return ("set", other + "_")
        pad = {"contains": ("a ", " b"), "startswith": ("", " b"), "endswith": ("a ", "")}
        for m, (a, b) in pad.items():
            if m in mods:
                return ("set", a + other + b)
        return ("set", other)
    op = [m for m in mods if m in OPERATORS]
    if op:
        step = {"lt": -1, "lte": 0, "gt": 1, "gte": 0}[op[0]]
        if isinstance(v, int) and not isinstance(v, bool):
            return ("set", v + step)
        try:
            n = float(v) + step
            return ("set", int(n) if n == int(n) else n)
        except (ValueError, TypeError, OverflowError):
            return None
    if "cidr" in mods:
        try:
            net = ipaddress.ip_network(str(v), strict=False)
        except ValueError:
            return None
        return ("set", str(net.network_address + rng.randint(0, min(net.num_addresses - 1, 1000))))
    if isinstance(v, (bool, int, float)):
        # A number or boolean in the rule matches its text in the event.
        return ("set", v if rng.random() < 0.5 else str(v).lower())
    v = str(v)
    if "re" in mods:
        flags = (re.I if "i" in mods else 0) | (re.M if "m" in mods else 0) | (re.S if "s" in mods else 0)
        s = from_regex(v, flags, rng)
        return None if s is None else ("set", s)
    if "base64offset" in mods:
        return ("set", "x " + base64_at(utf16(filled(v, rng, False), mods), rng.randint(0, 2)) + " y")
    if "base64" in mods:
        s = base64.b64encode(utf16(filled(v, rng, False), mods)).decode()
    else:
        s = filled(v, rng)
        if "windash" in mods:
            # A dash or slash starting a word, as Warden and pySigma vary it.
            s = re.sub(r"(?<![A-Za-z0-9_])[-/](?=[A-Za-z0-9_])",
                       lambda _: rng.choice(["-", "/", "\u2013", "\u2014", "\u2015"]), s)
        if "cased" not in mods:
            s = scramble(s, rng)
    if "contains" in mods:
        return ("set", rng.choice(FILL) + s + rng.choice(FILL))
    if "startswith" in mods:
        return ("set", s + rng.choice(FILL))
    if "endswith" in mods:
        return ("set", rng.choice(FILL) + s)
    return ("set", s)


def put(ev, field, how, val):
    if how == "absent":
        ev.pop(field, None)
    elif how == "null":
        ev[field] = None
    else:
        ev[field] = val


def satisfy_map(m, rng, ev):
    for key, vals in m.items():
        field, *mods = str(key).split("|")
        if "expand" in mods:
            return False
        vals = vals if isinstance(vals, list) else [vals]
        if not vals:
            continue
        # A keyword with modifiers: any field will do.
        target = field or "Keyword" + str(rng.randint(0, 3))
        if "all" in mods and len(vals) > 1:
            pieces = [value_for([x for x in mods if x != "all"], v, rng, ev) for v in vals]
            if any(p is None or p[0] != "set" for p in pieces):
                return False
            ev[target] = " ".join(str(p[1]) for p in pieces)
            continue
        r = value_for(mods, rng.choice(vals), rng, ev)
        if r is None:
            return False
        put(ev, target, *r)
    return True


def satisfy(ident, rng, ev):
    """Sets fields of `ev` so that search identifier `ident` holds."""
    if isinstance(ident, dict):
        return satisfy_map(ident, rng, ev)
    if isinstance(ident, list) and ident:
        pick = rng.choice(ident)
        if isinstance(pick, dict):
            return satisfy_map(pick, rng, ev)
        # A keyword: found in any string value.
        ev["Data" + str(rng.randint(0, 3))] = (
            rng.choice(FILL) + scramble(filled(str(pick), rng), rng) + rng.choice(FILL))
        return True
    if isinstance(ident, (str, int)):
        ev["Data"] = "a " + filled(str(ident), rng) + " b"
        return True
    return False


def near_miss(ev, rng):
    strs = [k for k, v in ev.items() if isinstance(v, str) and len(v) > 2]
    if not strs:
        return None
    out = dict(ev)
    k = rng.choice(strs)
    i = rng.randint(1, len(out[k]) - 2)
    out[k] = out[k][:i] + out[k][i + 1:] if rng.random() < 0.7 else out[k][:i] + "~" + out[k][i:]
    return out


def rule_events(det, rng, reps):
    """Events for one rule's detection section."""
    idents = {str(k): v for k, v in det.items() if k not in ("condition", "timeframe")}
    evs = []
    for _ in range(reps):
        whole, positive = {}, {}
        complete = True
        for name, ident in idents.items():
            single = {}
            if satisfy(ident, rng, single):
                evs.append(single)
            complete &= satisfy(ident, rng, whole)
            if not name.startswith("filter"):
                complete &= satisfy(ident, rng, positive)
        for ev in (whole, positive) if complete else ():
            if ev:
                evs.append(ev)
                miss = near_miss(ev, rng)
                if miss:
                    evs.append(miss)
    return evs


def synthesize(sigma, out_path, seed, reps):
    rng = random.Random(seed)
    n = 0
    with open(out_path, "w") as out:
        for _, doc in rule_documents(sigma):
            if isinstance(doc.get("detection"), dict):
                for ev in rule_events(doc["detection"], rng, reps):
                    ev["_n"] = n
                    out.write(json.dumps(ev) + "\n")
                    n += 1
    return n


def main():
    warden = os.environ.get("WARDEN", "target/release/warden")
    rsigma = os.environ["RSIGMA"]
    sigma = os.environ.get("SIGMA", "../shared/sigma")
    work = os.environ.get("WORK", "/tmp/warden-vs-rsigma")
    os.makedirs(work, exist_ok=True)
    events = sys.argv[1] if len(sys.argv) > 1 else os.path.join(work, "rule-events.jsonl")
    n = synthesize(sigma, events, int(os.environ.get("SEED", "1")), int(os.environ.get("REPS", "2")))
    rules, w_rules = rule_folders(sigma, work)
    check = subprocess.run([warden, "rules", "check", *w_rules[1::2], "--format", "json"],
                           capture_output=True, text=True)
    rejected = {r["rule_id"] for r in json.loads(check.stdout)["rejections"] if r.get("rule_id")}
    w = subprocess.run([warden, "detect", *w_rules, "--input", events], capture_output=True, text=True)
    r = subprocess.run([rsigma, "engine", "eval", "-r", rules, "--output-format", "ndjson", "--include-event"],
                       stdin=open(events), capture_output=True, text=True)
    for name, run in (("warden", w), ("rsigma", r)):
        if run.returncode != 0:
            sys.exit(f"{name} failed: {run.stderr[-2000:]}")
    titles = {}

    def alerts(out):
        got = set()
        for line in out.splitlines():
            a = json.loads(line)
            got.add((a["event"]["_n"], a["rule_id"]))
            titles[a["rule_id"]] = a["rule_title"]
        return got

    ws, rs = alerts(w.stdout), alerts(r.stdout)
    rs_loaded = {(e, i) for e, i in rs if i not in rejected}
    print(f"{n} events; Warden {len(ws)} alerts ({len(rejected)} rules rejected), rsigma {len(rs)} "
          f"({len(rs_loaded)} by rules Warden loads); {len(ws & rs)} the same")
    by_event = {}
    with open(events) as f:
        for line in f:
            ev = json.loads(line)
            by_event[ev["_n"]] = ev
    report((("Warden only", ws - rs), ("rsigma only", rs_loaded - ws)), titles, by_event)


def report(sides, titles, by_event):
    """Per (label, alerts only one side raised as (event number, rule id)):
    the rules, most alerts first, each with its first such event."""
    for label, only in sides:
        per = collections.defaultdict(list)
        for e, i in only:
            per[i].append(e)
        print(f"== {label}: {len(only)} alerts, {len(per)} rules")
        for i, es in sorted(per.items(), key=lambda x: (-len(x[1]), x[0])):
            print(f"{len(es):6} {i} {titles.get(i)}")
            print("       e.g.", json.dumps(by_event[min(es)])[:300])


if __name__ == "__main__":
    main()
