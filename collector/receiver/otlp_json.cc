#include "collector/receiver/otlp_json.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::receiver {
namespace {

enum class IdKind { kNone, kTrace, kSpan, kParent };

// What an invalid parentSpanId becomes: one zero byte, which no valid parent id (0 or 8 bytes)
// can be, so that ParseOtlpJson can find and reject the span after parsing.
constexpr char kBadParentBase64[] = "AA==";
constexpr int kMaxDescribedIds = 3;
constexpr size_t kMaxQuotedValue = 40;

IdKind KeyKind(absl::string_view key) {
  if (key == "traceId" || key == "trace_id") return IdKind::kTrace;
  if (key == "spanId" || key == "span_id") return IdKind::kSpan;
  if (key == "parentSpanId" || key == "parent_span_id") return IdKind::kParent;
  return IdKind::kNone;
}

// Index of the quote closing the JSON string that opens at json[open], or npos.
size_t StringEnd(absl::string_view json, size_t open, bool* has_escape) {
  for (size_t i = open + 1; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '\\') {
      *has_escape = true;
      ++i;
    } else if (c == '"') {
      return i;
    }
  }
  return absl::string_view::npos;
}

size_t SkipSpace(absl::string_view json, size_t i) {
  while (i < json.size() &&
         (json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t')) {
    ++i;
  }
  return i;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes the escapes of a JSON string body. Ids and keys are ASCII, so \u escapes above 0x7f
// are refused (returns false) rather than encoded.
bool Unescape(absl::string_view raw, std::string* out) {
  out->clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out->push_back(raw[i]);
      continue;
    }
    if (++i == raw.size()) return false;
    switch (raw[i]) {
      case '"':
      case '\\':
      case '/':
        out->push_back(raw[i]);
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        if (i + 4 >= raw.size()) return false;
        int code = 0;
        for (int k = 1; k <= 4; ++k) {
          const int d = HexDigit(raw[i + k]);
          if (d < 0) return false;
          code = code * 16 + d;
        }
        if (code > 0x7f) return false;
        out->push_back(static_cast<char>(code));
        i += 4;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

// Calls `transform(kind, key, value, value_ok, offset, out)` for the string value of every id
// key, which appends the replacement value (without quotes) to `out`. Everything else is copied.
template <typename Transform>
void RewriteIds(absl::string_view json, std::string* out, Transform transform) {
  out->clear();
  out->reserve(json.size() + json.size() / 8);
  size_t copied = 0;  // json[0, copied) is in *out
  size_t i = 0;
  std::string key_buf;
  std::string value_buf;
  while (i < json.size()) {
    const void* quote = std::memchr(json.data() + i, '"', json.size() - i);
    if (quote == nullptr) break;
    const size_t open = static_cast<const char*>(quote) - json.data();
    bool key_escaped = false;
    const size_t close = StringEnd(json, open, &key_escaped);
    if (close == absl::string_view::npos) break;
    i = close + 1;
    size_t j = SkipSpace(json, i);
    if (j >= json.size() || json[j] != ':') continue;  // a string value, not a key
    absl::string_view key = json.substr(open + 1, close - open - 1);
    if (key_escaped) {
      if (!Unescape(key, &key_buf)) continue;
      key = key_buf;
    }
    const IdKind kind = KeyKind(key);
    if (kind == IdKind::kNone) continue;
    j = SkipSpace(json, j + 1);
    if (j >= json.size() || json[j] != '"') continue;  // null or not a string: the parser decides
    bool value_escaped = false;
    const size_t value_close = StringEnd(json, j, &value_escaped);
    if (value_close == absl::string_view::npos) break;
    absl::string_view value = json.substr(j + 1, value_close - j - 1);
    bool value_ok = true;
    if (value_escaped) {
      value_ok = Unescape(value, &value_buf);
      if (value_ok) value = value_buf;
    }
    out->append(json.data() + copied, j + 1 - copied);  // through the opening quote
    transform(kind, key, value, value_ok, j, out);
    copied = value_close;  // the closing quote is copied with the next run
    i = value_close + 1;
  }
  out->append(json.data() + copied, json.size() - copied);
}

// Appends the standard base64 (with padding) of `bytes`.
void AppendBase64(const unsigned char* bytes, size_t n, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out->push_back(kAlphabet[v >> 18]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(kAlphabet[(v >> 6) & 63]);
    out->push_back(kAlphabet[v & 63]);
  }
  if (i < n) {
    const uint32_t v = (bytes[i] << 16) | (i + 1 < n ? bytes[i + 1] << 8 : 0);
    out->push_back(kAlphabet[v >> 18]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out->push_back('=');
  }
}

// Decodes `hex` of exactly `size` bytes into `bytes`; on failure says why in `why`.
bool DecodeHexId(absl::string_view hex, size_t size, unsigned char* bytes, std::string* why) {
  if (hex.size() != 2 * size) {
    *why = absl::StrCat("want ", 2 * size, " hex digits, got ", hex.size(), " characters");
    return false;
  }
  for (size_t k = 0; k < size; ++k) {
    const int hi = HexDigit(hex[2 * k]);
    const int lo = HexDigit(hex[2 * k + 1]);
    if (hi < 0 || lo < 0) {
      *why = absl::StrCat("non-hex character at position ", 2 * k + (hi < 0 ? 0 : 1));
      return false;
    }
    bytes[k] = static_cast<unsigned char>((hi << 4) | lo);
  }
  return true;
}

std::string Quote(absl::string_view value) {
  if (value.size() > kMaxQuotedValue) {
    return absl::StrCat("\"", absl::CHexEscape(value.substr(0, kMaxQuotedValue)), "...\"");
  }
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

absl::Status ParseWithRewrite(absl::string_view json, google::protobuf::Message* out,
                              std::string* id_errors, int* bad_ids) {
  std::string rewritten;
  *bad_ids = RewriteHexIdsToBase64(json, &rewritten, id_errors);
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(rewritten, out, options);
  if (!status.ok()) {
    const auto message = status.message();
    return absl::InvalidArgumentError(
        absl::StrCat("invalid OTLP/JSON ", out->GetDescriptor()->name(), ": ",
                     absl::string_view(message.data(), message.size())));
  }
  return absl::OkStatus();
}

}  // namespace

int RewriteHexIdsToBase64(absl::string_view json, std::string* out, std::string* id_errors) {
  int bad = 0;
  std::string why;
  RewriteIds(json, out,
             [&](IdKind kind, absl::string_view key, absl::string_view value, bool value_ok,
                 size_t offset, std::string* dest) {
               if (value_ok && value.empty()) return;  // no id (a root span's parentSpanId)
               const size_t size = kind == IdKind::kTrace ? kTraceIdSize : kSpanIdSize;
               unsigned char bytes[kTraceIdSize];
               if (!value_ok) why = "undecodable escape sequence";
               if (value_ok && DecodeHexId(value, size, bytes, &why)) {
                 AppendBase64(bytes, size, dest);
                 return;
               }
               if (kind == IdKind::kParent) dest->append(kBadParentBase64);
               ++bad;
               if (id_errors == nullptr) return;
               if (bad <= kMaxDescribedIds) {
                 if (!id_errors->empty()) id_errors->append("; ");
                 absl::StrAppend(id_errors, key, " ", Quote(value), " at byte ", offset,
                                 " is not a valid id: ", why);
               } else if (bad == kMaxDescribedIds + 1) {
                 id_errors->append("; and more invalid ids");
               }
             });
  return bad;
}

void RewriteBase64IdsToHex(absl::string_view json, std::string* out) {
  std::string bytes;
  RewriteIds(json, out,
             [&](IdKind, absl::string_view, absl::string_view value, bool value_ok, size_t,
                 std::string* dest) {
               if (value_ok && absl::Base64Unescape(value, &bytes)) {
                 dest->append(ToHex(bytes));
               } else {
                 dest->append(value.data(), value.size());  // leave it as it was
               }
             });
}

absl::Status ParseOtlpJsonMessage(absl::string_view json, google::protobuf::Message* out,
                                  std::string* id_errors) {
  int bad = 0;
  return ParseWithRewrite(json, out, id_errors, &bad);
}

absl::Status ParseOtlpJson(absl::string_view json, OtlpRequest* out, std::string* id_errors) {
  out->Clear();
  int bad = 0;
  absl::Status status = ParseWithRewrite(json, out, id_errors, &bad);
  if (!status.ok() || bad == 0) return status;
  // An invalid parentSpanId was parsed as one byte; make its span invalid so it alone is
  // rejected (keeping it with no parent would silently turn it into a root span).
  for (auto& rs : *out->mutable_resource_spans()) {
    for (auto& ss : *rs.mutable_scope_spans()) {
      for (auto& span : *ss.mutable_spans()) {
        if (span.parent_span_id().size() == 1) {
          span.clear_parent_span_id();
          span.clear_span_id();
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ToOtlpJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_enums_as_ints = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    const auto m = status.message();
    return absl::InternalError(absl::StrCat("cannot print ", message.GetDescriptor()->full_name(),
                                            " as JSON: ", absl::string_view(m.data(), m.size())));
  }
  std::string out;
  RewriteBase64IdsToHex(json, &out);
  return out;
}

}  // namespace tracekeep::receiver
