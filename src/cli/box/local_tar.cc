#include "cli/box/local_tar.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

extern char** environ;

namespace boxd::cli {

namespace {

// The environment minus the API token: tar has no use for it.
std::vector<char*> childEnvironment() {
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "BOXD_TOKEN=", 11) == 0) continue;
    env.push_back(*e);
  }
  env.push_back(nullptr);
  return env;
}

// Runs tar with `child_fd` as its stdin (to_child) or stdout; returns the pid.
CliStatusOr<pid_t> spawnTar(const std::vector<std::string>& args, int child_fd, int target_fd, int parent_fd) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_fd, target_fd);
  posix_spawn_file_actions_addclose(&actions, parent_fd);
  std::vector<char*> env = childEnvironment();
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, "tar", &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return errnoFailure("start tar", rc);
  return pid;
}

CliStatus waitTar(pid_t pid, const std::string& what) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errnoFailure("wait for tar", errno);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return CliStatus();
  if (WIFSIGNALED(status)) return failure(what + ": tar was killed by signal " + std::to_string(WTERMSIG(status)));
  return failure(what + ": tar failed with exit status " + std::to_string(WEXITSTATUS(status)));
}

}  // namespace

CliStatusOr<std::string> tarDirectory(const std::string& dir) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return errnoFailure("pipe", errno);
  auto pid = spawnTar({"tar", "-C", dir, "-cf", "-", "."}, p[1], STDOUT_FILENO, p[0]);
  ::close(p[1]);
  if (!pid.ok()) {
    ::close(p[0]);
    return pid.status();
  }
  std::string out;
  char buf[65536];
  int read_errno = 0;
  for (;;) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_errno = errno;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  CLI_RETURN_IF_ERROR(waitTar(*pid, "archive " + dir));
  if (read_errno) return errnoFailure("read tar output", read_errno);
  return out;
}

CliStatus extractTar(const std::string& dir, const std::string& tar) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return errnoFailure("pipe", errno);
  auto pid = spawnTar({"tar", "-C", dir, "--no-same-owner", "-xf", "-"}, p[0], STDIN_FILENO, p[1]);
  ::close(p[0]);
  if (!pid.ok()) {
    ::close(p[1]);
    return pid.status();
  }
  size_t done = 0;
  int write_errno = 0;
  while (done < tar.size()) {
    ssize_t n = ::write(p[1], tar.data() + done, tar.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_errno = errno;  // EPIPE: tar stopped early and will say why
      break;
    }
    done += static_cast<size_t>(n);
  }
  ::close(p[1]);
  CLI_RETURN_IF_ERROR(waitTar(*pid, "extract into " + dir));
  if (write_errno) return errnoFailure("feed tar", write_errno);
  return CliStatus();
}

}  // namespace boxd::cli
