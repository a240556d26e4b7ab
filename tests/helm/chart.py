#!/usr/bin/env python3
"""Renders, lints and schema-checks charts/rollouts with Helm's own engine (helm-python-sdk,
Helm's Go SDK as a shared library). Used by tests/helm.rs and tests/e2e/ops.rs.

    chart.py render CHART NAME NAMESPACE [VALUES_JSON]   -> {"manifests": {...}, "crds": [...]}
    chart.py lint CHART [VALUES_JSON]                    -> the lint report (strict)
    chart.py schema CHART VALUES_JSON                    -> {} or {"error": "..."}

Prints one JSON object; exits 0 when the command ran (lint findings and schema errors are
data), 2 on a usage error, 1 when Helm refused (the error in {"error": ...}).
"""

import json
import sys


def main(argv):
    try:
        import helm_python as helm
    except ImportError as e:  # pragma: no cover - reported to the Rust test
        print(json.dumps({"error": f"helm-python-sdk is not installed: {e}"}))
        return 1
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, chart_dir = argv[0], argv[1]
    try:
        if cmd == "render" and len(argv) in (4, 5):
            values = json.loads(argv[4]) if len(argv) == 5 else None
            with helm.Chart.load(chart_dir) as chart:
                chart.validate_schema(values)
                manifests = chart.render(
                    values, name=argv[2], namespace=argv[3], is_install=True
                )
                out = {
                    "manifests": manifests,
                    "crds": chart.crds,
                    "helm": helm.helm_sdk_version(),
                }
        elif cmd == "lint" and len(argv) in (2, 3):
            values = json.loads(argv[2]) if len(argv) == 3 else None
            out = helm.lint(chart_dir, values, strict=True)
        elif cmd == "schema" and len(argv) == 3:
            with helm.Chart.load(chart_dir) as chart:
                try:
                    chart.validate_schema(json.loads(argv[2]))
                    out = {}
                except helm.HelmValuesError as e:
                    out = {"error": str(e)}
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except helm.HelmError as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
