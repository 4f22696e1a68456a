"""YAML 1.1 reader (PyYAML SafeLoader) as a second opinion next to the Go readers: prints a JSON
array with one element per non-empty document ({"__error__": ...} for a document it cannot read).
`=` and `<<` tags become markers instead of aborting; timestamps and other non-JSON values are
printed as {"__py__": repr}, so a string that PyYAML would read as a date shows up as different."""
import json
import sys

import yaml


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("tag:yaml.org,2002:value", lambda l, n: {"__value__": l.construct_scalar(n)})


def plain(v):
    if isinstance(v, dict):
        return {str(k) if not isinstance(k, bool) else json.dumps(k): plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return {"__py__": repr(v)}


def split(text):
    """Documents split like k8s.io/apimachinery's YAMLReader (and tests/go-reader/main.go)."""
    docs, cur = [], []
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if bare.startswith("---") and (len(bare) == 3 or bare[3] in " \t"):
            docs.append("".join(cur))
            cur = []
            rest = bare[3:].lstrip(" \t")
            if rest and not rest.startswith("#"):
                cur.append(line[3:])
            continue
        cur.append(line)
    docs.append("".join(cur))
    return docs


out = []
text = open(sys.argv[1], encoding="utf-8", newline="").read().lstrip("\ufeff")
for chunk in split(text):
    try:
        doc = yaml.load(chunk, Loader=Loader)
    except yaml.YAMLError as e:
        out.append({"__error__": str(e).splitlines()[0]})
        continue
    if doc is not None:
        out.append(plain(doc))
json.dump(out, sys.stdout)
