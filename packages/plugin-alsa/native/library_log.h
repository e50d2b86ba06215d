// libasound's own messages (snd_lib_error_set_handler) -> speakerd's log, never raw to stderr.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace speakerd_alsa {

enum { LOG_DEBUG = 20, LOG_INFO = 30, LOG_WARN = 40, LOG_ERROR = 50 };

// Where log lines go (any thread may post). The binding layer installs a sink that hands them to JavaScript;
// without one they are dropped. SetLogSink(nullptr) removes it.
using LogSink = std::function<void(int level, std::string text)>;
void SetLogSink(LogSink sink);
void PostLog(int level, std::string text);

// LoadLib(), and from the first success on, libasound's messages go through LibraryErrorHandler.
bool LoadLibWithLog();

// The handler given to snd_lib_error_set_handler.
void LibraryErrorHandler(const char *file, int line, const char *function, int err, const char *fmt, ...);

// While a thread opens a PCM, what libasound says is collected here: one failed open makes libasound say up to
// ~8 things (for "default" without a card: "cannot find card '0'", then every evaluation step that failed because
// of it). They are posted at debug level only, and the first of them (the root cause) goes into the one message
// the open returns, so that a retrying backend logs one line per attempt.
struct CaptureLibraryLog {
  std::vector<std::string> said;
  std::vector<std::string> *prev;
  CaptureLibraryLog();
  ~CaptureLibraryLog();
  CaptureLibraryLog(const CaptureLibraryLog &) = delete;
  CaptureLibraryLog &operator=(const CaptureLibraryLog &) = delete;
};

}  // namespace speakerd_alsa
