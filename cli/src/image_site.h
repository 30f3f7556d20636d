#pragma once
/// The site's image settings (policy `site:` section) as the image commands apply them: the
/// read-only site image cache and the registries that may be reached over plain HTTP. They come
/// from the admin's policy only; no environment variable can widen them.

#include "kbatch/image/registry.h"
#include "kbatch/image/store.h"

namespace kbatch::cli {

/// The user's store, with the site's read-only image cache (policy `site.image_cache`) consulted
/// first when the site has one.
image::ImageStore openSiteImageStore();

/// Fills the registry settings that belong to the site (policy `site.insecure_registries`).
void applySiteRegistrySettings(image::RegistryOptions& options);

}  // namespace kbatch::cli
