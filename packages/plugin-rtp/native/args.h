// Argument and state checks for the sender's entry points, and the coded errors they throw.
//
// Each entry point builds an Args with its name and usage ("configure(slots, slotBytes)") and reads every
// argument through it: the count, each type and each range are checked before anything is touched, as
// better-sqlite3 guards its entries (and plugin-alsa's native/args.h does). A failed check throws, through
// node-addon-api's C++ exceptions, a TypeError (missing, wrong type: SPEAKERD_ERR_RTP_ARGUMENT) or a RangeError
// (out of range: SPEAKERD_ERR_RTP_RANGE) that JavaScript catches: never a crash, never a silent 0.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace speakerd_rtp {

// The `code` of the errors (src/native.ts: NATIVE_ERRORS).
constexpr const char* ERR_ARGUMENT = "SPEAKERD_ERR_RTP_ARGUMENT";
constexpr const char* ERR_RANGE = "SPEAKERD_ERR_RTP_RANGE";

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* usage, size_t min, size_t max) : info_(info), usage_(usage) {
    size_t n = info.Length();
    if (n < min || n > max) {
      std::string want = min == max ? std::to_string(min) : std::to_string(min) + ".." + std::to_string(max);
      Fail(false, "expected " + want + " argument" + (max == 1 ? "" : "s") + ", got " + std::to_string(n));
    }
  }

  std::string String(size_t i) const {
    Napi::Value v = info_[i];
    if (!v.IsString()) Wrong(i, "a string");
    return v.As<Napi::String>().Utf8Value();
  }
  // A string, or "" for undefined/null (an optional last argument).
  std::string OptionalString(size_t i) const {
    Napi::Value v = info_[i];
    return v.IsUndefined() || v.IsNull() ? std::string() : String(i);
  }
  bool Boolean(size_t i) const {
    Napi::Value v = info_[i];
    if (!v.IsBoolean()) Wrong(i, "a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  // An integer in lo..hi.
  int64_t Integer(size_t i, int64_t lo, int64_t hi) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) Wrong(i, "an integer");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || std::floor(d) != d || d < double(lo) || d > double(hi))
      Fail(true, Which(i) + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                     Napi::Value(v).ToString().Utf8Value());
    return int64_t(d);
  }
  Napi::Function Function(size_t i) const {
    Napi::Value v = info_[i];
    if (!v.IsFunction()) Wrong(i, "a function");
    return v.As<Napi::Function>();
  }
  // A typed array of type T (napi_uint8_array, napi_float64_array) with at least `least` elements.
  template <typename Array>
  Array Typed(size_t i, napi_typedarray_type type, const char* name, size_t least = 0) const {
    Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) Wrong(i, name);
    Array a = v.As<Array>();
    if (a.ElementLength() < least)
      Fail(true, Which(i) + " must have at least " + std::to_string(least) + " elements, got " +
                     std::to_string(a.ElementLength()));
    return a;
  }

 private:
  std::string Which(size_t i) const { return "argument " + std::to_string(i + 1); }
  [[noreturn]] void Wrong(size_t i, const char* expected) const {
    Napi::Value v = info_[i];
    const char* got = v.IsUndefined() ? "undefined"
                      : v.IsNull()    ? "null"
                      : v.IsNumber()  ? "a number"
                      : v.IsString()  ? "a string"
                      : v.IsBoolean() ? "a boolean"
                      : v.IsFunction() ? "a function"
                      : v.IsTypedArray() ? "another typed array"
                                         : "an object";
    Fail(false, Which(i) + " must be " + expected + ", got " + got);
  }
  [[noreturn]] void Fail(bool range, const std::string& what) const {
    Napi::Env env = info_.Env();
    std::string message = std::string(usage_) + ": " + what;
    Napi::Error e = range ? Napi::Error(Napi::RangeError::New(env, message)) : Napi::Error(Napi::TypeError::New(env, message));
    e.Set("code", Napi::String::New(env, range ? ERR_RANGE : ERR_ARGUMENT));
    throw e;
  }

  const Napi::CallbackInfo& info_;
  const char* usage_;
};

}  // namespace speakerd_rtp
