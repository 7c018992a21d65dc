// box cp, box ls-files: the files API (raw bytes for files, tar for directories).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "cli/box/cli_context.h"
#include "cli/box/commands.h"
#include "cli/box/exec_stream.h"
#include "cli/box/local_tar.h"
#include "cli/box/table.h"

namespace boxd::cli {

using nlohmann::json;

namespace {

constexpr const char* kBoxHome = "/workspace";

struct RemotePath {
  std::string box;
  std::string path;  // absolute
};

// "b-12:/workspace/x" -> remote; "./a:b", "/tmp/x:y" and "-" stay local. A relative path in
// the box is relative to /workspace, the box user's home and default working directory.
std::optional<RemotePath> parseRemote(const std::string& arg) {
  static const std::regex kRemote("^([a-z0-9-]{1,48}):(.*)$");
  std::smatch m;
  if (!std::regex_match(arg, m, kRemote)) return std::nullopt;
  RemotePath r{m[1], m[2]};
  if (r.path.empty()) r.path = kBoxHome;
  else if (r.path[0] != '/') r.path = std::string(kBoxHome) + "/" + r.path;
  return r;
}

std::string baseName(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string dirName(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

std::string joinPath(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string filesPath(const std::string& box, const std::string& sub, const std::string& path,
                      std::vector<std::pair<std::string, std::string>> extra = {}) {
  extra.insert(extra.begin(), {"path", path});
  return withQuery("/v1/boxes/" + urlEncode(box) + "/files" + sub, extra);
}

// What a path in the box is: 'f', 'd', 'l', ... from its parent's listing (the API has no
// stat); nullopt when it does not exist.
struct RemoteEntry {
  std::string type;
  int mode = 0644;
};

CliStatusOr<std::optional<RemoteEntry>> statRemote(ApiClient& client, const RemotePath& r) {
  std::string path = r.path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/") return std::optional<RemoteEntry>(RemoteEntry{"d", 0755});
  auto listing = client.get(filesPath(r.box, "/list", dirName(path)));
  if (!listing.ok()) {
    if (listing.status().apiCode() != "not_found") return listing.status();
    // The parent directory is missing, or the box is: only the second is an error here.
    CLI_RETURN_IF_ERROR(client.get("/v1/boxes/" + urlEncode(r.box)).status());
    return std::optional<RemoteEntry>();
  }
  std::string name = baseName(path);
  for (const auto& e : (*listing)["entries"]) {
    if (e.value("name", std::string()) != name) continue;
    RemoteEntry entry{e.value("type", std::string("f")), 0644};
    try {
      entry.mode = std::stoi(e.value("mode", std::string("644")), nullptr, 8) & 0777;
    } catch (...) {
    }
    return std::optional<RemoteEntry>(entry);
  }
  return std::optional<RemoteEntry>();
}

CliStatusOr<std::string> readLocalFile(const std::string& path) {
  if (path == "-") return readAllStdin();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errnoFailure("open " + path, errno);
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return errnoFailure("read " + path, e);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

CliStatus writeLocalFile(const std::string& path, const std::string& data, int mode) {
  int fd = path == "-" ? STDOUT_FILENO : ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errnoFailure("create " + path, errno);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      if (fd != STDOUT_FILENO) ::close(fd);
      return errnoFailure("write " + path, e);
    }
    done += static_cast<size_t>(n);
  }
  if (fd != STDOUT_FILENO && ::close(fd) != 0) return errnoFailure("write " + path, errno);
  return CliStatus();
}

// Copies follow `docker cp`: into an existing directory under the source's name, otherwise
// to exactly the destination path.
CliStatusOr<json> upload(ApiClient& client, const std::string& src, RemotePath dst) {
  struct stat st {};
  bool is_dir = false;
  int mode = 0644;
  if (src != "-") {
    if (::stat(src.c_str(), &st) != 0) return errnoFailure(src, errno);
    is_dir = S_ISDIR(st.st_mode);
    mode = static_cast<int>(st.st_mode & 0777);
    if (!is_dir && !S_ISREG(st.st_mode)) return usageError(src + " is neither a regular file nor a directory");
  }
  CLI_ASSIGN_OR_RETURN(auto target, statRemote(client, dst));
  bool dst_is_dir = (target && target->type == "d") || (!dst.path.empty() && dst.path.back() == '/');
  if (dst_is_dir) {
    if (src == "-") return usageError("copying stdin into a directory needs a file name: BOX:" + joinPath(dst.path, "NAME"));
    dst.path = joinPath(dst.path, baseName(src));
  } else if (is_dir && target) {
    return usageError("cannot copy directory " + src + " onto file " + dst.box + ":" + dst.path);
  }
  if (is_dir) {
    CLI_ASSIGN_OR_RETURN(std::string tar, tarDirectory(src));
    return client.putBytes(filesPath(dst.box, "/tar", dst.path), tar, "application/x-tar");
  }
  CLI_ASSIGN_OR_RETURN(std::string data, readLocalFile(src));
  char m[8];
  snprintf(m, sizeof m, "%04o", mode);
  return client.putBytes(filesPath(dst.box, "", dst.path, {{"mode", m}}), data, "application/octet-stream");
}

CliStatusOr<json> download(ApiClient& client, const RemotePath& src, std::string dst) {
  CLI_ASSIGN_OR_RETURN(auto entry, statRemote(client, src));
  if (!entry) return failure(src.box + ":" + src.path + ": no such file or directory");
  struct stat st {};
  bool dst_exists = dst != "-" && ::stat(dst.c_str(), &st) == 0;
  bool dst_is_dir = dst_exists && S_ISDIR(st.st_mode);
  if (entry->type == "d") {
    if (dst == "-") return usageError("cannot write directory " + src.path + " to standard output");
    if (dst_exists && !dst_is_dir) return usageError("cannot copy directory " + src.path + " onto file " + dst);
    std::string name = baseName(src.path);
    if (dst_is_dir && name != "/") dst = joinPath(dst, name);
    if (::mkdir(dst.c_str(), 0755) != 0 && errno != EEXIST) return errnoFailure("create directory " + dst, errno);
    CLI_ASSIGN_OR_RETURN(std::string tar, client.getBytes(filesPath(src.box, "/tar", src.path)));
    CLI_RETURN_IF_ERROR(extractTar(dst, tar));
    return json{{"path", dst}, {"bytes", tar.size()}};
  }
  if (dst_is_dir) dst = joinPath(dst, baseName(src.path));
  CLI_ASSIGN_OR_RETURN(std::string data, client.getBytes(filesPath(src.box, "", src.path)));
  CLI_RETURN_IF_ERROR(writeLocalFile(dst, data, entry->mode));
  return json{{"path", dst}, {"size", data.size()}};
}

CliStatusOr<int> copyCommand(CliContext& ctx, const std::string& src, const std::string& dst) {
  auto rsrc = src == "-" ? std::nullopt : parseRemote(src);
  auto rdst = dst == "-" ? std::nullopt : parseRemote(dst);
  if (rsrc.has_value() == rdst.has_value()) {
    return usageError("exactly one of SRC and DST must be in a box, written BOX:PATH (e.g. b-12ab:/workspace/out.txt)");
  }
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  CLI_ASSIGN_OR_RETURN(json result, rdst ? upload(*client, src, *rdst) : download(*client, *rsrc, dst));
  if (ctx.json() && dst != "-") ctx.printJson(result);
  return 0;
}

std::string modeText(const std::string& type, const std::string& octal) {
  int mode = 0;
  try {
    mode = std::stoi(octal, nullptr, 8);
  } catch (...) {
    return type + octal;
  }
  std::string s = type == "f" ? "-" : type.substr(0, 1);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (mode & (0400 >> i)) ? rwx[i] : '-';
  return s;
}

std::string mtimeText(const json& e) {
  if (!e.contains("mtime") || !e["mtime"].is_number()) return "-";
  time_t t = static_cast<time_t>(e["mtime"].get<double>());
  tm parts;
  gmtime_r(&t, &parts);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &parts);
  return buf;
}

CliStatusOr<int> listFilesCommand(CliContext& ctx, const std::string& box, std::string path) {
  if (path.empty()) path = kBoxHome;
  else if (path[0] != '/') path = std::string(kBoxHome) + "/" + path;
  CLI_ASSIGN_OR_RETURN(ApiClient * client, ctx.client());
  CLI_ASSIGN_OR_RETURN(json listing, client->get(filesPath(box, "/list", path)));
  if (ctx.json()) {
    ctx.printJson(listing);
    return 0;
  }
  std::vector<json> entries;
  if (listing.contains("entries") && listing["entries"].is_array()) entries.assign(listing["entries"].begin(), listing["entries"].end());
  std::sort(entries.begin(), entries.end(),
            [](const json& a, const json& b) { return a.value("name", std::string()) < b.value("name", std::string()); });
  Table t({"MODE", "SIZE", "MODIFIED (UTC)", "NAME"});
  for (const auto& e : entries) {
    std::string type = e.value("type", std::string("?"));
    std::string name = e.value("name", std::string());
    if (type == "d") name += "/";
    t.addRow({modeText(type, e.value("mode", std::string())), std::to_string(e.value("size", uint64_t{0})), mtimeText(e), name});
  }
  std::cout << t.render();
  return 0;
}

}  // namespace

void addFileCommands(CLI::App& app, CliContext& ctx) {
  {
    auto* cmd = app.add_subcommand("cp", "Copy a file or directory between this machine and a box");
    cmd->footer(
        "One side is BOX:PATH; a relative PATH is relative to /workspace. Like docker cp: a copy into an existing\n"
        "directory keeps the source's name, otherwise it lands at exactly DST. Directories travel as tar archives.\n"
        "\"-\" as SRC reads a file from stdin; as DST it writes a file to stdout.\n"
        "Examples: box cp ./src b-12ab:/workspace/src    box cp b-12ab:/workspace/out.bin ./out.bin");
    auto src = std::make_shared<std::string>();
    auto dst = std::make_shared<std::string>();
    cmd->add_option("src", *src, "Source: a local path, -, or BOX:PATH")->required();
    cmd->add_option("dst", *dst, "Destination: a local path, -, or BOX:PATH")->required();
    cmd->callback([&ctx, src, dst] { ctx.setAction([&ctx, src, dst] { return copyCommand(ctx, *src, *dst); }); });
  }
  {
    auto* cmd = app.add_subcommand("ls-files", "List a directory in a box");
    auto box = std::make_shared<std::string>();
    auto path = std::make_shared<std::string>();
    cmd->add_option("box", *box, "Box id")->required();
    cmd->add_option("path", *path, "Directory (default /workspace; relative paths start there)");
    cmd->callback([&ctx, box, path] { ctx.setAction([&ctx, box, path] { return listFilesCommand(ctx, *box, *path); }); });
  }
}

}  // namespace boxd::cli
