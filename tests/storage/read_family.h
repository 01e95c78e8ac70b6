// Reads a column family of a closed RocksDB database whole, for tests of the on-disk layout.
#ifndef TRACEKEEP_TESTS_STORAGE_READ_FAMILY_H_
#define TRACEKEEP_TESTS_STORAGE_READ_FAMILY_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"

namespace tracekeep::storage {

// Every (key, value) of column family `family` of the database at `path`, opened read-only.
inline std::vector<std::pair<std::string, std::string>> ReadFamily(const std::string& path,
                                                                   const std::string& family) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  for (const std::string& name : names)
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, descriptors, &handles, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::vector<std::pair<std::string, std::string>> entries;
  if (!s.ok()) return entries;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != family) continue;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      entries.emplace_back(it->key().ToString(), it->value().ToString());
    }
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return entries;
}

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_TESTS_STORAGE_READ_FAMILY_H_
