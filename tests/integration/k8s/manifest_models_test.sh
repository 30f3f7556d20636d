#!/bin/bash
# `kbatch manifest` output, checked field by field against the Kubernetes API models of Debian's
# python3-kubernetes and against Pod Security "restricted" (check_manifest.py), for a job script,
# for exec options, and for a multi-host job; and a host path without a claim must be refused.
#   manifest_models_test.sh KBATCH SCRIPTS_DIR
set -uo pipefail
kbatch=${1:?usage: manifest_models_test.sh KBATCH SCRIPTS_DIR}
scripts=${2:?usage: manifest_models_test.sh KBATCH SCRIPTS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
check=$here/check_manifest.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
offline=(--node node-a.example.org --namespace jobs --as-user nobody
         --volume /home=home --volume /scratch=scratch --volume /datasets=datasets)
nobody_uid=$(id -u nobody)

echo "== a job script with #PBS and #KBATCH directives"
if env -u PBS_NODEFILE PBS_O_WORKDIR=/home/alice/run1 "$kbatch" manifest "${offline[@]}" \
     --job-id '123[4].head.example.org' "$scripts/container.pbs" >"$work/script.yaml"; then
  "$check" --expect metadata.name=kbatch-123-4-head-example-org \
    --expect metadata.annotations.kbatch.io/job-id='123[4].head.example.org' \
    --expect metadata.annotations.kbatch.io/job-name=train \
    --expect spec.nodeName=node-a.example.org \
    --expect spec.activeDeadlineSeconds=7200 \
    --expect spec.containers.0.image=registry.example.org/ml/pytorch:2.1 \
    --expect spec.containers.0.resources.limits.cpu=4 \
    --expect spec.containers.0.workingDir=/home/alice/run1 \
    --expect spec.containers.0.securityContext.runAsUser="$nobody_uid" \
    <"$work/script.yaml" || fail "job script manifest"
else
  fail "kbatch manifest of container.pbs failed"
fi

echo "== exec options, Localhost seccomp profile"
if env -u PBS_NODEFILE "$kbatch" manifest "${offline[@]}" --job-id 77.head --image busybox:1.36 \
     --cpus 2 --memory 1073741824 --walltime 60 --env A=1 --gpus 1 \
     --seccomp-localhost kbatch/default.json --bind /scratch/alice:/data:ro \
     -- sh -c 'echo hi' >"$work/exec.yaml"; then
  "$check" --expect spec.containers.0.resources.limits.memory=1073741824 \
    --expect spec.containers.0.resources.limits.nvidia.com/gpu=1 \
    --expect spec.activeDeadlineSeconds=60 \
    --expect spec.securityContext.seccompProfile.type=Localhost \
    --expect spec.securityContext.seccompProfile.localhostProfile=kbatch/default.json \
    --expect spec.containers.0.volumeMounts.1.subPath=alice \
    --expect spec.containers.0.volumeMounts.1.mountPath=/data \
    --expect spec.containers.0.command.2="echo hi" \
    <"$work/exec.yaml" || fail "exec-options manifest"
else
  fail "kbatch manifest with exec options failed"
fi

echo "== one Pod per host of a multi-host job"
printf 'hostA\nhostA\nhostB\n' >"$work/nodefile"
if PBS_NODEFILE=$work/nodefile "$kbatch" manifest "${offline[@]}" --job-id 9.head \
     --image busybox:1.36 -- true >"$work/multi.yaml"; then
  "$check" --expect metadata.name=kbatch-9-head-h0 <"$work/multi.yaml" || fail "multi-host"
  [ "$(grep -c '^kind: Pod' "$work/multi.yaml")" = 2 ] || fail "multi-host: expected 2 Pods"
  grep -q 'name: kbatch-9-head-h1' "$work/multi.yaml" || fail "multi-host: no -h1 Pod"
else
  fail "kbatch manifest for a multi-host job failed"
fi

echo "== the checker itself rejects a misspelled field"
sed 's/readOnlyRootFilesystem/readOnlyRootFileSystem/' "$work/exec.yaml" | "$check" 2>/dev/null \
  && fail "check_manifest accepted a misspelled field"

echo "== a host path no claim maps is refused, naming the field"
if "$kbatch" manifest "${offline[@]}" --job-id 78.head --image busybox:1.36 --bind /opt/x \
     -- true >/dev/null 2>"$work/refused.err"; then
  fail "a bind outside every claim was accepted"
fi
grep -q 'binds\[0\]' "$work/refused.err" || { fail "the refusal does not name binds[0]"; cat "$work/refused.err" >&2; }

if [ $failures -ne 0 ]; then echo "manifest_models_test: $failures failure(s)" >&2; exit 1; fi
echo "manifest_models_test: all passed"
