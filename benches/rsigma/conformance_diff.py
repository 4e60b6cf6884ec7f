#!/usr/bin/env python3
"""rsigma's verdicts on Warden's conformance suite.

Usage:
  python3 benches/rsigma/conformance_diff.py
Environment: RSIGMA (required).

Runs every case of `engine/detect/tests/conformance/*.yml` that has events
and no placeholders through rsigma (`engine eval`, no pipeline, the case's
rule and extra documents in one file) and prints each event whose verdict
differs from the one the suite expects (and Warden's tests hold it to),
with rsigma's error when it did not load the rule. A difference is a place
where the two engines read Sigma differently; benches/README.md says who
follows the specification in each.
"""
import glob
import json
import os
import subprocess
import tempfile

import yaml

SUITE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "../../engine/detect/tests/conformance")


def conformance_cases():
    """(file name, case, rule text with its extra documents) for every
    case of the suite that has events and no placeholders."""
    for path in sorted(glob.glob(os.path.join(SUITE, "*.yml"))):
        with open(path, encoding="utf-8") as f:
            cases = yaml.safe_load(f)["cases"]
        for case in cases:
            if "events" in case and not case.get("placeholders"):
                text = case["rule"] + ("\n---\n" + case["extra"] if case.get("extra") else "")
                yield os.path.basename(path), case, text


def main():
    rsigma = os.environ["RSIGMA"]
    total = differ = 0
    for name, case, text in conformance_cases():
        rule_id = str(next(yaml.safe_load_all(text)).get("id"))
        lines = "".join(json.dumps({**e["event"], "_n": i}) + "\n"
                        for i, e in enumerate(case["events"]))
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "rule.yml"), "w", encoding="utf-8") as f:
                f.write(text)
            out = subprocess.run([rsigma, "engine", "eval", "-r", d, "--output-format", "ndjson",
                                  "--include-event"], input=lines, capture_output=True, text=True)
        fired = {a["event"]["_n"] for a in map(json.loads, out.stdout.splitlines())
                 if str(a.get("rule_id")) == rule_id}
        # rsigma's last words when it raised nothing (a rule it did not load).
        error = "" if out.stdout else (out.stderr.strip().splitlines() or [""])[-1]
        for i, e in enumerate(case["events"]):
            total += 1
            if (i in fired) != bool(e["match"]):
                differ += 1
                print(f"{name}: {case['name']}: expected {e['match']}, rsigma {i in fired}: "
                      f"{json.dumps(e['event'])[:200]} {error}")
    print(f"{total} events, {total - differ} verdicts the same, {differ} differ")


if __name__ == "__main__":
    main()
