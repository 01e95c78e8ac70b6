// Status propagation helpers. Debian's abseil (20220623) ships no status_macros.h.
#ifndef TRACEKEEP_COLLECTOR_COMMON_STATUS_MACROS_H_
#define TRACEKEEP_COLLECTOR_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TK_CONCAT_INNER_(a, b) a##b
#define TK_CONCAT_(a, b) TK_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` yields a non-OK absl::Status.
#define TK_RETURN_IF_ERROR(expr)              \
  do {                                        \
    const ::absl::Status tk_status_ = (expr); \
    if (!tk_status_.ok()) return tk_status_;  \
  } while (0)

// `TK_ASSIGN_OR_RETURN(auto x, Foo());` assigns the value of a StatusOr or returns its status.
#define TK_ASSIGN_OR_RETURN(lhs, expr) \
  TK_ASSIGN_OR_RETURN_IMPL_(TK_CONCAT_(tk_statusor_, __LINE__), lhs, expr)
#define TK_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // TRACEKEEP_COLLECTOR_COMMON_STATUS_MACROS_H_
