// libasound's own messages -> the log sink (see library_log.h).

#include "library_log.h"

#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "alsa_lib.h"

namespace speakerd_alsa {

namespace {
std::mutex sinkMu;
LogSink sink;
thread_local std::vector<std::string> *tlsCapture = nullptr;
}  // namespace

void SetLogSink(LogSink s) {
  std::lock_guard<std::mutex> g(sinkMu);
  sink = std::move(s);
}

void PostLog(int level, std::string text) {
  std::lock_guard<std::mutex> g(sinkMu);
  if (sink) sink(level, std::move(text));  // nobody listens: dropped, never written to stderr
}

void LibraryErrorHandler(const char *file, int line, const char *function, int err, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::string said = buf;
  if (err != 0) said += ": " + StrError(err);
  std::string text = "libasound: " + said;
  if (function) text += std::string(" (") + function + ")";
  if (tlsCapture) {
    tlsCapture->push_back(said);
    PostLog(LOG_DEBUG, std::move(text));
    return;
  }
  PostLog(LOG_WARN, std::move(text));
}

bool LoadLibWithLog() {
  if (!LoadLib()) return false;
  static std::once_flag once;
  std::call_once(once, [] { lib.snd_lib_error_set_handler(LibraryErrorHandler); });
  return true;
}

CaptureLibraryLog::CaptureLibraryLog() : prev(tlsCapture) { tlsCapture = &said; }
CaptureLibraryLog::~CaptureLibraryLog() { tlsCapture = prev; }

}  // namespace speakerd_alsa
