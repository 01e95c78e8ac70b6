// A small tmpfs mounted for a test, to run a database into a full disk. Needs the right to mount
// (root); Mount() says why not otherwise, and the test skips.
#ifndef TRACEKEEP_TESTS_STORAGE_SMALL_FS_H_
#define TRACEKEEP_TESTS_STORAGE_SMALL_FS_H_

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace tracekeep::storage {

class SmallFs {
 public:
  SmallFs() = default;
  SmallFs(const SmallFs&) = delete;
  SmallFs& operator=(const SmallFs&) = delete;
  ~SmallFs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }

  // Mounts a tmpfs of `mib` MiB at a new temporary directory. "" on success, else the reason.
  std::string Mount(int mib) {
    char tmpl[] = "/tmp/tracekeep-smallfs-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
    dir_ = tmpl;
    const std::string data = "size=" + std::to_string(mib) + "m";
    if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, data.c_str()) != 0) {
      return "cannot mount a tmpfs at " + dir_ + ": " + std::strerror(errno);
    }
    mounted_ = true;
    return "";
  }

  // Fills the file system with `filler` until a write fails with ENOSPC.
  void Fill() {
    FILE* f = std::fopen(Filler().c_str(), "ab");
    if (f == nullptr) return;
    static const std::string kChunk(64 * 1024, 'x');
    while (std::fwrite(kChunk.data(), 1, kChunk.size(), f) == kChunk.size() &&
           std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  void Free() { std::filesystem::remove(Filler()); }

  const std::string& dir() const { return dir_; }

 private:
  std::string Filler() const { return dir_ + "/filler"; }
  std::string dir_;
  bool mounted_ = false;
};

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_TESTS_STORAGE_SMALL_FS_H_
