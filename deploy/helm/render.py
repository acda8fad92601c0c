#!/usr/bin/env python3
"""Renders the herald chart offline, as `helm template` would, without a helm
binary: through helm's own Go SDK (v4) as packaged by the `helm-python-sdk`
wheel (`pip install helm-python-sdk==0.2.2`). The e2e tests use it when no
`helm` binary is on PATH.

    render.py CHART [--values-json JSON] [--name NAME] [--namespace NS] [--lint]

Prints every rendered manifest as one multi-document YAML stream, each
document preceded by `# Source: <template>` like `helm template`. With
--lint, first runs helm's linter (strict) and fails on any warning or error.
Exit status 3 means the SDK is not installed.
"""

import argparse
import json
import sys

try:
    import helm_python as helm
except ImportError:
    print("render.py: the helm-python-sdk package is not installed "
          "(pip install helm-python-sdk==0.2.2)", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("chart")
    p.add_argument("--values-json", default="{}")
    p.add_argument("--name", default="herald")
    p.add_argument("--namespace", default="herald")
    p.add_argument("--lint", action="store_true")
    args = p.parse_args()
    values = json.loads(args.values_json)

    if args.lint:
        report = helm.lint(args.chart, values, strict=True, namespace=args.namespace)
        # Severity: 1 info, 2 warning, 3 error.
        bad = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        if bad or report.get("errors"):
            for m in bad:
                print(f"lint: {m.get('path')}: {m.get('error')}", file=sys.stderr)
            for e in report.get("errors") or []:
                print(f"lint: {e}", file=sys.stderr)
            return 1

    with helm.Chart.load(args.chart) as chart:
        manifests = chart.render(values, name=args.name, namespace=args.namespace,
                                 is_install=True)
    out = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt") or not manifests[path].strip():
            continue
        out.append(f"---\n# Source: {path}\n{manifests[path].strip()}\n")
    sys.stdout.write("".join(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except helm.HelmError as e:  # a template or values error: show helm's message
        print(f"render.py: {e}", file=sys.stderr)
        sys.exit(1)
