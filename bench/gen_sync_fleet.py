#!/usr/bin/env python3
"""Writes a fleet of N products (each with its own backend) as operator CRs, for sync_bench.sh.

Per product: about 10 metrics and methods, 30 mapping rules, 4 plans with 10 limits each, one
backend (2 methods, 5 rules). Usage: gen_sync_fleet.py OUT_DIR PRODUCTS ADMIN_URL...
"""
import os
import sys

out, count, urls = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
os.makedirs(os.path.join(out, "products"), exist_ok=True)
with open(os.path.join(out, "fleet.yaml"), "w") as f:
    f.write("apiVersion: tandem/v1\nkind: Fleet\ninstances:\n")
    for i, url in enumerate(urls):
        f.write(f"  - name: sim{i}\n    adminUrl: {url}\n    token: {{env: BENCH_TOKEN}}\n"
                f"    concurrency: {os.environ.get('BENCH_CONCURRENCY', '16')}\n")
    f.write("resources:\n  - products/\n")

periods = ["minute", "hour", "day", "week", "month"]
for p in range(count):
    be = f"be{p:03d}"
    doc = [f"""apiVersion: capabilities.3scale.net/v1beta1
kind: Backend
metadata:
  name: {be}
spec:
  name: Backend {p}
  systemName: {be}
  privateBaseURL: https://{be}.internal.example.com
  methods:
    read:
      friendlyName: Read
    write:
      friendlyName: Write
  mappingRules:"""]
    for r in range(5):
        doc.append(f"""    - httpMethod: {'GET' if r % 2 == 0 else 'POST'}
      pattern: /items{r}/{{id}}
      metricMethodRef: {'read' if r % 2 == 0 else 'write'}
      increment: 1""")
    doc.append(f"""---
apiVersion: capabilities.3scale.net/v1beta1
kind: Product
metadata:
  name: product{p}
spec:
  name: Product {p}
  systemName: product{p:03d}
  deployment:
    apicastSelfManaged:
      productionPublicBaseURL: https://product{p}.api.example.com
      authentication:
        userkey:
          credentials: query
  backendUsages:
    {be}:
      path: /be
  metrics:
    hits:
      friendlyName: Hits
      unit: hit
      description: Number of API hits
    bytes:
      friendlyName: Bytes
      unit: byte
    records:
      friendlyName: Records
      unit: record
  methods:""")
    for m in range(6):
        doc.append(f"""    m{m}:
      friendlyName: Method {m}""")
    doc.append("  mappingRules:")
    for r in range(30):
        metric = f"m{r % 6}" if r % 3 else ("bytes" if r % 2 else "records")
        doc.append(f"""    - httpMethod: {['GET', 'POST', 'PUT', 'DELETE'][r % 4]}
      pattern: /v1/resource{r}/{{id}}
      metricMethodRef: {metric}
      increment: {1 + r % 3}""")
    doc.append("  applicationPlans:")
    for plan in range(4):
        doc.append(f"""    plan{plan}:
      name: Plan {plan}
      published: {'true' if plan % 2 == 0 else 'false'}
      limits:""")
        refs = ["hits", "bytes", "m0", "m1"]
        n = 0
        for ref in refs:
            for period in periods:
                if n == 10:
                    break
                doc.append(f"""        - period: {period}
          value: {(plan + 1) * 1000 + n}
          metricMethodRef:
            systemName: {ref}""")
                n += 1
    with open(os.path.join(out, "products", f"product{p:03d}.yaml"), "w") as f:
        f.write("\n".join(doc) + "\n")
