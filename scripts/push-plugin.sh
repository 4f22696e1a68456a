#!/usr/bin/env bash
# Pushes the signed Helm 4 plugin archive to an OCI registry, as Helm 4 reads a plugin artifact
# (helm/helm pkg/registry/plugin.go, internal/plugin/installer/oci_installer.go):
#   manifest  application/vnd.oci.image.manifest.v1+json, artifactType application/vnd.helm.plugin.v1+json
#   config    the OCI empty descriptor (application/vnd.oci.empty.v1+json, "{}")
#   layers    runner-patch-<version>.tgz      application/vnd.oci.image.layer.v1.tar+gzip
#             runner-patch-<version>.tgz.prov application/vnd.oci.image.layer.v1.tar
#             (Helm pulls only layers of these two media types, and finds each by its
#             org.opencontainers.image.title annotation: "<plugin>-*.tgz" and "<plugin>-*.tgz.prov")
#   tag       the plugin version
# Helm takes the plugin name from the repository's last path component, so the repository ends in
# /runner-patch: like `helm push`, the script appends it when REFERENCE does not already end in it.
#
# Usage: scripts/push-plugin.sh [--plain-http] oci://HOST[:PORT]/PATH [ARCHIVE]
#   ARCHIVE (relative to the current directory) defaults to the repository's
#   dist/runner-patch-<version>.tgz (scripts/package-plugin.sh); its .prov must
#   be beside it: an unsigned plugin is not pushed (Helm verifies OCI installs by default).
#   Credentials, if the registry wants them: REGISTRY_USERNAME / REGISTRY_PASSWORD (basic or token auth).
# Then: helm plugin install oci://HOST[:PORT]/PATH/runner-patch:<version> [--plain-http] --keyring KEYRING
#   (the version as a tag: Helm 4.3.1 ignores --version for OCI plugin sources)
# Last line of stdout: the pushed reference (oci://…:<version>); the line before: the manifest digest.
set -euo pipefail
plain_http=""
if [ "${1:-}" = "--plain-http" ]; then plain_http=1; shift; fi
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: scripts/push-plugin.sh [--plain-http] oci://HOST[:PORT]/PATH [ARCHIVE]" >&2; exit 2; }
# ARCHIVE is the caller's path: made absolute before moving to the repository.
archive="${2:-}"
case "$archive" in ""|/*) ;; *) archive="$PWD/$archive" ;; esac
cd "$(dirname "$0")/.."
version="$(sed -n 's/^version: *//p' plugin.yaml)"
archive="${archive:-$PWD/dist/runner-patch-$version.tgz}"
PLAIN_HTTP="$plain_http" exec python3 - "$1" "$archive" <<'PY'
import base64, hashlib, json, os, re, sys, urllib.error, urllib.parse, urllib.request

PLUGIN = "runner-patch"
ARTIFACT_TYPE = "application/vnd.helm.plugin.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY = b"{}"


def fail(msg):
    print(f"push-plugin: {msg}", file=sys.stderr)
    sys.exit(1)


ref, archive = sys.argv[1], sys.argv[2]
m = re.fullmatch(r"oci://([^/]+)((?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)/?", ref)
if not m:
    fail(f"{ref!r} is not oci://HOST[:PORT]/PATH (lower-case repository path)")
host, path = m.group(1), m.group(2).strip("/")
repo = path if path.rsplit("/", 1)[-1] == PLUGIN else "/".join(p for p in (path, PLUGIN) if p)
name = os.path.basename(archive)
m = re.fullmatch(re.escape(PLUGIN) + r"-(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?)\.tgz", name)
if not m:
    fail(f"{archive}: expected a file named {PLUGIN}-<version>.tgz")
version = m.group(1)
tag = version.replace("+", "_")  # OCI tags have no '+', Helm maps it to '_' for charts too
try:
    tgz = open(archive, "rb").read()
except OSError as e:
    fail(f"cannot read {archive}: {e.strerror}")
try:
    prov = open(archive + ".prov", "rb").read()
except OSError:
    fail(f"{archive}.prov not found: sign the archive first (HELM_PLUGIN_SIGN_KEY, scripts/package-plugin.sh)")

base = ("http" if os.environ.get("PLAIN_HTTP") else "https") + f"://{host}/v2/{repo}"
user, password = os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD")
auth_header = None


def token_for(challenge):
    """Answers a 401 challenge: basic credentials as they are, or a bearer token from the realm."""
    scheme, _, params = challenge.partition(" ")
    if scheme.lower() == "basic":
        if not user:
            fail(f"{host} wants credentials: set REGISTRY_USERNAME and REGISTRY_PASSWORD")
        return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    query = {"scope": f"repository:{repo}:pull,push"}
    if "service" in fields:
        query["service"] = fields["service"]
    req = urllib.request.Request(fields["realm"] + "?" + urllib.parse.urlencode(query))
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode())
    with urllib.request.urlopen(req) as r:
        body = json.load(r)
    return "Bearer " + (body.get("token") or body.get("access_token"))


def call(method, url, data=None, headers=None, ok=(200,)):
    global auth_header
    for attempt in (1, 2):
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        if auth_header:
            req.add_header("Authorization", auth_header)
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            if e.code == 401 and attempt == 1 and "WWW-Authenticate" in e.headers:
                auth_header = token_for(e.headers["WWW-Authenticate"])
                continue
            if e.code in ok:
                return e.code, e.headers, e.read()
            detail = e.read()[:500].decode("utf-8", "replace")
            fail(f"{method} {url}: HTTP {e.code} {e.reason}: {detail}")
        except urllib.error.URLError as e:
            fail(f"{method} {url}: {e.reason}")


def digest(blob):
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def upload(blob):
    d = digest(blob)
    status, _, _ = call("HEAD", f"{base}/blobs/{d}", ok=(200, 404))
    if status == 200:
        return d
    _, headers, _ = call("POST", f"{base}/blobs/uploads/", data=b"", ok=(202,))
    location = urllib.parse.urljoin(base + "/", headers["Location"])
    sep = "&" if "?" in location else "?"
    call("PUT", f"{location}{sep}digest={urllib.parse.quote(d)}", data=blob,
         headers={"Content-Type": "application/octet-stream"}, ok=(201,))
    return d


def descriptor(media_type, blob, title=None):
    d = {"mediaType": media_type, "digest": upload(blob), "size": len(blob)}
    if title:
        d["annotations"] = {"org.opencontainers.image.title": title}
    return d


manifest = {
    "schemaVersion": 2,
    "mediaType": MANIFEST_TYPE,
    "artifactType": ARTIFACT_TYPE,
    "config": descriptor("application/vnd.oci.empty.v1+json", EMPTY),
    "layers": [
        descriptor("application/vnd.oci.image.layer.v1.tar+gzip", tgz, name),
        descriptor("application/vnd.oci.image.layer.v1.tar", prov, name + ".prov"),
    ],
    "annotations": {
        "org.opencontainers.image.title": PLUGIN,
        "org.opencontainers.image.version": version,
    },
}
body = json.dumps(manifest, separators=(",", ":")).encode()
call("PUT", f"{base}/manifests/{tag}", data=body, headers={"Content-Type": MANIFEST_TYPE}, ok=(201,))
print(digest(body))
print(f"oci://{host}/{repo}:{tag}")
PY
