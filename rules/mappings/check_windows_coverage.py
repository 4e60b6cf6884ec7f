#!/usr/bin/env python3
"""Check a Warden Windows mapping file against the SigmaHQ rules and regression events.

(a) Lists every distinct Windows logsource (category, product, service) used by the rules and the mapping
    entries it routes to (exact match on the logsource; otherwise every entry that agrees on each key the
    rule sets). Logsources that route nowhere are listed and make the check fail.
(b) For every regression event (regression_data/**/<rule-id>.json, several JSON values may follow each other),
    finds the rule named by info.yml and checks that at least one entry the rule routes to has its `conditions`
    satisfied by the event, and that the Sigma fields the rule uses resolve to paths present in the event
    (fields of the entry, then the global fields, then default_paths). Missing fields are reported; a failure is
    counted only when the condition cannot be satisfied with the present fields (fields used only under `not`
    never count).
(c) Additionally evaluates the rule on the event with a small Sigma matcher through the mapping (modifiers
    contains/startswith/endswith/all/windash/re/cidr/base64/base64offset/exists/fieldref/gt/gte/lt/lte,
    wildcards, keywords) and compares the number of matching events per file with info.yml's match_count.

Usage: check_windows_coverage.py [--mapping windows.yml] [--sigma /work/shared/sigma] [-v]
Exit status 0 when (a) has no unrouted logsource and (b) and (c) pass for every event.
Python 3 stdlib + PyYAML.
"""
import argparse
import base64
import collections
import fnmatch
import glob
import ipaddress
import json
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("PyYAML is required: pip install pyyaml")

LS_KEYS = ("category", "product", "service")
MISSING = object()


# ----------------------------------------------------------------------------------------------------------
# Mapping: routing, path lookup, field resolution
# ----------------------------------------------------------------------------------------------------------
def ls_key(ls):
    return tuple((k, str(ls[k]).lower()) for k in LS_KEYS if ls.get(k) is not None)


def route(mapping, rule_ls):
    """Entries a rule logsource routes to: exact (category, product, service) match, else every entry that
    agrees on every key the rule sets."""
    want = dict(ls_key(rule_ls))
    entries = mapping.get("logsources") or []
    exact = [e for e in entries if dict(ls_key(e.get("logsource") or {})) == want]
    if exact:
        return exact
    out = []
    for e in entries:
        have = dict(ls_key(e.get("logsource") or {}))
        if all(have.get(k) == v for k, v in want.items()):
            out.append(e)
    return out


def lookup(event, path):
    """Value at a dotted path (each segment a plain dict key, `#attributes` included); MISSING if absent.
    A dict with a `#text` key stands for its `#text`."""
    cur = event
    for seg in path.split("."):
        if isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
        else:
            return MISSING
    if isinstance(cur, dict) and "#text" in cur:
        cur = cur["#text"]
    return cur


def scalars(value):
    """Flatten an event value into a list of scalars (lists -> elements; dicts with #text -> #text)."""
    if value is MISSING:
        return []
    if isinstance(value, dict):
        if "#text" in value:
            return scalars(value["#text"])
        return [value]
    if isinstance(value, list):
        out = []
        for v in value:
            out.extend(scalars(v))
        return out
    return [value]


def to_str(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def field_paths(mapping, entry, field):
    ef = (entry or {}).get("fields") or {}
    if field in ef:
        return as_list(ef[field])
    gf = mapping.get("fields") or {}
    if field in gf:
        return as_list(gf[field])
    return [p.replace("{field}", field) for p in as_list(mapping.get("default_paths"))]


def field_values(mapping, entry, event, field):
    """(present, [scalar values]) over all the paths a Sigma field maps to (any-of)."""
    present, vals = False, []
    for p in field_paths(mapping, entry, field):
        if p.startswith("derived:"):
            continue  # built from other values (ecs.yml); not in evtx layouts
        v = lookup(event, p)
        if v is not MISSING:
            present = True
            vals.extend(scalars(v))
    return present, vals


def conditions_hold(entry, event):
    for path, want in (entry.get("conditions") or {}).items():
        got = lookup(event, path)
        if want == "*":
            if got is MISSING or got is None:
                return False
            continue
        wants = {to_str(w).lower() for w in as_list(want)}
        if not any(to_str(g).lower() in wants for g in scalars(got)):
            return False
    return True


# ----------------------------------------------------------------------------------------------------------
# Sigma condition parsing
# ----------------------------------------------------------------------------------------------------------
TOKEN_RE = re.compile(r"\s*(\(|\)|[^\s()]+)")


def tokenize(cond):
    toks, pos = [], 0
    cond = cond.strip()
    while pos < len(cond):
        m = TOKEN_RE.match(cond, pos)
        if not m:
            raise ValueError("cannot tokenize condition: %r" % cond)
        toks.append(m.group(1))
        pos = m.end()
    return toks


def parse_condition(cond):
    """AST: ('or', a, b) | ('and', a, b) | ('not', a) | ('id', name) | ('of', quant, pattern)."""
    toks = tokenize(cond)
    pos = [0]

    def peek():
        return toks[pos[0]].lower() if pos[0] < len(toks) else None

    def take():
        t = toks[pos[0]]
        pos[0] += 1
        return t

    def p_or():
        node = p_and()
        while peek() == "or":
            take()
            node = ("or", node, p_and())
        return node

    def p_and():
        node = p_not()
        while peek() == "and":
            take()
            node = ("and", node, p_not())
        return node

    def p_not():
        if peek() == "not":
            take()
            return ("not", p_not())
        return p_atom()

    def p_atom():
        t = peek()
        if t is None:
            raise ValueError("unexpected end of condition: %r" % cond)
        if t == "(":
            take()
            node = p_or()
            if peek() != ")":
                raise ValueError("missing ) in %r" % cond)
            take()
            return node
        tok = take()
        if pos[0] < len(toks) and toks[pos[0]].lower() == "of":
            take()
            return ("of", tok.lower(), take())
        return ("id", tok)

    node = p_or()
    if pos[0] != len(toks):
        raise ValueError("trailing tokens in %r" % cond)
    return node


def expand_pattern(pattern, names):
    if pattern.lower() == "them":
        return [n for n in names if not n.startswith("_")]
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def eval_ast(node, ident_value, names):
    kind = node[0]
    if kind == "or":
        return eval_ast(node[1], ident_value, names) or eval_ast(node[2], ident_value, names)
    if kind == "and":
        return eval_ast(node[1], ident_value, names) and eval_ast(node[2], ident_value, names)
    if kind == "not":
        return not eval_ast(node[1], ident_value, names)
    if kind == "id":
        return ident_value(node[1])
    quant, pattern = node[1], node[2]
    members = expand_pattern(pattern, names)
    if quant == "all":
        return bool(members) and all(ident_value(m) for m in members)
    return any(ident_value(m) for m in members)


def eval_structural(node, ident_value, names):
    """Like eval_ast but a negated sub-expression is assumed satisfiable (filters may legitimately refer to
    fields that are absent)."""
    kind = node[0]
    if kind == "or":
        return eval_structural(node[1], ident_value, names) or eval_structural(node[2], ident_value, names)
    if kind == "and":
        return eval_structural(node[1], ident_value, names) and eval_structural(node[2], ident_value, names)
    if kind == "not":
        return True
    return eval_ast(node, ident_value, names)


def identifier_polarity(node, names, negated=False, out=None):
    """identifier -> set of polarities ('pos'/'neg') it is used with."""
    out = out if out is not None else collections.defaultdict(set)
    kind = node[0]
    if kind in ("or", "and"):
        identifier_polarity(node[1], names, negated, out)
        identifier_polarity(node[2], names, negated, out)
    elif kind == "not":
        identifier_polarity(node[1], names, not negated, out)
    elif kind == "id":
        out[node[1]].add("neg" if negated else "pos")
    else:
        for m in expand_pattern(node[2], names):
            out[m].add("neg" if negated else "pos")
    return out


# ----------------------------------------------------------------------------------------------------------
# Sigma value matching
# ----------------------------------------------------------------------------------------------------------
class Unsupported(Exception):
    pass


def sigma_glob_to_regex(value, windash=False):
    """Sigma string with wildcards (* ?, backslash escapes \\* \\? \\\\) -> regex source (unanchored)."""
    out, i, n = [], 0, len(value)
    dash_class = "[-/\u2013\u2014\u2015]"
    while i < n:
        c = value[i]
        if c == "\\" and i + 1 < n and value[i + 1] in "*?\\":
            out.append(re.escape(value[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif windash and c in "-/" and (i == 0 or not (value[i - 1].isalnum() or value[i - 1] == "_")) \
                and i + 1 < n and (value[i + 1].isalnum() or value[i + 1] == "_"):
            out.append(dash_class)
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def b64_offsets(raw):
    out = []
    for i in range(3):
        enc = base64.b64encode(b" " * i + raw).decode()
        start = (0, 2, 3)[i]
        end = (None, -3, -2)[(len(raw) + i) % 3]
        out.append(enc[start:end])
    return out


def encode_for(value, mods):
    raw = value.encode("utf-16-le") if ({"wide", "utf16le"} & mods) else \
        value.encode("utf-16-be") if "utf16be" in mods else \
        (b"\xff\xfe" + value.encode("utf-16-le")) if "utf16" in mods else value.encode()
    if "base64offset" in mods:
        return b64_offsets(raw)
    if "base64" in mods:
        return [base64.b64encode(raw).decode()]
    return [value]


def value_matcher(value, mods, ctx):
    """Return predicate(event_scalar) -> bool for one Sigma value with modifiers."""
    if "exists" in mods:
        raise AssertionError("handled by caller")
    if "fieldref" in mods:
        present, ref_vals = ctx["field"](str(value))
        ref = [to_str(v).lower() for v in ref_vals]

        def pred(ev):
            s = to_str(ev).lower()
            if "contains" in mods:
                return any(r in s for r in ref)
            if "startswith" in mods:
                return any(s.startswith(r) for r in ref)
            if "endswith" in mods:
                return any(s.endswith(r) for r in ref)
            return s in ref
        return pred
    if "cidr" in mods:
        net = ipaddress.ip_network(str(value), strict=False)

        def pred(ev):
            try:
                return ipaddress.ip_address(to_str(ev).strip()) in net
            except ValueError:
                return False
        return pred
    if {"gt", "gte", "lt", "lte"} & mods:
        num = float(value)

        def pred(ev):
            try:
                x = float(to_str(ev))
            except ValueError:
                return False
            return (("gt" in mods and x > num) or ("gte" in mods and x >= num)
                    or ("lt" in mods and x < num) or ("lte" in mods and x <= num))
        return pred
    if "re" in mods:
        flags = 0
        if "i" in mods:
            flags |= re.IGNORECASE
        if "m" in mods:
            flags |= re.MULTILINE
        if "s" in mods:
            flags |= re.DOTALL
        rx = re.compile(str(value), flags)
        return lambda ev: rx.search(to_str(ev)) is not None
    if "expand" in mods:
        raise Unsupported("expand")
    if isinstance(value, bool) or isinstance(value, (int, float)):
        want = to_str(value).lower()
        return lambda ev: to_str(ev).lower() == want
    variants = encode_for(str(value), mods)
    regexes = []
    for v in variants:
        src = sigma_glob_to_regex(v, windash="windash" in mods)
        if "contains" in mods or "base64offset" in mods:
            src = ".*" + src + ".*"
        elif "startswith" in mods:
            src = src + ".*"
        elif "endswith" in mods:
            src = ".*" + src
        regexes.append(re.compile(src, re.IGNORECASE | re.DOTALL))
    return lambda ev: any(r.fullmatch(to_str(ev)) for r in regexes)


KNOWN_MODS = {"contains", "startswith", "endswith", "all", "windash", "re", "i", "m", "s", "cidr", "base64",
              "base64offset", "wide", "utf16", "utf16le", "utf16be", "exists", "fieldref", "gt", "gte", "lt",
              "lte", "expand", "cased"}


def match_field_item(key, values, ctx):
    parts = key.split("|")
    field, mods = parts[0], set(m.lower() for m in parts[1:])
    unknown = mods - KNOWN_MODS
    if unknown:
        raise Unsupported(",".join(sorted(unknown)))
    present, evs = ctx["field"](field)
    vals = as_list(values) if isinstance(values, list) else [values]
    if "exists" in mods:
        want = vals[0] if vals else True
        want = want if isinstance(want, bool) else str(want).lower() == "true"
        return present == want
    if not vals:
        return False
    results = []
    for v in vals:
        if v is None:
            results.append((not present) or all(e is None or to_str(e) == "" for e in evs))
            continue
        if v == "" and not mods:
            results.append(any(to_str(e) == "" for e in evs) if present else False)
            continue
        pred = value_matcher(v, mods, ctx)
        results.append(any(pred(e) for e in evs))
    return all(results) if "all" in mods else any(results)


def all_strings(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "#attributes" and isinstance(v, dict) and "xmlns" in v:
                continue
            all_strings(v, out)
    elif isinstance(node, list):
        for v in node:
            all_strings(v, out)
    elif node is not None:
        out.append(to_str(node))
    return out


def match_identifier(defn, ctx):
    if isinstance(defn, dict):
        return all(match_field_item(k, v, ctx) for k, v in defn.items())
    if isinstance(defn, list):
        if all(isinstance(x, dict) for x in defn):
            return any(match_identifier(x, ctx) for x in defn)
        return any(match_keyword(x, ctx) for x in defn)
    return match_keyword(defn, ctx)


def match_keyword(value, ctx):
    if isinstance(value, dict):
        return match_identifier(value, ctx)
    rx = re.compile(".*" + sigma_glob_to_regex(to_str(value)) + ".*", re.IGNORECASE | re.DOTALL)
    return any(rx.fullmatch(s) for s in ctx["strings"]())


def identifier_fields(defn):
    """List of alternatives, each the list of (field, mods, values) that must all hold."""
    if isinstance(defn, dict):
        return [[(k.split("|")[0], set(k.split("|")[1:]), v) for k, v in defn.items()]]
    if isinstance(defn, list) and defn and all(isinstance(x, dict) for x in defn):
        alts = []
        for x in defn:
            alts.extend(identifier_fields(x))
        return alts
    return [[]]  # keywords: no fields


def needs_presence(mods, values):
    """Does a field item need the field to exist to be satisfiable?"""
    if "exists" in mods:
        return False
    vals = values if isinstance(values, list) else [values]
    return not any(v is None for v in vals)


# ----------------------------------------------------------------------------------------------------------
# Rule evaluation against one event through one mapping entry
# ----------------------------------------------------------------------------------------------------------
class RuleCheck:
    def __init__(self, rule):
        self.rule = rule
        det = rule["detection"]
        self.defs = {k: v for k, v in det.items() if k not in ("condition", "timeframe", "fields")}
        conds = det["condition"]
        conds = conds if isinstance(conds, list) else [conds]
        self.asts = [parse_condition(c) for c in conds]
        self.names = list(self.defs)
        pol = collections.defaultdict(set)
        for a in self.asts:
            for k, v in identifier_polarity(a, self.names).items():
                pol[k] |= v
        self.polarity = pol

    def context(self, mapping, entry, event):
        cache = {}

        def field(name):
            if name not in cache:
                cache[name] = field_values(mapping, entry, event, name)
            return cache[name]
        strings_cache = []

        def strings():
            if not strings_cache:
                strings_cache.append(all_strings(event, []))
            return strings_cache[0]
        return {"field": field, "strings": strings}

    def matches(self, mapping, entry, event):
        ctx = self.context(mapping, entry, event)
        memo = {}

        def ident(name):
            if name not in memo:
                if name not in self.defs:
                    raise ValueError("unknown identifier %s" % name)
                memo[name] = match_identifier(self.defs[name], ctx)
            return memo[name]
        return any(eval_ast(a, ident, self.names) for a in self.asts)

    def structural(self, mapping, entry, event):
        """(satisfiable, missing_fields {field: polarity}) with 'all fields present' as the identifier value."""
        ctx = self.context(mapping, entry, event)
        missing = {}
        for name, defn in self.defs.items():
            for alt in identifier_fields(defn):
                for field, mods, values in alt:
                    if not needs_presence(mods, values):
                        continue
                    if "fieldref" in mods:
                        for v in as_list(values):
                            if not ctx["field"](str(v))[0]:
                                missing.setdefault(str(v), set()).update(self.polarity.get(name, {"unused"}))
                    if not ctx["field"](field)[0]:
                        missing.setdefault(field, set()).update(self.polarity.get(name, {"unused"}))

        def ident(name):
            for alt in identifier_fields(self.defs[name]):
                if all(ctx["field"](f)[0] or not needs_presence(m, v) for f, m, v in alt):
                    return True
            return False
        ok = any(eval_structural(a, ident, self.names) for a in self.asts)
        return ok, missing


# ----------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------
def load_rules(sigma_dir):
    rules, by_id = [], {}
    for f in sorted(glob.glob(os.path.join(sigma_dir, "rules*", "**", "*.yml"), recursive=True)):
        with open(f, encoding="utf-8") as fh:
            try:
                docs = list(yaml.safe_load_all(fh))
            except yaml.YAMLError as e:
                print("WARN: cannot parse %s: %s" % (f, e))
                continue
        for d in docs:
            if not isinstance(d, dict) or "logsource" not in d or "detection" not in d:
                continue
            d["_file"] = os.path.relpath(f, sigma_dir)
            rules.append(d)
            if d.get("id"):
                by_id[d["id"]] = d
    return rules, by_id


def load_events(path):
    s = open(path, encoding="utf-8").read()
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(s) and s[i].isspace():
            i += 1
        if i >= len(s):
            break
        obj, i = dec.raw_decode(s, i)
        out.append(obj)
    return out


def fmt_ls(ls):
    return "{" + ", ".join("%s: %s" % (k, ls[k]) for k in LS_KEYS if ls.get(k) is not None) + "}"


# ----------------------------------------------------------------------------------------------------------
def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mapping", default=os.path.join(here, "windows.yml"))
    ap.add_argument("--sigma", default="/work/shared/sigma")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every event, not only problems")
    args = ap.parse_args()

    mapping = yaml.safe_load(open(args.mapping, encoding="utf-8"))
    entries = mapping.get("logsources") or []
    names = [e.get("name") for e in entries]
    dup = [n for n, c in collections.Counter(names).items() if c > 1]
    if dup:
        print("ERROR: duplicate entry names: %s" % dup)
    rules, by_id = load_rules(args.sigma)
    failures = 0

    # ---------------- (a) logsource routing ----------------
    print("=" * 100)
    print("(a) Windows logsources used by %d rules under %s/rules*" % (len(rules), args.sigma))
    print("=" * 100)
    counts = collections.Counter()
    samples = {}
    for r in rules:
        ls = r.get("logsource") or {}
        if str(ls.get("product", "")).lower() != "windows" and str(ls.get("category", "")).lower() != "antivirus":
            continue
        k = ls_key(ls)
        counts[k] += 1
        samples.setdefault(k, ls)
    unrouted = []
    win_total = win_covered = 0
    for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        ls = samples[k]
        routed = route(mapping, ls)
        exact = bool(routed) and all(dict(ls_key(e["logsource"])) == dict(k) for e in routed)
        is_win = str(ls.get("product", "")).lower() == "windows"
        if is_win:
            win_total += 1
            win_covered += bool(routed)
        tag = "exact" if exact else "subset" if routed else "NONE"
        print("%5d  %-62s -> [%s] %s" % (n, fmt_ls(ls), tag, ", ".join(e["name"] for e in routed) or "-"))
        if not routed:
            unrouted.append((ls, n))
    print("-" * 100)
    print("windows logsources: %d distinct, %d routed, %d unrouted (rules with product windows: %d)"
          % (win_total, win_covered, win_total - win_covered,
             sum(n for k, n in counts.items() if dict(k).get("product") == "windows")))
    if unrouted:
        failures += len(unrouted)
        for ls, n in unrouted:
            print("UNROUTED: %s (%d rules)" % (fmt_ls(ls), n))

    # ---------------- (b)/(c) regression events ----------------
    print()
    print("=" * 100)
    print("(b) regression events: routing conditions + field resolution; (c) rule evaluation")
    print("=" * 100)
    infos = sorted(glob.glob(os.path.join(args.sigma, "regression_data", "**", "info.yml"), recursive=True))
    n_files = n_events = n_cond_ok = n_struct_ok = n_match = 0
    n_count_ok = n_skipped = 0
    notes = []
    missing_report = collections.Counter()
    problems = []
    per_entry = collections.Counter()
    for info_path in infos:
        info = yaml.safe_load(open(info_path, encoding="utf-8"))
        rid = (info.get("rule_metadata") or [{}])[0].get("id")
        rel = os.path.relpath(os.path.dirname(info_path), args.sigma)
        rule = by_id.get(rid)
        if rule is None:
            problems.append("%s: rule %s not found" % (rel, rid))
            failures += 1
            continue
        expected = None
        for t in info.get("regression_tests_info") or []:
            if isinstance(t, dict) and t.get("match_count") is not None:
                expected = int(t["match_count"])
        jsons = sorted(glob.glob(os.path.join(os.path.dirname(info_path), "*.json")))
        if not jsons:
            notes.append("%s: skipped, no JSON events (rule logsource %s; test type not evtx)"
                         % (rel, fmt_ls(rule["logsource"])))
            n_skipped += 1
            continue
        n_files += 1
        try:
            rc = RuleCheck(rule)
        except ValueError as e:
            problems.append("%s: cannot parse condition: %s" % (rel, e))
            failures += 1
            continue
        routed = route(mapping, rule["logsource"])
        file_matches = 0
        for jp in jsons:
            for idx, ev in enumerate(load_events(jp)):
                n_events += 1
                label = "%s [%s#%d]" % (rel, os.path.basename(jp)[:8], idx)
                sysd = (ev.get("Event") or {}).get("System") or {}
                eid = lookup(ev, "Event.System.EventID")
                what = "%s/%s" % (sysd.get("Channel"), to_str(eid))
                active = [e for e in routed if conditions_hold(e, ev)]
                if not active:
                    problems.append("%s: FAIL conditions: rule %s routes to [%s], none matches event %s"
                                    % (label, fmt_ls(rule["logsource"]), ", ".join(e["name"] for e in routed), what))
                    failures += 1
                    continue
                n_cond_ok += 1
                best = None
                for e in active:
                    ok, missing = rc.structural(mapping, e, ev)
                    try:
                        m = rc.matches(mapping, e, ev)
                    except Unsupported as ex:
                        m = None
                        problems.append("%s: unsupported modifier %s (evaluation skipped)" % (label, ex))
                    cand = (ok, bool(m), e, missing, m)
                    if best is None or (cand[0], cand[1]) > (best[0], best[1]):
                        best = cand
                ok, _, entry, missing, m = best
                per_entry[entry["name"]] += 1
                for f, pol in missing.items():
                    missing_report[(entry["name"], f, "/".join(sorted(pol)))] += 1
                if ok:
                    n_struct_ok += 1
                else:
                    failures += 1
                    problems.append("%s: FAIL fields: entry %s, condition unsatisfiable; missing %s"
                                    % (label, entry["name"], sorted(missing)))
                if m:
                    n_match += 1
                    file_matches += 1
                if args.verbose:
                    print("%-100s %-45s entry=%-28s struct=%s match=%s missing=%s"
                          % (label, what, entry["name"], ok, m, sorted(missing) or "-"))
        # A file passes when the rule fires on at least one of its events and on no fewer than match_count.
        # More matches than match_count is only noted: upstream counts are sometimes lower than the number of
        # events in the file that genuinely satisfy the rule.
        want = expected if expected is not None else 1
        if file_matches >= max(want, 1):
            n_count_ok += 1
            if expected is not None and file_matches > expected:
                notes.append("%s: rule fires on %d events of the file, info.yml match_count is %d"
                             % (rel, file_matches, expected))
        else:
            failures += 1
            problems.append("%s: FAIL evaluation: rule %s matched %d event(s), expected %s"
                            % (rel, rid, file_matches, want))

    if notes:
        print("Notes:")
        for p in notes:
            print("  " + p)
    if problems:
        print("Problems:")
        for p in problems:
            print("  " + p)
    print()
    print("Entries that carried the regression events: %s" % dict(per_entry.most_common()))
    if missing_report:
        print("Sigma fields absent from regression events (entry, field, polarity in condition: count):")
        for (en, f, pol), c in sorted(missing_report.items()):
            print("  %-28s %-28s %-8s %d" % (en, f, pol, c))
    print()
    print("-" * 100)
    print("SUMMARY")
    print("  (a) windows logsources: %d distinct, %d routed, %d route nowhere" % (win_total, win_covered,
                                                                                win_total - win_covered))
    print("  (b) regression files: %d checked (%d skipped without JSON), events: %d; routing conditions satisfied:"
          " %d/%d; rule fields resolvable: %d/%d" % (n_files, n_skipped, n_events, n_cond_ok, n_events,
                                                    n_struct_ok, n_events))
    print("  (c) rule fires through the mapping on %d/%d events; files where it fires >= max(1, match_count):"
          " %d/%d" % (n_match, n_events, n_count_ok, n_files))
    print("  RESULT: %s" % ("PASS" if failures == 0 else "FAIL (%d problems)" % failures))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
