#include "engine/box_resources.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>

#include "common/file_util.h"

namespace boxd::engine {

StatusOr<std::unique_ptr<BoxResources>> BoxResources::create(const std::string& state_dir, const std::string& id) {
  auto r = std::make_unique<BoxResources>();
  r->dir = state_dir + "/boxes/" + id;
  r->root_dir = r->dir + "/root";
  if (::mkdir(r->dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Status(StatusCode::kAlreadyExists, "box " + id + " already exists");
    return errnoStatus("create state directory " + r->dir, errno);
  }
  r->lock.reset(::open((r->dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!r->lock.valid() || ::flock(r->lock.get(), LOCK_EX | LOCK_NB) != 0) {
    Status st = errnoStatus("lock " + r->dir, errno);
    (void)removeTree(r->dir);
    return st;
  }
  // The root directory must be traversable by box root (an unprivileged host id).
  if (::mkdir(r->root_dir.c_str(), 0755) != 0) {
    Status st = errnoStatus("create " + r->root_dir, errno);
    (void)removeTree(r->dir);
    return st;
  }
  ::chmod(r->dir.c_str(), 0711);
  return r;
}

Status BoxResources::release() {
  Status st = removeTree(dir);
  lock.reset();
  slot.lock.reset();
  return st;
}

bool tryLockOrphan(const std::string& box_dir, UniqueFd* lock) {
  lock->reset(::open((box_dir + "/lock").c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!lock->valid()) return errno == ENOENT;  // crashed before the lock existed
  return ::flock(lock->get(), LOCK_EX | LOCK_NB) == 0;
}

}  // namespace boxd::engine
