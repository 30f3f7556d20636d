#pragma once
/// The image a job's Pod names. Kubernetes pulls by name, so a tag could move between submission
/// and the kubelet's pull (or differ between the nodes of a multi-node job): the Pod names the
/// image by the digest the registry serves for the tag now.

#include <string>

#include "kbatch/policy/policy.h"

namespace kbatch::cli {

/// `written` as Kubernetes writes images ("host[:port]/repo@sha256:..."): `docker://` references
/// and registry-qualified names are pinned to the registry's current manifest digest. Names the
/// Pod cannot pin (no registry host, which the node's container runtime chooses; a registry this
/// host cannot reach) stay as written, said at -v: the kubelet may still reach them.
std::string pinnedPodImage(const std::string& written, const policy::Policy& site);

}  // namespace kbatch::cli
