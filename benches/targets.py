#!/usr/bin/env python3
"""Print the median of every benchmark in target/criterion and check the targets of
docs/benchmarks.md against the medians of the last run.

Run it after `cargo bench -p guardrail-benches`; it reads `*/new/estimates.json`, which criterion
writes for the most recent run of each benchmark. Medians are in nanoseconds.
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def medians():
    found = {}
    for path in sorted(ROOT.glob("**/new/estimates.json")):
        name = str(path.parent.parent.relative_to(ROOT))
        found[name] = json.loads(path.read_text())["median"]["point_estimate"]
    return found


def main():
    if not ROOT.is_dir():
        sys.exit(f"no criterion output in {ROOT}: run `cargo bench -p guardrail-benches` first")
    times = medians()
    for name, median in times.items():
        print(f"{name:55} {median:12.1f} ns")
    print()

    # (description, value, limit, how to compare)
    checks = []

    def ratio(numerator, denominator):
        if numerator in times and denominator in times:
            return times[numerator] / times[denominator]
        return None

    for name in ("decision/evaluate_guardrails_allowed", "decision/axes_steps_4_to_7"):
        if name in times:
            checks.append((f"{name}, median (ns)", times[name], 250.0, "<="))
    checks.append(("evaluate_with_signature / bare_verify_strict",
                   ratio("decision/evaluate_with_signature", "decision/bare_verify_strict"),
                   1.05, "<="))
    for family in ("ip_allowlist_v4", "ip_allowlist_v6"):
        checks.append((f"{family}: 10,000 entries / 1 entry (hit)",
                       ratio(f"{family}/hit/10000", f"{family}/hit/1"), 2.0, "<="))
    for cedar in ("cedar/is_authorized", "cedar/build_and_authorize"):
        for ours in ("decision/evaluate_guardrails_allowed", "decision/axes_steps_4_to_7"):
            checks.append((f"{cedar} / {ours.split('/')[1]}", ratio(cedar, ours), 10.0, ">="))

    for description, value, limit, comparison in checks:
        if value is None:
            print(f"{description:60} not measured")
            continue
        if limit is None:
            print(f"{description:60} {value:10.3f}")
            continue
        met = value <= limit if comparison == "<=" else value >= limit
        verdict = "met" if met else "NOT met"
        print(f"{description:60} {value:10.3f}  target {comparison} {limit}: {verdict}")


if __name__ == "__main__":
    main()
