#include "sandbox/seccomp_load.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

#include <cerrno>

namespace boxd::sandbox {

Status loadSeccompProgram(const std::string& program) {
  if (program.empty() || program.size() % sizeof(sock_filter) != 0 || program.size() / sizeof(sock_filter) > BPF_MAXINSNS) {
    return invalidArgument("seccomp program has a bad size (" + std::to_string(program.size()) + " bytes)");
  }
  sock_fprog prog{static_cast<unsigned short>(program.size() / sizeof(sock_filter)),
                  reinterpret_cast<sock_filter*>(const_cast<char*>(program.data()))};
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return errnoStatus("load seccomp program", errno);
  return okStatus();
}

}  // namespace boxd::sandbox
