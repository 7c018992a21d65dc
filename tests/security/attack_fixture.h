// SecurityTest: the fixture every attack test uses. It adds to EngineTest a way to run
// python3 inside a box with a small prelude (raw syscalls through ctypes, errno names) and
// to read back what the attack script reported as "key=value" lines, so each test can
// assert the exact reason an attack failed (EPERM from the filter, not just "non-zero").
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/engine_fixture.h"

namespace boxd::testing {

// Python helpers available to every attack script:
//   sc(nr, *args)     raw syscall; "OK" or the errno name ("EPERM")
//   forky(nr, *args)  same for clone-like calls: a child that comes back exits at once
//   tryos(fn, *args)  calls fn; "OK" or the errno name of the OSError it raised
//   report(k, v)      prints "k=v" for the C++ side
//   leftovers()       live (non-zombie) processes that are neither PID 1 nor our ancestors
inline constexpr char kPyPrelude[] = R"PY(
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def ename(e):
    return errno.errorcode.get(e, "E%d" % e)
def _arg(a):
    return ctypes.c_long(a) if isinstance(a, int) else a
def raw(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[_arg(a) for a in args])
    return r, ctypes.get_errno()
def sc(nr, *args):
    r, e = raw(nr, *args)
    return ename(e) if r == -1 else "OK"
def forky(nr, *args):
    r, e = raw(nr, *args)
    if r == 0:
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
        return "OK"
    return ename(e)
def tryos(fn, *args):
    try:
        fn(*args)
        return "OK"
    except OSError as ex:
        return ename(ex.errno)
def report(key, value):
    print("%s=%s" % (key, value), flush=True)
def _stat(pid):
    s = open("/proc/%s/stat" % pid).read()
    rest = s[s.rindex(")") + 2:].split()
    return s[s.index("(") + 1:s.rindex(")")], rest[0], int(rest[1])
def leftovers():
    keep, p = {1}, os.getpid()
    while p > 1:
        keep.add(p)
        p = _stat(p)[2]
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in keep:
            continue
        try:
            comm, state, _ = _stat(d)
        except (OSError, ValueError):
            continue
        if state != "Z":
            out.append("%s:%s:%s" % (d, comm, state))
    return ",".join(sorted(out)) or "none"
)PY";

// Parses the "key=value" lines an attack script printed (CRs from a PTY are dropped).
inline std::map<std::string, std::string> parseReport(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    m[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return m;
}

// Everything about a result, for assertion messages.
inline std::string describe(const engine::ExecResult& r) {
  std::ostringstream o;
  o << "exit=" << r.exit_code << " signal=" << r.signal << " timed_out=" << r.timed_out
    << " output_limit_killed=" << r.output_limit_killed << " oom_killed=" << r.oom_killed
    << " stdout_dropped=" << r.stdout_dropped << " stderr_dropped=" << r.stderr_dropped
    << "\n--- stdout (" << r.stdout_data.size() << " bytes) ---\n"
    << r.stdout_data.substr(0, 4000) << "\n--- stderr (" << r.stderr_data.size()
    << " bytes) ---\n"
    << r.stderr_data.substr(0, 4000);
  return o.str();
}

class SecurityTest : public EngineTest {
 protected:
  // Runs spec in the box, asserting the engine accepted it.
  engine::ExecResult run(engine::Box& box, const engine::ExecSpec& spec) {
    auto r = box.run(spec);
    EXPECT_TRUE(r.ok()) << r.status().toString();
    if (!r.ok()) return {};
    // BOXD_SECURITY_VERBOSE=1 shows what every attack saw, passing or not.
    if (std::getenv("BOXD_SECURITY_VERBOSE")) std::cerr << describe(*r) << "\n";
    return std::move(r).value();
  }

  // Runs kPyPrelude + script with the host template's python3.
  engine::ExecResult py(engine::Box& box, const std::string& script,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30),
                        bool pty = false) {
    engine::ExecSpec spec;
    spec.argv = {"/usr/bin/python3", "-c", std::string(kPyPrelude) + script};
    spec.timeout = timeout;
    spec.pty = pty;
    return run(box, spec);
  }

  // Python list literal of the given strings (paths are test-controlled, no quotes in them).
  static std::string pyList(const std::vector<std::string>& items) {
    std::string s = "[";
    for (const auto& i : items) s += "'" + i + "',";
    return s + "]";
  }
};

}  // namespace boxd::testing
