#!/usr/bin/python3
"""A small Kubernetes API server for kbatch's tests, and the kubelet of one node.

No real API server can be installed on the test machines, so this one keeps the parts of the real
REST and watch semantics that kbatch and kubectl depend on, and is held to the real `kubectl`
client by tests/integration/k8s/kubectl_test.sh:

* core/v1 Pods: create (Pod Security "restricted" admission, validation, AlreadyExists), get,
  list and watch with labelSelector/fieldSelector, resourceVersion, bookmarks, 410 Gone for a
  compacted resourceVersion, delete with gracePeriodSeconds and preconditions.uid (409 on a
  mismatch), log with follow/timestamps/sinceTime/tailLines (and the 1.32 `stream` parameter).
* core/v1 Nodes (kubernetes.io/hostname labels, Ready condition), Namespaces, Events.
* Discovery (/api, /api/v1, /apis, /version) and server-side Tables, as kubectl asks for them.
* Errors as Status objects (kind: Status, reason, code, details).
* Bearer token authentication and a read-only user whose writes get the RBAC 403.
* The kubelet of the one Ready node: each Pod's container runs with `kbatch exec` (as the Pod's
  runAsUser when the server runs as root); stdout and stderr are captured line by line with
  nanosecond timestamps; phases, container states and activeDeadlineSeconds as the kubelet sets
  them.
* Test controls under /_kbatch_test/ (admin token): cut the next watch or log stream, fail the
  next matching request, compact the watch history, take the API down and bring it back.

Listens on 127.0.0.1 only. Python 3 standard library plus the `openssl` command for the
certificates.
"""

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-kbatch-test",
                  "gitCommit": "0000000000000000000000000000000000000000",
                  "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                  "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# Pod Security Standards, "restricted" profile (k8s.io/pod-security-admission, policy "latest").
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}
ALL_VOLUME_TYPES = RESTRICTED_VOLUME_TYPES | {
    "hostPath", "nfs", "iscsi", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "rbd",
    "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte",
    "azureDisk", "portworxVolume", "scaleIO", "storageos", "photonPersistentDisk", "glusterfs",
    "image"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(ns):
    """Formats like Go's time.RFC3339Nano: trailing zeros of the fraction are dropped."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + ("%09d" % frac).rstrip("0")
    return text + "Z"


def parse_rfc3339_ns(text):
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    if not match:
        raise ValueError("not an RFC 3339 time: %r" % text)
    base = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    zone = match.group(4)
    offset = 0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    seconds = int(base.replace(tzinfo=datetime.timezone.utc).timestamp()) - offset
    frac = int((match.group(3) or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + frac


class ApiError(Exception):
    """An error the API answers with a Status object."""

    def __init__(self, code, reason, message, details=None, retry_after=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(kind_plural, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (kind_plural, name),
                    {"name": name, "kind": kind_plural})


# --------------------------------------------------------------------------------------------
# Selectors


def parse_label_selector(text):
    """Returns a predicate over a label dict; raises ApiError(400) on bad syntax."""
    requirements = []
    text = text.strip()
    position = 0
    # Split on commas that are not inside parentheses.
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    del position
    for raw in parts:
        part = raw.strip()
        if not part:
            continue
        match = re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if match:
            values = {v.strip() for v in match.group(3).split(",") if v.strip()}
            key, op = match.group(1), match.group(2)
            requirements.append((key, op, values))
            continue
        match = re.fullmatch(r"([^\s!=]+)\s*(==|!=|=)\s*([^\s!=]*)", part)
        if match:
            key, op, value = match.groups()
            requirements.append((key, "!=" if op == "!=" else "=", {value}))
            continue
        match = re.fullmatch(r"(!?)([^\s!=()]+)", part)
        if match:
            requirements.append((match.group(2), "!exists" if match.group(1) else "exists", set()))
            continue
        raise ApiError(400, "BadRequest", "unable to parse requirement: %r" % part)
    for key, _, values in requirements:
        if not LABEL_NAME.fullmatch(key.split("/")[-1]):
            raise ApiError(400, "BadRequest", "invalid label key %r" % key)

    def matches(labels):
        for key, op, values in requirements:
            present = key in labels
            if op == "=" and (not present or labels[key] not in values):
                return False
            if op == "!=" and present and labels[key] in values:
                return False
            if op == "in" and (not present or labels[key] not in values):
                return False
            if op == "notin" and present and labels[key] in values:
                return False
            if op == "exists" and not present:
                return False
            if op == "!exists" and present:
                return False
        return True

    return matches


FIELD_GETTERS = {
    "pods": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
        "spec.nodeName": lambda o: o["spec"].get("nodeName", ""),
        "spec.restartPolicy": lambda o: o["spec"].get("restartPolicy", ""),
        "status.phase": lambda o: o.get("status", {}).get("phase", ""),
        "status.podIP": lambda o: o.get("status", {}).get("podIP", ""),
    },
    "nodes": {"metadata.name": lambda o: o["metadata"]["name"],
              "spec.unschedulable": lambda o: str(o["spec"].get("unschedulable", False)).lower()},
    "events": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
        "involvedObject.name": lambda o: o["involvedObject"].get("name", ""),
        "involvedObject.namespace": lambda o: o["involvedObject"].get("namespace", ""),
        "involvedObject.uid": lambda o: o["involvedObject"].get("uid", ""),
        "involvedObject.kind": lambda o: o["involvedObject"].get("kind", ""),
        "reason": lambda o: o.get("reason", ""),
        "type": lambda o: o.get("type", ""),
    },
}


def parse_field_selector(text, resource):
    getters = FIELD_GETTERS[resource]
    requirements = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        match = re.fullmatch(r"([^!=]+)(==|!=|=)(.*)", part)
        if not match:
            raise ApiError(400, "BadRequest", "invalid selector: '%s'; can't understand '%s'"
                           % (text, part))
        field, op, value = match.groups()
        if field not in getters:
            kind = {"pods": "Pod", "nodes": "Node", "events": "Event"}[resource]
            raise ApiError(400, "BadRequest", 'field label not supported: %s' % field,
                           {"kind": kind})
        requirements.append((getters[field], op != "!=", value))
    return lambda obj: all((get(obj) == value) == equal for get, equal, value in requirements)


# --------------------------------------------------------------------------------------------
# Validation and Pod Security admission


def validate_pod(pod):
    causes = []
    name = pod["metadata"].get("name", "")

    def invalid(field, value, detail):
        causes.append({"reason": "FieldValueInvalid", "field": field,
                       "message": 'Invalid value: %s: %s' % (json.dumps(value), detail)})

    def required(field):
        causes.append({"reason": "FieldValueRequired", "field": field,
                       "message": "Required value"})

    if not name:
        required("metadata.name")
    elif len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
        invalid("metadata.name", name, "a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                "character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    for key, value in (pod["metadata"].get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            invalid("metadata.labels", value, "a valid label must be an empty string or consist of "
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character, at most 63 characters")
        name_part = key.split("/")[-1]
        if len(name_part) > 63 or not LABEL_NAME.fullmatch(name_part):
            invalid("metadata.labels", key, "name part must consist of alphanumeric characters, "
                    "'-', '_' or '.', at most 63 characters")
    for key, value in (pod["metadata"].get("annotations") or {}).items():
        if not isinstance(value, str):
            invalid("metadata.annotations", key, "annotation values must be strings")
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        required("spec.containers")
    seen = set()
    for index, container in enumerate(containers):
        path = "spec.containers[%d]" % index
        cname = container.get("name", "")
        if not cname:
            required(path + ".name")
        elif len(cname) > 63 or not DNS1123_LABEL.fullmatch(cname):
            invalid(path + ".name", cname, "a lowercase RFC 1123 label must consist of lower case "
                    "alphanumeric characters or '-'")
        elif cname in seen:
            causes.append({"reason": "FieldValueDuplicate", "field": path + ".name",
                           "message": 'Duplicate value: "%s"' % cname})
        seen.add(cname)
        if not container.get("image"):
            required(path + ".image")
        for env_index, env in enumerate(container.get("env") or []):
            if not env.get("name"):
                required("%s.env[%d].name" % (path, env_index))
        volume_names = {v.get("name") for v in spec.get("volumes") or []}
        for mount_index, mount in enumerate(container.get("volumeMounts") or []):
            if mount.get("name") not in volume_names:
                causes.append({"reason": "FieldValueNotFound",
                               "field": "%s.volumeMounts[%d].name" % (path, mount_index),
                               "message": 'Not found: "%s"' % mount.get("name")})
            if not str(mount.get("mountPath", "")).startswith("/"):
                invalid("%s.volumeMounts[%d].mountPath" % (path, mount_index),
                        mount.get("mountPath"), "must be an absolute path")
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        causes.append({"reason": "FieldValueNotSupported", "field": "spec.restartPolicy",
                       "message": 'Unsupported value: "%s": supported values: "Always", '
                                  '"OnFailure", "Never"' % policy})
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        invalid("spec.activeDeadlineSeconds", deadline, "must be greater than 0")
    for index, volume in enumerate(spec.get("volumes") or []):
        types = [k for k in volume if k != "name"]
        if len(types) != 1:
            causes.append({"reason": "FieldValueRequired", "field": "spec.volumes[%d]" % index,
                           "message": "must specify exactly 1 volume type"})
    if causes:
        summary = ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes)
        if len(causes) > 1:
            summary = "[" + summary + "]"
        raise ApiError(422, "Invalid", 'Pod "%s" is invalid: %s' % (name, summary),
                       {"name": name, "kind": "Pod", "causes": causes})


def restricted_violations(pod):
    """The Pod Security "restricted" checks, worded as pod-security-admission words them."""
    spec = pod.get("spec") or {}
    pod_sc = spec.get("securityContext") or {}
    containers = ((spec.get("initContainers") or []) + (spec.get("containers") or [])
                  + (spec.get("ephemeralContainers") or []))
    violations = []

    def container_list(names):
        quoted = ", ".join('"%s"' % n for n in names)
        return ("container " if len(names) == 1 else "containers ") + quoted

    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            violations.append(("host namespaces", "%s=true" % flag))
    privileged = [c["name"] for c in containers if (c.get("securityContext") or {}).get("privileged")]
    if privileged:
        violations.append(("privileged", "%s must not set securityContext.privileged=true"
                           % container_list(privileged)))
    host_path = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_path:
        violations.append(("hostPath volumes", "volume%s %s" % (
            "s" if len(host_path) > 1 else "", ", ".join('"%s"' % n for n in host_path))))
    bad_volumes = []
    for volume in spec.get("volumes") or []:
        for key in volume:
            if key != "name" and key not in RESTRICTED_VOLUME_TYPES:
                bad_volumes.append((volume["name"], key))
    if bad_volumes:
        violations.append(("restricted volume types", ", ".join(
            'volume "%s" uses restricted volume type "%s"' % v for v in bad_volumes)))
    host_ports = [c["name"] for c in containers
                  if any(p.get("hostPort") for p in c.get("ports") or [])]
    if host_ports:
        violations.append(("hostPort", "%s uses hostPort" % container_list(host_ports)))
    escalation = [c["name"] for c in containers
                  if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False]
    if escalation:
        violations.append(("allowPrivilegeEscalation != false",
                           "%s must set securityContext.allowPrivilegeEscalation=false"
                           % container_list(escalation)))
    bad_caps, missing_drop = [], []
    for c in containers:
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            missing_drop.append(c["name"])
        if any(cap != "NET_BIND_SERVICE" for cap in caps.get("add") or []):
            bad_caps.append(c["name"])
    if missing_drop or bad_caps:
        details = []
        if missing_drop:
            details.append('%s must set securityContext.capabilities.drop=["ALL"]'
                           % container_list(missing_drop))
        if bad_caps:
            details.append('%s must not include capabilities other than "NET_BIND_SERVICE" in '
                           'securityContext.capabilities.add' % container_list(bad_caps))
        violations.append(("unrestricted capabilities", "; ".join(details)))
    pod_non_root = pod_sc.get("runAsNonRoot")
    not_non_root = [c["name"] for c in containers
                    if (c.get("securityContext") or {}).get("runAsNonRoot",
                                                            pod_non_root) is not True]
    if pod_non_root is False or not_non_root:
        violations.append(("runAsNonRoot != true", "pod or %s must set "
                           "securityContext.runAsNonRoot=true" % container_list(not_non_root)))
    root_user = [c["name"] for c in containers
                 if (c.get("securityContext") or {}).get("runAsUser") == 0]
    if pod_sc.get("runAsUser") == 0 or root_user:
        violations.append(("runAsUser=0", "pod or %s must not set runAsUser=0"
                           % container_list(root_user or ["*"])))
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    bad_seccomp = []
    for c in containers:
        kind = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type",
                                                                                  pod_seccomp)
        if kind not in ("RuntimeDefault", "Localhost"):
            bad_seccomp.append(c["name"])
    if bad_seccomp or pod_seccomp == "Unconfined":
        violations.append(("seccompProfile", 'pod or %s must set securityContext.seccompProfile.'
                           'type to "RuntimeDefault" or "Localhost"' % container_list(bad_seccomp)))
    for c in containers + [{"name": None, "securityContext": pod_sc}]:
        sc = c.get("securityContext") or {}
        se = sc.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            violations.append(("seLinuxOptions", "forbidden securityContext.seLinuxOptions"))
            break
        if sc.get("procMount", "Default") != "Default":
            violations.append(("procMount", "forbidden securityContext.procMount"))
            break
    unsafe = [s["name"] for s in pod_sc.get("sysctls") or [] if s.get("name") not in SAFE_SYSCTLS]
    if unsafe:
        violations.append(("forbidden sysctls", ", ".join(unsafe)))
    return violations


# --------------------------------------------------------------------------------------------
# The object store with watch history


class Store:
    """Objects, the resourceVersion counter and the event history that watches replay."""

    def __init__(self, history_limit):
        self.lock = threading.Condition()
        self.resource_version = 1
        self.objects = {"pods": {}, "nodes": {}, "namespaces": {}, "events": {}}
        self.history = []  # (rv, resource, type, object)
        self.history_limit = history_limit
        self.oldest_watchable_rv = 1
        self.generation = 0  # bumped when the API is "restarted": open watches end

    def next_rv(self):
        self.resource_version += 1
        return self.resource_version

    def record(self, resource, event_type, obj):
        """Called with the lock held, after obj's resourceVersion has been set."""
        rv = int(obj["metadata"]["resourceVersion"])
        self.history.append((rv, resource, event_type, copy.deepcopy(obj)))
        if len(self.history) > self.history_limit:
            dropped = self.history.pop(0)
            self.oldest_watchable_rv = dropped[0] + 1
        self.lock.notify_all()

    def compact(self):
        with self.lock:
            self.history.clear()
            self.oldest_watchable_rv = self.resource_version + 1

    def put(self, resource, key, obj, event_type):
        with self.lock:
            obj["metadata"]["resourceVersion"] = str(self.next_rv())
            self.objects[resource][key] = obj
            self.record(resource, event_type, obj)
            return copy.deepcopy(obj)

    def remove(self, resource, key):
        with self.lock:
            obj = self.objects[resource].pop(key, None)
            if obj is None:
                return None
            obj["metadata"]["resourceVersion"] = str(self.next_rv())
            self.record(resource, "DELETED", obj)
            return copy.deepcopy(obj)

    def get(self, resource, key):
        with self.lock:
            obj = self.objects[resource].get(key)
            return copy.deepcopy(obj) if obj is not None else None

    def update(self, resource, key, mutate):
        """Applies mutate(obj) under the lock; records MODIFIED when it returns True."""
        with self.lock:
            obj = self.objects[resource].get(key)
            if obj is None:
                return None
            if mutate(obj) is False:
                return copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.next_rv())
            self.record(resource, "MODIFIED", obj)
            return copy.deepcopy(obj)


# --------------------------------------------------------------------------------------------
# The kubelet of the one Ready node


class ContainerLog:
    """Timestamped lines of one container, as the kubelet's CRI log keeps them."""

    def __init__(self):
        self.lines = []  # (timestamp ns, "stdout"|"stderr", bytes)
        self.finished = False
        self.started = False
        self.cond = threading.Condition()
        self.last_ns = 0

    def append(self, stream, data):
        with self.cond:
            stamp = max(time.time_ns(), self.last_ns + 1)
            self.last_ns = stamp
            self.lines.append((stamp, stream, data))
            self.cond.notify_all()

    def finish(self):
        with self.cond:
            self.finished = True
            self.cond.notify_all()


class Kubelet:
    def __init__(self, server_state, node_name, runtime, kbatch_path, claims, seccomp_root):
        self.state = server_state
        self.node_name = node_name
        self.runtime = runtime
        self.kbatch_path = kbatch_path
        self.claims = claims  # claim name -> host directory
        self.seccomp_root = seccomp_root
        self.logs = {}  # (ns, name, uid) -> ContainerLog
        self.processes = {}  # uid -> Popen
        self.kill_requests = {}  # uid -> threading.Event
        # uid -> threading.Event set on a kill request and when the container exits, so that the
        # kubelet reacts at once rather than at its next poll (a poll delay shows up in every
        # client's time per Pod, bench/k8s_overhead.sh).
        self.wakeups = {}
        self.image_store = None  # the kubelet's own image store (runtime kbatch), made on first pull
        self.pull_lock = threading.Lock()

    def pull_image(self, image):
        """Pulls a registry image ("host[:port]/repo[:tag|@sha256:...]") into the kubelet's own
        store with `kbatch pull`, as a kubelet's runtime would; returns (root, None) or (None,
        message). Only registry-qualified names are pulled: bare names have no registry here."""
        first = image.split("/", 1)[0]
        if self.runtime != "kbatch" or "/" not in image or not (
                "." in first or ":" in first or first == "localhost"):
            return None, ('failed to pull and unpack image "%s": not found in this test server\'s '
                          'image map and not a root filesystem directory' % image)
        with self.pull_lock:
            if image in self.state.images:
                return self.state.images[image], None
            if self.image_store is None:
                self.image_store = os.path.join(self.state.args.state_dir, "kubelet-images")
                os.makedirs(self.image_store, exist_ok=True)
                os.chmod(self.image_store, 0o755)
            # --insecure is honoured for loopback registries only (the tests' docker-registry).
            result = subprocess.run(
                [self.kbatch_path, "-q", "pull", "--insecure", "--json", "docker://" + image],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                     "KBATCH_CACHE": self.image_store, "HOME": self.image_store},
                stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if result.returncode != 0:
                return None, 'failed to pull and unpack image "%s": %s' % (
                    image, result.stderr.strip().splitlines()[-1] if result.stderr.strip() else
                    "kbatch pull exited %d" % result.returncode)
            root = json.loads(result.stdout)["rootfs"]
            # The Pod's user must reach the root the kubelet (root) unpacked.
            path = root
            while path.startswith(self.image_store) and path != self.image_store:
                os.chmod(path, os.stat(path).st_mode | 0o055)
                path = os.path.dirname(path)
            self.state.images[image] = root
            return root, None

    def log_for(self, pod):
        key = pod["metadata"]["uid"]
        return self.logs.get(key)

    def admit(self, pod):
        uid = pod["metadata"]["uid"]
        self.logs[uid] = ContainerLog()
        self.kill_requests[uid] = threading.Event()
        self.wakeups[uid] = threading.Event()
        threading.Thread(target=self.run_pod, args=(pod,), daemon=True,
                         name="kubelet-" + pod["metadata"]["name"]).start()

    def request_kill(self, uid):
        event = self.kill_requests.get(uid)
        if event:
            event.set()
            self.wakeups[uid].set()

    def pod_key(self, pod):
        return (pod["metadata"]["namespace"], pod["metadata"]["name"])

    def set_status(self, pod, mutate):
        key = self.pod_key(pod)
        uid = pod["metadata"]["uid"]

        def guarded(obj):
            if obj["metadata"]["uid"] != uid:
                return False
            return mutate(obj)

        return self.state.store.update("pods", key, guarded)

    def build_command(self, pod, container, image_root):
        env = {}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = item["value"]
        command = list(container.get("command") or []) + list(container.get("args") or [])
        if not command:
            raise RuntimeError("container has no command and the image has no default entry "
                               "point this test server can read")
        binds = []
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                if claim not in self.claims:
                    raise LookupError('persistentvolumeclaim "%s" not found' % claim)
                source = os.path.join(self.claims[claim], mount.get("subPath", "").lstrip("/"))
                mode = "ro" if mount.get("readOnly") or volume["persistentVolumeClaim"].get(
                    "readOnly") else "rw"
                binds.append((os.path.normpath(source), mount["mountPath"], mode))
        if self.runtime == "kbatch":
            argv = [self.kbatch_path, "exec", "--image", image_root]
            for source, dest, mode in binds:
                argv += ["--bind", "%s:%s:%s" % (source, dest, mode)]
            for key, value in env.items():
                argv += ["--env", "%s=%s" % (key, value)]
            limits = (container.get("resources") or {}).get("limits") or {}
            if "memory" in limits:
                argv += ["--memory", str(parse_quantity(limits["memory"]))]
            if "cpu" in limits:
                argv += ["--cpus", str(max(1, int(parse_quantity(limits["cpu"]) + 0.999)))]
            if container.get("workingDir"):
                argv += ["--workdir", container["workingDir"]]
            argv += ["--"] + command
            process_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            return argv, process_env, None
        # runtime "host": no isolation at all; only for developing the server itself.
        process_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"}
        process_env.update(env)
        return command, process_env, container.get("workingDir") or "/"

    def run_pod(self, pod):
        uid = pod["metadata"]["uid"]
        name = pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]
        log = self.logs[uid]
        kill = self.kill_requests[uid]
        start_time = now_rfc3339()
        started_monotonic = time.monotonic()

        def initial(obj):
            status = obj.setdefault("status", {})
            status["startTime"] = start_time
            status["hostIP"] = "127.0.0.1"
            status["hostIPs"] = [{"ip": "127.0.0.1"}]
            set_condition(status, "PodReadyToStartContainers", "True")
            set_condition(status, "Initialized", "True")
            set_condition(status, "Ready", "False", "ContainersNotReady")
            set_condition(status, "ContainersReady", "False", "ContainersNotReady")
            status["containerStatuses"] = [container_status(c, {"waiting": {
                "reason": "ContainerCreating"}}) for c in obj["spec"]["containers"]]

        self.set_status(pod, initial)
        deadline = pod["spec"].get("activeDeadlineSeconds")

        image = container["image"]
        image_root = self.state.images.get(image, image)
        pulled = False
        message = None
        if not os.path.isdir(image_root):
            image_root, message = self.pull_image(image)
            pulled = image_root is not None
        if image_root is None:
            self.state.add_event(pod, "Warning", "Failed", message)

            def pull_failed(obj):
                obj["status"]["containerStatuses"] = [container_status(c, {"waiting": {
                    "reason": "ErrImagePull", "message": message}})
                    for c in obj["spec"]["containers"]]
            self.set_status(pod, pull_failed)
            time.sleep(1.0)

            def backoff(obj):
                obj["status"]["containerStatuses"] = [container_status(c, {"waiting": {
                    "reason": "ImagePullBackOff",
                    "message": 'Back-off pulling image "%s"' % image}})
                    for c in obj["spec"]["containers"]]
            self.set_status(pod, backoff)
            self.wait_deadline_or_kill(pod, deadline, started_monotonic, kill, None)
            log.finish()
            return
        self.state.add_event(pod, "Normal", "Pulled",
                             ('Successfully pulled image "%s"' if pulled else
                              'Container image "%s" already present on machine') % image)
        try:
            argv, env, cwd = self.build_command(pod, container, image_root)
        except (RuntimeError, LookupError) as error:
            message = str(error)

            def create_failed(obj):
                obj["status"]["containerStatuses"] = [container_status(c, {"waiting": {
                    "reason": "CreateContainerConfigError", "message": message}})
                    for c in obj["spec"]["containers"]]
            self.set_status(pod, create_failed)
            self.state.add_event(pod, "Warning", "Failed", "Error: " + message)
            self.wait_deadline_or_kill(pod, deadline, started_monotonic, kill, None)
            log.finish()
            return
        security = dict(pod["spec"].get("securityContext") or {})
        security.update(container.get("securityContext") or {})
        if os.geteuid() == 0:
            # setpriv changes the credentials, not Popen's user/group/extra_groups: those make
            # Popen fork this whole Python process instead of vfork-ing it, about 20 ms here
            # before the container starts, which every client would see in its time per Pod.
            groups = [str(g) for g in pod["spec"].get("securityContext", {}).get(
                "supplementalGroups", [])]
            argv = ["setpriv",
                    "--reuid=%d" % security.get("runAsUser", 65534),
                    "--regid=%d" % security.get("runAsGroup", security.get("runAsUser", 65534)),
                    "--groups=" + ",".join(groups) if groups else "--clear-groups",
                    "--"] + argv
        try:
            wants_stdin = bool(container.get("stdin"))
            process = subprocess.Popen(argv, env=env, cwd=cwd,
                                       stdin=subprocess.PIPE if wants_stdin else subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
        except OSError as error:
            message = "failed to start container: %s" % error

            def start_failed(obj):
                obj["status"]["phase"] = "Failed"
                obj["status"]["containerStatuses"] = [container_status(c, {"terminated": {
                    "exitCode": 128, "reason": "StartError", "message": message,
                    "startedAt": "1970-01-01T00:00:00Z", "finishedAt": now_rfc3339()}})
                    for c in obj["spec"]["containers"]]
            self.set_status(pod, start_failed)
            log.finish()
            return
        self.processes[uid] = process
        running_since = now_rfc3339()
        self.state.add_event(pod, "Normal", "Created", "Created container " + container["name"])
        self.state.add_event(pod, "Normal", "Started", "Started container " + container["name"])

        def running(obj):
            status = obj["status"]
            status["phase"] = "Running"
            status["podIP"] = "10.0.0.%d" % (1 + len(self.processes) % 250)
            status["podIPs"] = [{"ip": status["podIP"]}]
            set_condition(status, "Ready", "True")
            set_condition(status, "ContainersReady", "True")
            status["containerStatuses"] = [container_status(c, {"running": {
                "startedAt": running_since}}, ready=True, started=True)
                for c in obj["spec"]["containers"]]
        # The log is readable before the status says Running, as with a real kubelet.
        with log.cond:
            log.started = True
            log.cond.notify_all()
        self.set_status(pod, running)
        readers = [threading.Thread(target=self.pump, args=(process.stdout, "stdout", log),
                                    daemon=True),
                   threading.Thread(target=self.pump, args=(process.stderr, "stderr", log),
                                    daemon=True)]
        for reader in readers:
            reader.start()
        outcome = self.wait_deadline_or_kill(pod, deadline, started_monotonic, kill, process)
        for reader in readers:
            reader.join(timeout=5)
        log.finish()
        returncode = process.returncode
        if outcome == "deadline":
            return
        exit_code = returncode if returncode >= 0 else 128 - returncode
        reason = "Completed" if exit_code == 0 else "Error"
        finished = now_rfc3339()

        def terminated(obj):
            status = obj["status"]
            if obj["metadata"].get("deletionTimestamp") is None:
                status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
            set_condition(status, "Ready", "False", "PodCompleted")
            set_condition(status, "ContainersReady", "False", "PodCompleted")
            set_condition(status, "PodReadyToStartContainers", "False")
            status["containerStatuses"] = [container_status(c, {"terminated": {
                "exitCode": exit_code, "reason": reason, "startedAt": running_since,
                "finishedAt": finished, "containerID": "kbatch://" + uid}}, started=False)
                for c in obj["spec"]["containers"]]
        self.set_status(pod, terminated)
        self.state.pod_finished(pod)
        del name

    def wait_deadline_or_kill(self, pod, deadline, started_monotonic, kill, process):
        """Waits for the process (or forever when there is none) until the deadline or a kill."""
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        wake = self.wakeups[pod["metadata"]["uid"]]
        if process is not None:
            def wait_for_exit():
                process.wait()
                wake.set()
            threading.Thread(target=wait_for_exit, daemon=True).start()
        while True:
            if process is not None and process.returncode is not None:
                return "exited"
            if kill.is_set():
                if process is not None:
                    grace = self.state.kill_grace.get(pod["metadata"]["uid"], grace)
                    self.stop_process(process, grace)
                    return "killed"
                return "killed"
            if deadline is not None and time.monotonic() - started_monotonic >= deadline:
                message = "Pod was active on the node longer than the specified deadline"
                self.state.add_event(pod, "Normal", "DeadlineExceeded", message)

                def exceeded(obj):
                    status = obj["status"]
                    status["phase"] = "Failed"
                    status["reason"] = "DeadlineExceeded"
                    status["message"] = message
                    set_condition(status, "Ready", "False", "PodFailed")
                self.set_status(pod, exceeded)
                if process is not None:
                    self.stop_process(process, grace)
                self.state.pod_finished(pod)
                return "deadline"
            timeout = 1.0
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - (time.monotonic() - started_monotonic)))
            wake.wait(timeout)
            wake.clear()

    @staticmethod
    def stop_process(process, grace):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=max(grace, 0))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    @staticmethod
    def pump(pipe, stream, log):
        for line in iter(pipe.readline, b""):
            log.append(stream, line)
        pipe.close()


def parse_quantity(text):
    text = str(text)
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                "m": 0.001, "": 1}
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m|)", text)
    if not match:
        raise ValueError("not a quantity: %r" % text)
    return float(match.group(1)) * suffixes[match.group(2)]


def set_condition(status, kind, value, reason=None):
    conditions = status.setdefault("conditions", [])
    for condition in conditions:
        if condition["type"] == kind:
            if condition["status"] != value:
                condition["lastTransitionTime"] = now_rfc3339()
            condition["status"] = value
            if reason:
                condition["reason"] = reason
            else:
                condition.pop("reason", None)
            return
    condition = {"type": kind, "status": value, "lastProbeTime": None,
                 "lastTransitionTime": now_rfc3339()}
    if reason:
        condition["reason"] = reason
    conditions.append(condition)


def container_status(container, state, ready=False, started=False):
    return {"name": container["name"], "image": container["image"], "imageID": "",
            "ready": ready, "started": started, "restartCount": 0, "state": state,
            "lastState": {}}


# --------------------------------------------------------------------------------------------
# Server state: users, nodes, faults


class ServerState:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.history_limit)
        self.images = {}
        for item in args.image or []:
            name, _, path = item.partition("=")
            self.images[name] = path
        claims = {}
        for item in args.claim or []:
            name, _, path = item.partition("=")
            claims[name] = path
        self.kubelet = Kubelet(self, args.node[0].split(":")[0], args.runtime, args.kbatch,
                               claims, args.seccomp_root)
        self.tokens = {args.token: ("kbatch-admin", True)}
        if args.readonly_token:
            self.tokens[args.readonly_token] = ("viewer", False)
        self.client_ca = args.client_ca
        self.faults = {"cut_watch_after": None, "cut_log_after": None, "fail": []}
        self.faults_lock = threading.Lock()
        self.kill_grace = {}
        self.event_counter = 0
        self.open_connections = set()
        self.connections_lock = threading.Lock()
        for index, spec in enumerate(args.node):
            self.add_node(spec, primary=index == 0)
        for namespace in args.namespace:
            self.store.put("namespaces", namespace, {
                "metadata": {"name": namespace, "uid": str(uuid.uuid4()),
                             "creationTimestamp": now_rfc3339(),
                             "labels": {"kubernetes.io/metadata.name": namespace,
                                        "pod-security.kubernetes.io/enforce": "restricted"}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}, "ADDED")

    def add_node(self, spec, primary):
        """NAME[:HOSTNAME_LABEL][:notready]"""
        parts = spec.split(":")
        name = parts[0]
        hostname = parts[1] if len(parts) > 1 and parts[1] else name
        ready = not (len(parts) > 2 and parts[2] == "notready")
        node = {
            "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339(),
                         "labels": {"kubernetes.io/hostname": hostname,
                                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                    "node-role.kubernetes.io/kbatch-test": ""}},
            "spec": {},
            "status": {
                "capacity": {"cpu": str(os.cpu_count() or 1), "memory": "%dKi" % (
                    os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024),
                    "pods": "110"},
                "allocatable": {"cpu": str(os.cpu_count() or 1), "memory": "%dKi" % (
                    os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024),
                    "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown",
                                "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                                "message": "kubelet is posting ready status" if ready
                                else "Kubelet stopped posting node status.",
                                "lastHeartbeatTime": now_rfc3339(),
                                "lastTransitionTime": now_rfc3339()}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                              {"type": "Hostname", "address": hostname}],
                "nodeInfo": {"kubeletVersion": SERVER_VERSION["gitVersion"],
                             "containerRuntimeVersion": "kbatch://" + self.args.runtime,
                             "operatingSystem": "linux", "architecture": "amd64",
                             "osImage": "kbatch test node", "kernelVersion": os.uname().release,
                             "kubeProxyVersion": "", "machineID": "", "systemUUID": "",
                             "bootID": ""}}}
        if not primary and ready:
            # Only the first node has a kubelet here; a second Ready node would never run Pods.
            node["status"]["conditions"][0].update(status="Unknown", reason="NodeStatusUnknown")
        self.store.put("nodes", name, node, "ADDED")

    def add_event(self, pod, kind, reason, message):
        with self.store.lock:
            self.event_counter += 1
            name = "%s.%x" % (pod["metadata"]["name"], self.event_counter)
            namespace = pod["metadata"]["namespace"]
        stamp = now_rfc3339()
        self.store.put("events", (namespace, name), {
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                         "creationTimestamp": stamp},
            "involvedObject": {"kind": "Pod", "namespace": namespace,
                               "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"],
                               "apiVersion": "v1"},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": "kubelet", "host": self.kubelet.node_name},
            "reportingComponent": "kubelet", "reportingInstance": self.kubelet.node_name},
            "ADDED")

    def pod_finished(self, pod):
        """A Pod being deleted gracefully disappears once its container has stopped."""
        current = self.store.get("pods", (pod["metadata"]["namespace"], pod["metadata"]["name"]))
        if current and current["metadata"]["uid"] == pod["metadata"]["uid"] and \
                current["metadata"].get("deletionTimestamp"):
            self.store.remove("pods", (pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def take_fault(self, method, path):
        with self.faults_lock:
            for fault in self.faults["fail"]:
                if fault.get("method", method) == method and re.search(fault["path"], path):
                    fault["count"] -= 1
                    if fault["count"] <= 0:
                        self.faults["fail"].remove(fault)
                    return fault
        return None


# --------------------------------------------------------------------------------------------
# HTTP


API_RESOURCES = [
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
     "verbs": ["create", "delete", "get", "list", "watch"], "shortNames": ["po"],
     "categories": ["all"]},
    {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
    {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
     "verbs": ["get"]},
    {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
     "verbs": ["get", "list", "watch"], "shortNames": ["no"]},
    {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
     "verbs": ["get", "list"], "shortNames": ["ns"]},
    {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event",
     "verbs": ["get", "list"], "shortNames": ["ev"]},
]

KIND_OF = {"pods": "Pod", "nodes": "Node", "namespaces": "Namespace", "events": "Event"}


def age(timestamp):
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())
    if seconds < 120:
        return "%ds" % seconds
    if seconds < 7200:
        return "%dm" % (seconds // 60)
    return "%dh" % (seconds // 3600)


def pod_display_status(pod):
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    if status.get("reason"):
        return status["reason"]
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            return state["waiting"]["reason"]
        if "terminated" in state:
            return state["terminated"].get("reason") or "Terminated"
    return status.get("phase", "Pending")


def table_for(resource, objects, rv):
    if resource == "pods":
        columns = [("Name", "string", "name"), ("Ready", "string", ""),
                   ("Status", "string", ""), ("Restarts", "string", ""), ("Age", "string", ""),
                   ("IP", "string", ""), ("Node", "string", "")]
        rows = []
        for pod in objects:
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            ready = sum(1 for cs in statuses if cs.get("ready"))
            rows.append([pod["metadata"]["name"], "%d/%d" % (ready, len(pod["spec"]["containers"])),
                         pod_display_status(pod), "0", age(pod["metadata"]["creationTimestamp"]),
                         (pod.get("status") or {}).get("podIP", "<none>"),
                         pod["spec"].get("nodeName", "<none>")])
    elif resource == "nodes":
        columns = [("Name", "string", "name"), ("Status", "string", ""), ("Roles", "string", ""),
                   ("Age", "string", ""), ("Version", "string", "")]
        rows = []
        for node in objects:
            ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
            rows.append([node["metadata"]["name"],
                         "Ready" if ready["status"] == "True" else "NotReady", "kbatch-test",
                         age(node["metadata"]["creationTimestamp"]),
                         node["status"]["nodeInfo"]["kubeletVersion"]])
    else:
        columns = [("Name", "string", "name"), ("Age", "string", "")]
        rows = [[o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"))]
                for o in objects]
    definitions = [{"name": name, "type": kind, "format": fmt, "description": name,
                    "priority": 0} for name, kind, fmt in columns]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(rv)}, "columnDefinitions": definitions,
            "rows": [{"cells": cells, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"]}} for cells, obj in zip(rows, objects)]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kbatch-k8s-test-server"

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write("k8s-test-server: %.3f %s\n" % (time.time(), fmt % args))

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()  # a failure ends this connection's thread only
            self.request.settimeout(None)
        super().setup()
        with self.server.state.connections_lock:
            self.server.state.open_connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.state.connections_lock:
                self.server.state.open_connections.discard(self.connection)

    # --- plumbing

    def send_json(self, code, body, extra_headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error_status(self, error):
        headers = {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
        self.send_json(error.code, error.status(), headers)

    def start_stream(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut_connection(self):
        """Drops the connection midway, as a proxy or a restarting server would."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def client_gone(self):
        """True once the client has closed its end of a streamed answer. A real API server ends
        a watch then; without this check, a watch whose client left without waiting for an event
        (kubectl's, or any client's that stops at the event it wanted) would live on until its
        timeout, waking at every change and scanning the history: the server slowed down with
        each such Pod (bench/k8s_overhead.sh saw it double over 300 Pods)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        # Nothing more is sent on a connection whose answer is a stream: readable means closed.
        self.connection.setblocking(False)
        try:
            self.connection.recv(1)
        except ssl.SSLWantReadError:
            return False  # part of a TLS record: not a close yet
        except (OSError, ssl.SSLError):
            pass
        finally:
            self.connection.setblocking(True)
        return True

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            raise ApiError(400, "BadRequest", "the request body is not JSON: %s" % error)

    def authenticate(self):
        state = self.server.state
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            user = state.tokens.get(header[len("Bearer "):].strip())
            if user:
                return user
            raise ApiError(401, "Unauthorized", "Unauthorized")
        peer = getattr(self.connection, "getpeercert", None)
        cert = peer() if peer else None
        if cert:
            subject = dict(item[0] for item in cert.get("subject", ()))
            if subject.get("commonName"):
                groups = [v for k, v in (item[0] for item in cert.get("subject", ()))
                          if k == "organizationName"]
                return (subject["commonName"], "system:masters" in groups)
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def authorize(self, user, verb, resource, namespace):
        name, is_admin = user
        if is_admin or verb in ("get", "list", "watch"):
            return
        where = ' in the namespace "%s"' % namespace if namespace else " at the cluster scope"
        raise ApiError(403, "Forbidden", 'pods is forbidden: User "%s" cannot %s resource "%s" '
                       'in API group ""%s' % (name, verb, resource, where),
                       {"kind": resource})

    # --- dispatch

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query,
                                                            keep_blank_values=True).items()}
        state = self.server.state
        try:
            fault = state.take_fault(method, path) if not path.startswith("/_kbatch_test") \
                else None
            if fault:
                if method in ("POST", "PUT", "PATCH"):
                    self.read_body()
                raise ApiError(fault["code"], fault.get("reason", "InternalError"),
                               fault.get("message", "injected failure"),
                               fault.get("details"), fault.get("retryAfter"))
            if path in ("/healthz", "/livez", "/readyz"):
                return self.send_text(200, b"ok")
            user = self.authenticate()
            if path.startswith("/_kbatch_test/"):
                return self.control(method, path, user)
            if path == "/version":
                return self.send_json(200, SERVER_VERSION)
            if path == "/api":
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [{
                                                "clientCIDR": "0.0.0.0/0",
                                                "serverAddress": "127.0.0.1"}]})
            if path == "/apis":
                return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                            "groups": []})
            if path == "/api/v1":
                return self.send_json(200, {"kind": "APIResourceList", "groupVersion": "v1",
                                            "resources": API_RESOURCES})
            self.route(method, path, query, user)
        except ApiError as error:
            self.send_error_status(error)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 - the server must answer, not die
            traceback.print_exc()
            self.send_error_status(ApiError(500, "InternalError", "internal error: %s" % error))

    def send_text(self, code, data):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self, method, path, query, user):
        parts = path.strip("/").split("/")
        # /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]] or /api/v1/{resource}[/{name}]
        if parts[:2] != ["api", "v1"]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rest = parts[2:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace = rest[1]
            rest = rest[2:]
        resource = rest[0] if rest else ""
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if resource not in KIND_OF or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource in ("nodes", "namespaces") and namespace is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and self.server.state.store.get("namespaces", namespace) is None:
            raise not_found("namespaces", namespace)
        watching = query.get("watch") in ("true", "1")
        if method == "GET" and sub != "attach":
            verb = "watch" if watching else ("get" if name else "list")
        elif method == "POST" and not name:
            verb = "create"
        elif method == "DELETE" and name and not sub:
            verb = "delete"
        elif method == "GET" and sub == "attach":
            verb = "create"  # RBAC: attaching needs create on pods/attach
        else:
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        self.authorize(user, verb, resource if not sub else resource + "/" + sub, namespace)
        if resource == "pods" and sub == "log":
            return self.pod_log(namespace, name, query)
        if resource == "pods" and sub == "attach" and method == "GET":
            return self.pod_attach(namespace, name, query)
        if sub is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if verb == "create":
            if resource != "pods":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource")
            return self.create_pod(namespace, query)
        if verb == "delete":
            if resource != "pods":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource")
            return self.delete_pod(namespace, name, query)
        if verb == "get":
            key = (namespace, name) if resource in ("pods", "events") else name
            obj = self.server.state.store.get(resource, key)
            if obj is None:
                raise not_found(resource, name)
            return self.send_object(resource, obj)
        if verb == "list":
            return self.list_objects(resource, namespace, query)
        return self.watch(resource, namespace, query)

    def wants_table(self):
        return "as=Table" in self.headers.get("Accept", "")

    def send_object(self, resource, obj):
        if self.wants_table():
            return self.send_json(200, table_for(resource, [obj],
                                                 obj["metadata"]["resourceVersion"]))
        obj = dict(obj, kind=KIND_OF[resource], apiVersion="v1")
        self.send_json(200, obj)

    def selected(self, resource, namespace, query):
        label = parse_label_selector(query.get("labelSelector", ""))
        field = parse_field_selector(query.get("fieldSelector", ""), resource) \
            if resource in FIELD_GETTERS else (lambda obj: True)

        def keep(obj):
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                return False
            return label(obj["metadata"].get("labels") or {}) and field(obj)
        return keep

    def list_objects(self, resource, namespace, query):
        keep = self.selected(resource, namespace, query)
        store = self.server.state.store
        with store.lock:
            rv = store.resource_version
            items = [copy.deepcopy(o) for o in store.objects[resource].values() if keep(o)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if self.wants_table():
            return self.send_json(200, table_for(resource, items, rv))
        self.send_json(200, {"kind": KIND_OF[resource] + "List", "apiVersion": "v1",
                             "metadata": {"resourceVersion": str(rv)}, "items": items})

    def watch(self, resource, namespace, query):
        state = self.server.state
        store = state.store
        keep = self.selected(resource, namespace, query)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        timeout = float(query.get("timeoutSeconds") or 1800)
        requested = query.get("resourceVersion", "")
        with state.faults_lock:
            cut_after = state.faults["cut_watch_after"]
            state.faults["cut_watch_after"] = None
        generation = store.generation
        pending = []
        with store.lock:
            if requested in ("", "0"):
                pending = [("ADDED", copy.deepcopy(o)) for o in store.objects[resource].values()
                           if keep(o)]
                cursor = store.resource_version
            else:
                try:
                    cursor = int(requested)
                except ValueError:
                    raise ApiError(400, "BadRequest", 'invalid resource version "%s"' % requested)
                if cursor + 1 < store.oldest_watchable_rv:
                    gone = ApiError(410, "Expired", "too old resource version: %d (%d)" % (
                        cursor, store.oldest_watchable_rv - 1))
                    self.start_stream("application/json")
                    self.write_chunk(json.dumps({"type": "ERROR",
                                                 "object": gone.status()}).encode() + b"\n")
                    self.end_stream()
                    return
        self.start_stream("application/json")
        sent = 0
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()

        def emit(event_type, obj):
            nonlocal sent
            obj = dict(obj, kind=KIND_OF[resource], apiVersion="v1")
            self.write_chunk(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")
            sent += 1
            if cut_after is not None and sent >= cut_after:
                raise ConnectionAbortedError("watch cut by test control")

        try:
            for event_type, obj in pending:
                emit(event_type, obj)
            while time.monotonic() < deadline:
                if self.client_gone():
                    self.close_connection = True
                    return
                with store.lock:
                    if store.generation != generation:
                        raise ConnectionAbortedError("API restarting")
                    events = [e for e in store.history if e[0] > cursor and e[1] == resource]
                    if not events:
                        store.lock.wait(0.25)
                        events = [e for e in store.history if e[0] > cursor and e[1] == resource]
                    if events:
                        cursor = events[-1][0]
                    else:
                        cursor = max(cursor, store.resource_version)
                for rv, _, event_type, obj in events:
                    if keep(obj):
                        emit(event_type, obj)
                if bookmarks and time.monotonic() - last_bookmark >= state.args.bookmark_interval:
                    last_bookmark = time.monotonic()
                    self.write_chunk(json.dumps({"type": "BOOKMARK", "object": {
                        "kind": KIND_OF[resource], "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(cursor)}}}).encode() + b"\n")
            self.end_stream()
        except ConnectionAbortedError:
            self.cut_connection()

    def create_pod(self, namespace, query):
        state = self.server.state
        pod = self.read_body()
        if not isinstance(pod, dict):
            raise ApiError(400, "BadRequest", "the request body must be a Pod object")
        if pod.get("kind", "Pod") != "Pod" or pod.get("apiVersion", "v1") != "v1":
            raise ApiError(400, "BadRequest", "the body is a %s/%s, not a v1 Pod" % (
                pod.get("apiVersion"), pod.get("kind")))
        metadata = pod.setdefault("metadata", {})
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
        if metadata.get("namespace") not in (None, "", namespace):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        metadata["namespace"] = namespace
        spec = pod.setdefault("spec", {})
        validate_pod(pod)
        violations = restricted_violations(pod) if state.args.pod_security == "restricted" else []
        if violations:
            text = ", ".join("%s (%s)" % v for v in violations)
            raise ApiError(403, "Forbidden", 'pods "%s" is forbidden: violates PodSecurity '
                           '"restricted:latest": %s' % (metadata["name"], text),
                           {"name": metadata["name"], "kind": "pods"})
        for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            metadata.pop(key, None)
        if query.get("dryRun"):
            metadata["uid"] = str(uuid.uuid4())
            return self.send_json(201, dict(pod, status={"phase": "Pending"}))
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now_rfc3339()
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        for container in spec["containers"]:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("imagePullPolicy", "IfNotPresent")
            container.setdefault("resources", {})
        scheduled = bool(spec.get("nodeName"))
        if not scheduled:
            # The scheduler: the one node with a kubelet.
            spec["nodeName"] = state.kubelet.node_name
        pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec),
                         "conditions": [{"type": "PodScheduled", "status": "True",
                                         "lastProbeTime": None,
                                         "lastTransitionTime": now_rfc3339()}]}
        store = state.store
        with store.lock:
            if (namespace, metadata["name"]) in store.objects["pods"]:
                raise ApiError(409, "AlreadyExists", 'pods "%s" already exists'
                               % metadata["name"], {"name": metadata["name"], "kind": "pods"})
            created = store.put("pods", (namespace, metadata["name"]), pod, "ADDED")
        state.add_event(created, "Normal", "Scheduled", "Successfully assigned %s/%s to %s" % (
            namespace, metadata["name"], spec["nodeName"]))
        node = store.get("nodes", spec["nodeName"])
        if node is not None and spec["nodeName"] == state.kubelet.node_name:
            state.kubelet.admit(created)
        # A Pod bound to an unknown or NotReady node stays Pending, as with a real cluster.
        self.send_json(201, dict(created, kind="Pod", apiVersion="v1"))

    def delete_pod(self, namespace, name, query):
        state = self.server.state
        store = state.store
        options = self.read_body() or {}
        grace = options.get("gracePeriodSeconds")
        if "gracePeriodSeconds" in query:
            grace = int(query["gracePeriodSeconds"])
        preconditions = options.get("preconditions") or {}
        key = (namespace, name)
        with store.lock:
            pod = store.objects["pods"].get(key)
            if pod is None:
                raise not_found("pods", name)
            uid = pod["metadata"]["uid"]
            if preconditions.get("uid") and preconditions["uid"] != uid:
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on Pod "%s": '
                               'Precondition failed: UID in precondition: %s, UID in object '
                               'meta: %s' % (name, preconditions["uid"], uid),
                               {"name": name, "kind": "Pod"})
            if preconditions.get("resourceVersion") and \
                    preconditions["resourceVersion"] != pod["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on Pod "%s": '
                               'Precondition failed: ResourceVersion in precondition: %s, '
                               'ResourceVersion in object meta: %s' % (
                                   name, preconditions["resourceVersion"],
                                   pod["metadata"]["resourceVersion"]),
                               {"name": name, "kind": "Pod"})
            if grace is None:
                grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
            finished = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
            running = uid in state.kubelet.processes and \
                state.kubelet.processes[uid].poll() is None
            if finished and not running or grace == 0 or \
                    pod["spec"].get("nodeName") != state.kubelet.node_name or \
                    uid not in state.kubelet.logs:
                result = store.remove("pods", key)
                immediate = True
            else:
                if pod["metadata"].get("deletionTimestamp") is None:
                    pod["metadata"]["deletionTimestamp"] = now_rfc3339()
                    pod["metadata"]["deletionGracePeriodSeconds"] = grace
                    pod["metadata"]["resourceVersion"] = str(store.next_rv())
                    store.record("pods", "MODIFIED", pod)
                result = copy.deepcopy(pod)
                immediate = False
        state.kill_grace[uid] = grace
        state.kubelet.request_kill(uid)
        if not immediate:
            state.add_event(result, "Normal", "Killing",
                            "Stopping container " + result["spec"]["containers"][0]["name"])
        self.send_json(200, dict(result, kind="Pod", apiVersion="v1"))

    def pod_log(self, namespace, name, query):
        state = self.server.state
        pod = state.store.get("pods", (namespace, name))
        if pod is None:
            raise not_found("pods", name)
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container") or containers[0]
        if container not in containers:
            raise ApiError(400, "BadRequest", 'container %s is not valid for pod %s'
                           % (container, name))
        log = state.kubelet.log_for(pod)
        if log is None or not log.started:
            reason = "ContainerCreating"
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                reason = (cs.get("state") or {}).get("waiting", {}).get("reason", reason)
            raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to start: %s'
                           % (container, name, reason))
        follow = query.get("follow") == "true"
        timestamps = query.get("timestamps") == "true"
        stream = query.get("stream", "All")
        if stream not in ("All", "Stdout", "Stderr"):
            raise ApiError(422, "Invalid", 'PodLogOptions "%s" is invalid: stream: Unsupported '
                           'value: "%s": supported values: "All", "Stdout", "Stderr"'
                           % (name, stream), {"name": name, "kind": "PodLogOptions", "causes": [
                               {"reason": "FieldValueNotSupported", "field": "stream"}]})
        wanted = {"All": ("stdout", "stderr"), "Stdout": ("stdout",), "Stderr": ("stderr",)}[stream]
        since_ns = None
        if query.get("sinceTime"):
            try:
                since_ns = parse_rfc3339_ns(query["sinceTime"])
            except ValueError as error:
                raise ApiError(400, "BadRequest", "sinceTime: %s" % error)
        elif query.get("sinceSeconds"):
            since_ns = time.time_ns() - int(query["sinceSeconds"]) * 1_000_000_000
        tail = int(query["tailLines"]) if query.get("tailLines") else None
        with state.faults_lock:
            cut_after = state.faults["cut_log_after"]
            state.faults["cut_log_after"] = None
        with log.cond:
            index = 0
            if tail is not None:
                candidates = [i for i, line in enumerate(log.lines) if line[1] in wanted
                              and (since_ns is None or line[0] >= since_ns)]
                index = candidates[-tail] if 0 < tail <= len(candidates) else (
                    len(log.lines) if tail == 0 else 0)
        self.start_stream("text/plain")
        sent = 0
        generation = state.store.generation
        try:
            while True:
                with log.cond:
                    while index >= len(log.lines) and not log.finished and follow:
                        if state.store.generation != generation:
                            raise ConnectionAbortedError("API restarting")
                        log.cond.wait(0.25)
                    batch = log.lines[index:]
                    index = len(log.lines)
                    done = log.finished or not follow
                for stamp, line_stream, data in batch:
                    if line_stream not in wanted or (since_ns is not None and stamp < since_ns):
                        continue
                    if timestamps:
                        data = rfc3339_nano(stamp).encode() + b" " + data
                    self.write_chunk(data)
                    sent += 1
                    if cut_after is not None and sent >= cut_after:
                        raise ConnectionAbortedError("log cut by test control")
                if done:
                    break
            self.end_stream()
        except ConnectionAbortedError:
            self.cut_connection()

    # --- attach over WebSocket (the channel.k8s.io protocols kubectl 1.30+ speaks)

    def ws_send(self, opcode, payload):
        header = bytes([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header += bytes([size])
        elif size < 65536:
            header += bytes([126]) + size.to_bytes(2, "big")
        else:
            header += bytes([127]) + size.to_bytes(8, "big")
        with self.ws_lock:
            self.wfile.write(header + payload)
            self.wfile.flush()

    def ws_read_frame(self):
        head = self.rfile.read(2)
        if len(head) < 2:
            return None, b""
        opcode = head[0] & 0x0F
        size = head[1] & 0x7F
        if size == 126:
            size = int.from_bytes(self.rfile.read(2), "big")
        elif size == 127:
            size = int.from_bytes(self.rfile.read(8), "big")
        mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = bytearray(self.rfile.read(size))
        for index in range(len(data)):
            data[index] ^= mask[index % 4]
        return opcode, bytes(data)

    def pod_attach(self, namespace, name, query):
        state = self.server.state
        pod = state.store.get("pods", (namespace, name))
        if pod is None:
            raise not_found("pods", name)
        if "websocket" not in self.headers.get("Upgrade", "").lower():
            raise ApiError(400, "BadRequest", "this test server attaches over WebSocket only")
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocol = next((p for p in ("v5.channel.k8s.io", "v4.channel.k8s.io") if p in offered),
                        None)
        if protocol is None:
            raise ApiError(400, "BadRequest", "no supported channel protocol offered: %s"
                           % offered)
        log = state.kubelet.log_for(pod)
        process = state.kubelet.processes.get(pod["metadata"]["uid"])
        if log is None or not log.started or process is None:
            raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is not running'
                           % (pod["spec"]["containers"][0]["name"], name))
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        self.ws_lock = threading.Lock()
        wanted = set()
        if query.get("stdout") in ("true", "1"):
            wanted.add("stdout")
        if query.get("stderr") in ("true", "1"):
            wanted.add("stderr")

        def pump_stdin():
            while True:
                try:
                    opcode, data = self.ws_read_frame()
                except OSError:
                    opcode = None
                if opcode is None or opcode == 8:
                    break
                if opcode == 9:
                    self.ws_send(10, data)
                    continue
                if opcode in (1, 2) and data:
                    channel, payload = data[0], data[1:]
                    try:
                        if channel == 0 and process.stdin and payload:
                            process.stdin.write(payload)
                            process.stdin.flush()
                        elif channel == 255 and payload[:1] == b"\0" and process.stdin:
                            process.stdin.close()  # v5: the client closed stdin
                    except (OSError, ValueError):
                        pass
            try:
                if process.stdin:
                    process.stdin.close()
            except (OSError, ValueError):
                pass

        if query.get("stdin") in ("true", "1"):
            threading.Thread(target=pump_stdin, daemon=True).start()
        index = 0
        try:
            # Like `docker attach --logs`: what the container wrote before the attach comes too.
            while True:
                with log.cond:
                    while index >= len(log.lines) and not log.finished:
                        log.cond.wait(0.25)
                    batch = log.lines[index:]
                    index = len(log.lines)
                    done = log.finished
                for _, stream, data in batch:
                    if stream in wanted:
                        self.ws_send(2, bytes([1 if stream == "stdout" else 2]) + data)
                if done:
                    break
            process.wait()
            # Attach (unlike exec) reports no exit code: the kubelet ends the stream with Success
            # and clients read the exit code from the Pod's status.
            status = {"metadata": {}, "status": "Success"}
            self.ws_send(2, b"\x03" + json.dumps(status).encode())
            self.ws_send(8, (1000).to_bytes(2, "big"))
        except OSError:
            pass

    # --- test controls

    def control(self, method, path, user):
        state = self.server.state
        if not user[1]:
            raise ApiError(403, "Forbidden", "test controls need the admin token")
        body = self.read_body() if method == "POST" else None
        body = body or {}
        if path == "/_kbatch_test/cut-watch":
            with state.faults_lock:
                state.faults["cut_watch_after"] = int(body.get("afterEvents", 1))
        elif path == "/_kbatch_test/cut-log":
            with state.faults_lock:
                state.faults["cut_log_after"] = int(body.get("afterLines", 1))
        elif path == "/_kbatch_test/fail":
            with state.faults_lock:
                state.faults["fail"].append({
                    "method": body.get("method", "GET"), "path": body.get("path", ".*"),
                    "code": int(body.get("code", 500)), "reason": body.get("reason"),
                    "message": body.get("message", "injected failure"),
                    "details": body.get("details"), "retryAfter": body.get("retryAfter"),
                    "count": int(body.get("count", 1))})
        elif path == "/_kbatch_test/clear-faults":
            with state.faults_lock:
                state.faults = {"cut_watch_after": None, "cut_log_after": None, "fail": []}
        elif path == "/_kbatch_test/compact":
            state.store.compact()
        elif path == "/_kbatch_test/restart":
            seconds = float(body.get("downSeconds", 1.0))
            threading.Thread(target=self.server.restart_api, args=(seconds,),
                             daemon=True).start()
        elif path == "/_kbatch_test/pods":
            # What the kubelet knows: live processes, for "nothing left behind" checks.
            running = [uid for uid, p in state.kubelet.processes.items() if p.poll() is None]
            return self.send_json(200, {"runningContainers": running})
        else:
            raise ApiError(404, "NotFound", "no such test control: " + path)
        self.send_json(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


def qos_class(spec):
    requests = [c.get("resources", {}) for c in spec["containers"]]
    if all(r.get("limits") and r.get("requests") == r.get("limits") and
           {"cpu", "memory"} <= set(r["limits"]) for r in requests):
        return "Guaranteed"
    if any(r.get("limits") or r.get("requests") for r in requests):
        return "Burstable"
    return "BestEffort"


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state, port, ssl_context):
        self.state = state
        self.ssl_context = ssl_context
        super().__init__(("127.0.0.1", port), Handler)

    def get_request(self):
        sock, address = super().get_request()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            # The handshake happens in the connection's own thread (Handler.setup), as a real
            # API server's connections handshake concurrently: done here, in the accept loop,
            # each handshake would wait for the one before.
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address):
        # A client that fails or drops the TLS handshake ends its own connection, quietly, as
        # before the handshake moved into the connection's thread.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, OSError)):
            return
        super().handle_error(request, client_address)

    def restart_api(self, down_seconds):
        """Stops answering (every open connection dropped, the watch cache lost), then comes back
        on the same port with the same objects: what clients see when the API server restarts
        while the kubelet keeps running the containers."""
        state = self.state
        time.sleep(0.2)  # let the control request that asked for this get its answer
        self.socket.close()
        with state.store.lock:
            state.store.generation += 1
            state.store.lock.notify_all()
        with state.connections_lock:
            connections = list(state.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        state.store.compact()
        time.sleep(down_seconds)
        replacement = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        replacement.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        replacement.bind(self.server_address)
        replacement.listen(64)
        self.socket = replacement


def serve(server):
    """serve_forever() that survives restart_api() swapping the listening socket."""
    server.timeout = 0.2
    while True:
        try:
            server.handle_request()
        except (OSError, ValueError):
            # The listening socket is closed while restart_api() has the API "down".
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Certificates and kubeconfig


def make_certificates(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (O=system:masters)."""
    def run(*argv):
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    ca_key, ca_crt = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.crt")
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj",
        "/CN=kbatch-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, subject, extension in (
            ("server", "/CN=kbatch-test-apiserver",
             "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
            ("client", "/O=system:masters/CN=kbatch-cert-user",
             "extendedKeyUsage=clientAuth\n")):
        key, csr, crt = (os.path.join(directory, name + suffix) for suffix in (".key", ".csr",
                                                                                ".crt"))
        ext = os.path.join(directory, name + ".ext")
        with open(ext, "w") as handle:
            handle.write(extension)
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
            "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt


def write_kubeconfig(path, server_url, ca_file, token, user_name="kbatch-admin",
                     client_cert=None, client_key=None, namespace="default"):
    user = {"token": token} if token else {"client-certificate": client_cert,
                                           "client-key": client_key}
    cluster = {"server": server_url}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "kbatch-test",
              "preferences": {},
              "clusters": [{"name": "kbatch-test", "cluster": cluster}],
              "users": [{"name": user_name, "user": user}],
              "contexts": [{"name": "kbatch-test", "context": {
                  "cluster": "kbatch-test", "user": user_name, "namespace": namespace}}]}
    # JSON is YAML: kubectl and kbatch both read it.
    with open(path + ".tmp", "w") as handle:
        json.dump(config, handle, indent=2)
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", required=True,
                        help="where certificates, kubeconfigs and the pid/port files go")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--plain-http", action="store_true", help="no TLS (default: TLS)")
    parser.add_argument("--node", action="append", default=None,
                        help="NAME[:HOSTNAME_LABEL][:notready]; the first one runs Pods")
    parser.add_argument("--namespace", action="append", default=None)
    parser.add_argument("--image", action="append",
                        help="NAME=ROOTFS_DIR: what an image name means on this node")
    parser.add_argument("--claim", action="append",
                        help="CLAIM=HOST_DIR: the directory behind a PersistentVolumeClaim")
    parser.add_argument("--runtime", choices=("kbatch", "host"), default="kbatch",
                        help="kbatch: run containers with `kbatch exec` (the test setting); "
                             "host: run the command directly, no isolation (server debugging)")
    parser.add_argument("--kbatch", help="path of the kbatch executable (runtime kbatch)")
    parser.add_argument("--seccomp-root", default="/var/lib/kubelet/seccomp")
    parser.add_argument("--pod-security", choices=("restricted", "privileged"),
                        default="restricted")
    parser.add_argument("--history-limit", type=int, default=1000)
    parser.add_argument("--bookmark-interval", type=float, default=5.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    args.node = args.node or ["kbatch-node-0"]
    args.namespace = args.namespace or ["default", "kbatch-jobs"]
    if args.runtime == "kbatch" and not (args.kbatch and os.access(args.kbatch, os.X_OK)):
        parser.error("--runtime kbatch needs --kbatch PATH of an executable kbatch")
    os.makedirs(args.state_dir, exist_ok=True)
    token_file = os.path.join(args.state_dir, "token")
    args.token = base64.b32encode(os.urandom(20)).decode().lower()
    args.readonly_token = base64.b32encode(os.urandom(20)).decode().lower()
    with open(token_file, "w") as handle:
        handle.write(args.token + "\n")
    os.chmod(token_file, 0o644)
    args.client_ca = None
    context = None
    ca_file = None
    if not args.plain_http:
        ca_file = make_certificates(args.state_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(args.state_dir, "server.crt"),
                                os.path.join(args.state_dir, "server.key"))
        context.load_verify_locations(ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL
    state = ServerState(args)
    server = ApiServer(state, args.port, context)
    port = server.server_address[1]
    url = ("http" if args.plain_http else "https") + "://127.0.0.1:%d" % port
    write_kubeconfig(os.path.join(args.state_dir, "kubeconfig"), url, ca_file, args.token)
    write_kubeconfig(os.path.join(args.state_dir, "kubeconfig-readonly"), url, ca_file,
                     args.readonly_token, user_name="viewer")
    if not args.plain_http:
        write_kubeconfig(os.path.join(args.state_dir, "kubeconfig-cert"), url, ca_file, None,
                         user_name="kbatch-cert-user",
                         client_cert=os.path.join(args.state_dir, "client.crt"),
                         client_key=os.path.join(args.state_dir, "client.key"))
    for path in os.listdir(args.state_dir):
        if path.startswith("kubeconfig") or path.endswith((".crt", ".key")):
            os.chmod(os.path.join(args.state_dir, path), 0o644)
    with open(os.path.join(args.state_dir, "url"), "w") as handle:
        handle.write(url + "\n")
    with open(os.path.join(args.state_dir, "pid.tmp"), "w") as handle:
        handle.write("%d\n" % os.getpid())
    os.replace(os.path.join(args.state_dir, "pid.tmp"), os.path.join(args.state_dir, "pid"))

    def stop(signum, frame):
        for uid, process in list(state.kubelet.processes.items()):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write("k8s-test-server: listening on %s\n" % url)
    sys.stderr.flush()
    serve(server)


if __name__ == "__main__":
    main()
