#pragma once
// kbatch's helper executables (kbatch-cli, kbatch-full, kbatch-k8s, kbatch-init) live in
// libexecdir/kbatch, beside each other; the build tree mirrors that layout below the directory of
// `kbatch`.

#include <filesystem>
#include <string_view>

namespace kbatch::cli {

/// The helper `name` of this same build, found from /proc/self/exe (never from $PATH or the
/// environment): in the installed layout (bindir/../libexec/kbatch), else in the build tree's
/// (libexec/kbatch below the directory of `kbatch`), else beside this executable (when it is
/// itself a helper). Throws kbatch::Error (exit 125) naming the installed path when there is none.
std::filesystem::path findHelperExecutable(std::string_view name);

}  // namespace kbatch::cli
