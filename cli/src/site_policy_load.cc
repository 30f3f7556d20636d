// sitePolicy() (site_policy.h) for the CLI11 executables: the site policy as loadSitePolicy()
// reads it, compiled or YAML, with any overlay. The lean front end has its own (exec_main.cc),
// which reads no YAML.

#include "kbatch/policy/policy.h"
#include "site_policy.h"

namespace kbatch::cli {

const policy::Policy& sitePolicy() {
  static const policy::Policy loaded = policy::loadSitePolicy();
  return loaded;
}

}  // namespace kbatch::cli
