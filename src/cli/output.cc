#include "cli/output.h"

#include <algorithm>
#include <cctype>

namespace kura::cli {

Format ParseFormat(std::string_view name) { return name == "json" ? Format::kJson : Format::kText; }

std::string ScalarText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "-";
  return value.dump();
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

}  // namespace kura::cli
