"""Print a saved benchmark run as a table and check it against the floors.

    python benches/check.py RESULT.json [--floors benches/floors.json]

RESULT.json is pytest-benchmark's --benchmark-json output of benches/. Exits
with status 1 when a result falls under a floor of benches/floors.json
(every rule whose 'match' fits the result applies; 'min' floors and 'max'
ceilings), 2 when the file holds no
fastnorm results.
"""
import argparse
import json
import pathlib
import sys

from fastnorm._benchmarks import format_table

HERE = pathlib.Path(__file__).resolve().parent


def matches(rule_match, info):
    for key, want in rule_match.items():
        allowed = want if isinstance(want, list) else [want]
        if info.get(key) not in allowed:
            return False
    return True


def violations(infos, rules):
    """(case description, metric, value, floor) for every floor not met."""
    bad = []
    for info in infos:
        for rule in rules:
            if not matches(rule["match"], info):
                continue
            what = f"{info['case']} {info['shape']} {info['dtype']} {info['threads']} thr"
            for metric, floor in rule.get("min", {}).items():
                value = info.get(metric)
                if value is None or value < floor:
                    bad.append((what, metric, value, f">= {floor}"))
            for metric, ceiling in rule.get("max", {}).items():
                value = info.get(metric)
                if value is None or value > ceiling:
                    bad.append((what, metric, value, f"<= {ceiling}"))
    return bad


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=pathlib.Path)
    parser.add_argument("--floors", type=pathlib.Path, default=HERE / "floors.json")
    args = parser.parse_args(argv)

    run = json.loads(args.result.read_text())
    size = run.get("fastnorm_bench_size", "full")
    infos = [dict(b["extra_info"], size=size) for b in run.get("benchmarks", [])
             if "case" in b.get("extra_info", {})]
    if not infos:
        print(f"{args.result}: no fastnorm benchmark results", file=sys.stderr)
        return 2
    print(f"size: {size}, machine: {run.get('machine_info', {}).get('cpu', {}).get('brand_raw', '?')}")
    print(format_table(infos))

    rules = json.loads(args.floors.read_text())["rules"]
    bad = violations(infos, rules)
    for what, metric, value, floor in bad:
        shown = "missing" if value is None else f"{value:.2f}"
        print(f"UNDER FLOOR: {what}: {metric} = {shown}, wanted {floor}", file=sys.stderr)
    print(f"{len(infos)} results, {len(bad)} under their floors")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
