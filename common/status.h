// Errors as values: a Status that is cheap when OK and carries a message a
// person can act on otherwise, and Result<T> = a value or a Status.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace updns {

class [[nodiscard]] Status {
 public:
  enum class Code { kOk, kNotFound, kInvalid, kExists, kIoError, kFull, kCorrupt, kUnsupported };

  Status() noexcept = default;

  static Status Ok() noexcept { return Status(); }
  static Status NotFound(std::string message) { return Status(Code::kNotFound, std::move(message)); }
  // Bad input: a file, a field, a request.
  static Status Invalid(std::string message) { return Status(Code::kInvalid, std::move(message)); }
  static Status Exists(std::string message) { return Status(Code::kExists, std::move(message)); }
  static Status IoError(std::string message) { return Status(Code::kIoError, std::move(message)); }
  // The store's map is full: raise storage.map_size.
  static Status Full(std::string message) { return Status(Code::kFull, std::move(message)); }
  static Status Corrupt(std::string message) { return Status(Code::kCorrupt, std::move(message)); }
  static Status Unsupported(std::string message) { return Status(Code::kUnsupported, std::move(message)); }

  bool ok() const noexcept { return state_ == nullptr; }
  Code code() const noexcept { return state_ ? state_->code : Code::kOk; }
  bool IsNotFound() const noexcept { return code() == Code::kNotFound; }
  bool IsInvalid() const noexcept { return code() == Code::kInvalid; }
  bool IsExists() const noexcept { return code() == Code::kExists; }
  bool IsFull() const noexcept { return code() == Code::kFull; }

  // Empty when OK.
  std::string_view message() const noexcept {
    return state_ ? std::string_view(state_->message) : std::string_view();
  }

  // Prefixes context ("zone dyn.example: ") to an error; OK stays OK.
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return Status(code(), std::string(context) + std::string(message()));
  }

 private:
  struct State {
    Code code;
    std::string message;
  };
  Status(Code code, std::string message)
      : state_(std::make_shared<const State>(State{code, std::move(message)})) {}

  std::shared_ptr<const State> state_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {}  // NOLINT
  // REQUIRES: !status.ok() when constructing from a Status.

  bool ok() const noexcept { return std::holds_alternative<T>(value_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(value_);
  }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace updns
