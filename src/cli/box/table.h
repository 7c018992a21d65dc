// Table: aligned plain-text tables for human output, in the docker/kubectl style (upper-case
// headers, columns separated by spaces, no borders). --json bypasses it entirely.
#pragma once

#include <string>
#include <vector>

namespace boxd::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  // Control characters in cells are shown as '?', so a hostile label or file name can neither
  // break the alignment nor send escape sequences to the terminal.
  void addRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  std::string render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// The same cleaning, for values printed outside a table.
std::string printable(const std::string& s);

}  // namespace boxd::cli
