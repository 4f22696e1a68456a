"""Writes a ~100 MB Helm-style stream: 50 gitlab-runner releases (from a real 0.92.0 render,
renamed per release) among 20,000 other documents of realistic size. Deterministic.
Usage: gen-large-stream.py BASE.yaml OUT.yaml [SCALE]  (SCALE 0.5: half the documents and releases)"""
import sys

base_path, out_path = sys.argv[1], sys.argv[2]
scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
documents, releases = int(20000 * scale), max(1, int(50 * scale))
base = open(base_path).read()
filler = """---
# Source: app/templates/configmap-{i}.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config-{i}
  namespace: "apps"
  labels:
    app: app-{i}
    tier: "backend"
  annotations:
    proxy-buffering: "on"
data:
  settings.json: |
{body}"""
body = "".join(f'    {{"key_{j}": "value {j} with some text to make it realistic", "enabled": true}}\n' for j in range(52))
with open(out_path, "w") as out:
    for i in range(documents):
        out.write(filler.format(i=i, body=body))
        if i % 400 == 0 and i // 400 < releases:
            r = f"rel{i // 400}"
            out.write(base.replace('"gitlab-runner"', f'"{r}"').replace("name: gitlab-runner", f"name: {r}-gitlab-runner"))
