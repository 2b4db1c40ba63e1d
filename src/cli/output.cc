#include "cli/output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace kura::cli {

Format ParseFormat(std::string_view name) { return name == "json" ? Format::kJson : Format::kText; }

std::string ScalarText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "-";
  return value.dump();
}

std::string StringField(const nlohmann::json& object, const char* key, std::string_view fallback) {
  if (!object.is_object()) return std::string(fallback);
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
}

std::int64_t IntegerField(const nlohmann::json& object, const char* key, std::int64_t fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : fallback;
}

void PrintFields(std::ostream& out, const nlohmann::json& object, const std::vector<std::string>& keys) {
  if (!object.is_object()) return;
  for (const auto& key : keys) {
    auto it = object.find(key);
    if (it == object.end()) continue;
    out << key << ": " << ScalarText(*it) << "\n";
  }
}

void PrintAllFields(std::ostream& out, const nlohmann::json& object) {
  if (!object.is_object()) {
    out << ScalarText(object) << "\n";
    return;
  }
  for (auto it = object.begin(); it != object.end(); ++it) out << it.key() << ": " << ScalarText(it.value()) << "\n";
}

void PrintTable(std::ostream& out, const nlohmann::json& items, const std::vector<Column>& columns) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  for (const auto& c : columns) {
    std::string h = c.header;
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char ch) { return std::toupper(ch); });
    header.push_back(h);
  }
  rows.push_back(header);
  if (items.is_array()) {
    for (const auto& item : items) {
      std::vector<std::string> row;
      for (const auto& c : columns) {
        row.push_back(item.is_object() && item.contains(c.key) ? ScalarText(item[c.key]) : "-");
      }
      rows.push_back(std::move(row));
    }
  }
  std::vector<std::size_t> width(columns.size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

nlohmann::json ItemsOf(const nlohmann::json& body) {
  if (body.is_object()) {
    auto it = body.find("items");
    if (it != body.end() && it->is_array()) return *it;
  }
  return nlohmann::json::array();
}

void PrintRawBody(std::ostream& out, std::string_view body) {
  if (body.empty()) return;
  out << body;
  if (body.back() != '\n') out << "\n";
}

Status WritePrivateFile(const std::string& path, std::string_view content) {
  auto fail = [&path](const std::string& what) {
    return InvalidArgumentError("cannot write " + path + ": " + what + ": " + std::strerror(errno));
  };
  if (path.empty()) return InvalidArgumentError("no file name given");
  std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::string temp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  // mkstemp creates the file with mode 0600 whatever the umask; fchmod makes
  // that explicit.
  int fd = ::mkstemp(temp.data());
  if (fd < 0) return fail("cannot create a temporary file");
  auto abandon = [&](const std::string& what) {
    Status s = fail(what);
    ::close(fd);
    ::unlink(temp.c_str());
    return s;
  };
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) return abandon("chmod");
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return abandon("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return abandon("fsync");
  if (::close(fd) != 0) {
    Status s = fail("close");
    ::unlink(temp.c_str());
    return s;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    Status s = fail("rename");
    ::unlink(temp.c_str());
    return s;
  }
  // The rename itself is durable only once the directory is.
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

}  // namespace kura::cli
