#include "sandbox/seccomp_policy.h"

#include <gtest/gtest.h>
#include <seccomp.h>

#include <set>
#include <string>

namespace boxd::sandbox {

TEST(SeccompPolicyTest, EveryRuleNamesARealSyscallOnce) {
  std::set<std::string> seen;
  for (const auto& r : seccompRules()) {
    EXPECT_TRUE(seen.insert(r.syscall).second) << "duplicate rule for " << r.syscall;
    EXPECT_NE(seccomp_syscall_resolve_name(r.syscall), __NR_SCMP_ERROR) << r.syscall;
    EXPECT_NE(std::string(r.reason), "") << r.syscall;
  }
}

TEST(SeccompPolicyTest, CoversTheEscapeClassesTheIssueNames) {
  std::set<std::string> names;
  for (const auto& r : seccompRules()) names.insert(r.syscall);
  for (const char* must : {"mount", "umount2", "pivot_root", "unshare", "setns", "clone", "clone3", "keyctl",
                           "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load",
                           "init_module", "finit_module", "open_by_handle_at", "personality", "io_uring_setup",
                           "ioctl"}) {
    EXPECT_TRUE(names.count(must)) << must;
  }
}

TEST(SeccompPolicyTest, CompilesToABpfProgramBoxInitCanLoad) {
  auto program = compileSeccompFilter();
  ASSERT_TRUE(program.ok()) << program.status().toString();
  EXPECT_GT(program->size(), 8u * seccompRules().size());
  EXPECT_EQ(program->size() % 8, 0u);  // struct sock_filter is 8 bytes
}

}  // namespace boxd::sandbox
