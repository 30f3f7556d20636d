#pragma once
/// Handing a command line to another kbatch executable (full_only_delegate.cc): the lean `kbatch`
/// front end, kbatch-cli and kbatch-k8s re-execute the helper that carries what they do not, with
/// the same arguments, environment, descriptors and pid (git runs its dashed helpers so).

#include <functional>
#include <string>
#include <string_view>

namespace kbatch::cli {

/// Records main()'s arguments for a later hand-over; main() calls it first.
void recordArguments(char** argv);

/// Replaces this process with the helper `helper_name` (helper_path.h), same arguments, and the
/// stdin `kbatch exec --job-body` already read (rememberConsumedStdin); returns only by throwing.
[[noreturn]] void handOverTo(const char* helper_name, const std::string& reason);

/// The command word of a kbatch command line: the first word that is not a global flag (the
/// global options -v, -q, --version and --help take no values). Empty when there is none; sets
/// `asks_for_main_help` for --help or -h before it.
std::string_view commandWord(int argc, char** argv, bool& asks_for_main_help);

/// Returns when this executable carries the command line (`carries` says so of its command
/// word; a lone --version is answered everywhere); else hands it to kbatch-k8s (the Kubernetes
/// commands) or kbatch-full (everything else: `kbatch help`, `kbatch pull`, an unknown word),
/// which answer it as a single kbatch with every command would.
void dispatchCommandLine(int argc, char** argv,
                         const std::function<bool(std::string_view)>& carries);

}  // namespace kbatch::cli
