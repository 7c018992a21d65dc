#include "sandbox/env_policy.h"

#include <gtest/gtest.h>

namespace boxd::sandbox {

TEST(EnvPolicyTest, LoaderVariablesAreDroppedUnlessAllowed) {
  EnvInputs in;
  in.path = "/usr/bin:/bin";
  in.hostname = "b-1";
  in.requested = {"LD_PRELOAD=/x.so", "LD_LIBRARY_PATH=/w", "LD_AUDIT=/a", "GCONV_PATH=/g", "MALLOC_CHECK_=3", "FOO=bar"};
  std::vector<std::string> dropped;
  auto env = buildEnv(in, &dropped);
  ASSERT_TRUE(env.ok());
  for (const auto& kv : *env) EXPECT_NE(kv.rfind("LD_", 0), 0u) << kv;
  EXPECT_NE(std::find(env->begin(), env->end(), "FOO=bar"), env->end());
  EXPECT_NE(std::find(env->begin(), env->end(), "PATH=/usr/bin:/bin"), env->end());
  EXPECT_EQ(dropped.size(), 5u);
  in.allow_loader_env = true;
  env = buildEnv(in);
  EXPECT_NE(std::find(env->begin(), env->end(), "LD_PRELOAD=/x.so"), env->end());
}

TEST(EnvPolicyTest, CallerOverridesDefaults) {
  EnvInputs in;
  in.path = "/usr/bin";
  in.requested = {"PATH=/opt/bin", "HOME=/tmp"};
  auto env = buildEnv(in);
  ASSERT_TRUE(env.ok());
  EXPECT_NE(std::find(env->begin(), env->end(), "PATH=/opt/bin"), env->end());
  EXPECT_NE(std::find(env->begin(), env->end(), "HOME=/tmp"), env->end());
}

TEST(EnvPolicyTest, MalformedEntriesAreRejected) {
  EnvInputs in;
  in.requested = {"NOEQUALS"};
  EXPECT_EQ(buildEnv(in).status().code(), StatusCode::kInvalidArgument);
  in.requested = {"=value"};
  EXPECT_FALSE(buildEnv(in).ok());
}

}  // namespace boxd::sandbox
