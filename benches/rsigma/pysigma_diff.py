#!/usr/bin/env python3
"""Warden against pySigma, Sigma's reference toolchain, on events derived
from the rules.

Usage:
  python3 benches/rsigma/pysigma_diff.py EVENTS
  python3 benches/rsigma/pysigma_diff.py --conformance
EVENTS: flat events with an `_n` number each, e.g. those
benches/rsigma/rule_diff.py writes. Environment: WARDEN
[target/release/warden], SIGMA [../shared/sigma]. Needs pySigma and its
SQLite backend (`pip install pySigma pySigma-backend-sqlite`, the backend
Zircolite runs SigmaHQ with).

Every rule of the five SigmaHQ folders is converted by pySigma, with no
pipeline, into an SQLite query; the events are loaded into one table (a
column per field, `TEXT COLLATE NOCASE` as Zircolite builds it, plus a
full-text column of every value for keyword searches; `REGEXP` is
Python's `re`); each query's rows are the events pySigma's reading of the
rule matches. Warden runs the same events with no mapping. Prints, per
rule both load, the events only one of them matches, with an example.

With --conformance, pySigma's reading of each case of Warden's conformance
suite (engine/detect/tests/conformance, cases with events and no
placeholders) is run on the case's events the same way and compared with
the verdicts the suite expects.
"""
import collections
import json
import os
import re
import sqlite3
import subprocess
import sys

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

from compare import FOLDERS, rule_files
from conformance_diff import conformance_cases
from rule_diff import report

FULLTEXT = "_fulltext"
# Zircolite's columns are TEXT COLLATE NOCASE (the default here). The
# conformance run uses NUMERIC affinity instead, so that its numbers compare
# as numbers (`Count|gt: 10` on 9); on the derived events that would turn
# " 1258" or "7.0" into numbers and lose their text.
TEXT = "TEXT COLLATE NOCASE"
NUMERIC = "NUMERIC COLLATE NOCASE"


def regexp(pattern, value):
    if value is None:
        return False
    try:
        return re.search(pattern, str(value)) is not None
    except re.error:
        return False


def load(events, column=TEXT):
    db = sqlite3.connect(":memory:")
    db.create_function("regexp", 2, regexp, deterministic=True)
    # SQLite's column names ignore case: fields spelled alike share one.
    rows, columns = [], {"_n": "_n"}
    with open(events) as f:
        for line in f:
            ev = json.loads(line)
            rows.append(ev)
            for k in ev:
                columns.setdefault(k.lower(), k)
    names = sorted(columns)
    quoted = ", ".join(f'"{columns[c]}" {column}' for c in names)
    db.execute(f'CREATE TABLE logs ({quoted}, "{FULLTEXT}" TEXT COLLATE NOCASE)')
    marks = ", ".join("?" for _ in range(len(names) + 1))
    listed = ", ".join(f'"{columns[c]}"' for c in names)

    def cell(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int) and not -(2**63) <= v < 2**63:
            return str(v)  # past SQLite's integers
        return v

    def row(ev):
        low = {k.lower(): v for k, v in ev.items()}
        values = [cell(low.get(c)) for c in names]
        text = "\n".join(str(cell(v)) for k, v in ev.items() if k != "_n" and v is not None)
        return values + [text]

    db.executemany(f'INSERT INTO logs ({listed}, "{FULLTEXT}") VALUES ({marks})', map(row, rows))
    return db, {ev["_n"]: ev for ev in rows}


def select(db, query, column=TEXT):
    """The `_n` of the rows `query` selects; a field no event has is added
    as an empty column first (it is null in every event)."""
    sql = query.replace("SELECT * FROM", "SELECT _n FROM", 1)
    while True:
        try:
            return [n for (n,) in db.execute(sql)]
        except sqlite3.OperationalError as e:
            missing = re.match(r"no such column: (.+)", str(e))
            if not missing:
                raise
            db.execute(f'ALTER TABLE logs ADD COLUMN "{missing.group(1)}" {column}')


def flatten(ev, prefix=""):
    """`ev` with nested objects as dotted keys; None if it holds an array."""
    out = {}
    for k, v in ev.items():
        if isinstance(v, list):
            return None
        if isinstance(v, dict):
            inner = flatten(v, prefix + k + ".")
            if inner is None:
                return None
            out.update(inner)
        else:
            out[prefix + k] = v
    return out


def conformance():
    import tempfile

    backend = sqliteBackend(fulltext_field=FULLTEXT)
    total = differ = skipped = 0
    for name, case, text in conformance_cases():
        try:
            queries = backend.convert(SigmaCollection.from_yaml(text))
        except Exception as e:  # noqa: BLE001 - reported
            skipped += len(case["events"])
            print(f"{name}: {case['name']}: not converted: {type(e).__name__}: {str(e)[:120]}")
            continue
        # A table holds scalars: nested objects become dotted columns;
        # events with arrays are left out.
        flat = {}
        for i, e in enumerate(case["events"]):
            row = flatten(e["event"])
            if row is None:
                skipped += 1
            else:
                flat[i] = {**row, "_n": i}
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for row in flat.values():
                f.write(json.dumps(row) + "\n")
        try:
            db, _ = load(f.name, NUMERIC)
            fired = set()
            for q in queries:
                fired.update(select(db, q, NUMERIC))
        finally:
            os.unlink(f.name)
        for i, e in enumerate(case["events"]):
            if i not in flat:
                continue
            total += 1
            got = i in {int(n) for n in fired}
            if got != bool(e["match"]):
                differ += 1
                print(f"{name}: {case['name']}: expected {e['match']}, pySigma {got}: "
                      f"{json.dumps(e['event'])[:160]}")
    print(f"{total} events, {total - differ} verdicts the same, {differ} differ; "
          f"{skipped} left out (not converted, or arrays)")


def main():
    if sys.argv[1:] == ["--conformance"]:
        conformance()
        return
    warden = os.environ.get("WARDEN", "target/release/warden")
    sigma = os.environ.get("SIGMA", "../shared/sigma")
    events = sys.argv[1]
    db, by_n = load(events)
    backend = sqliteBackend(fulltext_field=FULLTEXT)
    ps, converted, failed, titles = set(), set(), collections.Counter(), {}
    for path in rule_files(sigma):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        try:
            coll = SigmaCollection.from_yaml(text)
            queries = backend.convert(coll)
        except Exception as e:  # noqa: BLE001 - any conversion failure is reported
            failed[type(e).__name__] += 1
            continue
        rules = [r for r in coll.rules if getattr(r, "id", None)]
        if len(rules) != 1 or len(queries) != 1:
            failed["not one rule"] += 1
            continue
        rid = str(rules[0].id)
        titles[rid] = rules[0].title
        try:
            ps.update((int(n), rid) for n in select(db, queries[0]))
        except sqlite3.Error as e:
            failed["sqlite: " + str(e)[:40]] += 1
            continue
        converted.add(rid)
    rules = sum((["--rules", os.path.join(sigma, d)] for d in FOLDERS), [])
    out = subprocess.run([warden, "detect", *rules, "--input", events], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"warden failed: {out.stderr[-2000:]}")
    ws = set()
    for line in out.stdout.splitlines():
        a = json.loads(line)
        ws.add((a["event"]["_n"], a["rule_id"]))
        titles.setdefault(a["rule_id"], a["rule_title"])
    ws = {(n, i) for n, i in ws if i in converted}
    print(f"{len(by_n)} events; pySigma converted {len(converted)} rules ({sum(failed.values())} not: "
          f"{dict(failed)}); on those, Warden {len(ws)} alerts, pySigma/SQLite {len(ps)}, "
          f"{len(ws & ps)} the same")
    report((("Warden only", ws - ps), ("pySigma only", ps - ws)), titles, by_n)


if __name__ == "__main__":
    main()
