// libFuzzer target: the token file parser (collector/security/token_file.cc).
#include <cstddef>
#include <cstdint>

#include "collector/security/token_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)tracekeep::security::TokenTable::Parse(text, "fuzz", /*with_roles=*/false);
  (void)tracekeep::security::TokenTable::Parse(text, "fuzz", /*with_roles=*/true);
  return 0;
}
