// Which partition a keyed record goes to, computed the way librdkafka's `fnv1a` partitioner and
// Sarama's default hash partitioner (OpenTelemetry's kafka exporter) do: the 32-bit FNV-1a hash of
// the key, read as a signed number and made non-negative, modulo the partition count. A member
// uses it to tell which order ids it owns from the partitions of the order topic it is assigned.
#ifndef TRACEKEEP_COLLECTOR_KAFKA_PARTITIONER_H_
#define TRACEKEEP_COLLECTOR_KAFKA_PARTITIONER_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace tracekeep::kafka {

// The partition of `key` among `partitions` (> 0).
inline int32_t Fnv1aPartition(absl::string_view key, int32_t partitions) {
  uint32_t h = 0x811c9dc5u;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x01000193u;
  }
  // Sarama's absolute value of the hash as an int32 (the most negative value stays as it is).
  if (h & 0x80000000u) h = ~h + 1u;
  return static_cast<int32_t>(h % static_cast<uint32_t>(partitions));
}

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_COLLECTOR_KAFKA_PARTITIONER_H_
