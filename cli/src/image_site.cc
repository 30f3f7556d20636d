#include "image_site.h"

#include "site_policy.h"

namespace kbatch::cli {

image::ImageStore openSiteImageStore() {
  const policy::Policy& site = sitePolicy();
  return image::ImageStore(image::defaultStoreRoot(),
                           site.site.image_cache ? *site.site.image_cache : std::string());
}

void applySiteRegistrySettings(image::RegistryOptions& options) {
  options.insecure_registries = sitePolicy().site.insecure_registries;
}

}  // namespace kbatch::cli
