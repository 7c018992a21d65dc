#include "engine/id_slots.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "common/file_util.h"

namespace boxd::engine {

Status IdSlots::init() {
  if (count_ == 0) return invalidArgument("id_slots must be positive");
  if (static_cast<uint64_t>(base_) + static_cast<uint64_t>(count_) * kIdsPerSlot > 0xFFFFFFFEull) {
    return invalidArgument("id_base + id_slots*65536 exceeds the 32-bit id space");
  }
  if (base_ < 65536) return invalidArgument("id_base must be at least 65536 so boxes never map host system ids");
  return makeDirs(dir_, 0700);
}

StatusOr<IdSlot> IdSlots::acquire() {
  uint32_t start = hint_.load();
  for (uint32_t i = 0; i < count_; ++i) {
    uint32_t slot = (start + i) % count_;
    std::string path = dir_ + "/" + std::to_string(slot) + ".lock";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return errnoStatus("open " + path, errno);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
      hint_.store((slot + 1) % count_);
      IdSlot s;
      s.slot = slot;
      s.host_base = base_ + slot * kIdsPerSlot;
      s.lock = std::move(fd);
      return s;
    }
    if (errno != EWOULDBLOCK) return errnoStatus("lock " + path, errno);
  }
  return resourceExhausted("all " + std::to_string(count_) + " box id ranges are in use");
}

std::string idMapLine(uint32_t host_base) {
  return "0 " + std::to_string(host_base) + " " + std::to_string(kIdsPerSlot) + "\n";
}

}  // namespace boxd::engine
