#pragma once
// What stat(2) says about a file's identity and content, as one string: device, inode, size, and
// mtime and ctime to the nanosecond. ctime is there because a user can set mtime back (touch -d)
// but not ctime, so a rewritten file never keeps its key. Shared by the file-hash cache and the
// dependency memo; header-only so that the lean kbatch, which links the memo, reaches no
// libcrypto through it.

#include <sys/stat.h>

#include <string>

namespace kbatch::image::detail {

inline std::string fileStatKey(const struct stat& st) {
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec);
}

}  // namespace kbatch::image::detail
