// Writes the FileDescriptorSet of OTLP's trace.proto (and what it imports), taken from the
// compiled OTLP library tracekeep links (libopentelemetry-proto), to the file named by argv[1].
// protoc reads it with --descriptor_set_in to compile protos that import OTLP types, so their
// generated code refers to exactly the OTLP messages of that library; no OTLP .proto source is
// needed or vendored.
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace {

void AddWithDependencies(const google::protobuf::FileDescriptor* file, std::set<std::string>* seen,
                         google::protobuf::FileDescriptorSet* set) {
  if (!seen->insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddWithDependencies(file->dependency(i), seen, set);
  }
  file->CopyTo(set->add_file());  // dependencies first, as protoc expects
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT\n", argv[0]);
    return 2;
  }
  google::protobuf::FileDescriptorSet set;
  std::set<std::string> seen;
  AddWithDependencies(opentelemetry::proto::trace::v1::TracesData::descriptor()->file(), &seen,
                      &set);
  std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
  if (!set.SerializeToOstream(&out)) {
    std::fprintf(stderr, "%s: cannot write %s\n", argv[0], argv[1]);
    return 1;
  }
  return 0;
}
