// speakerd's ALSA addon.
//
// - libasound.so.2 is loaded with dlopen() at run time: the addon builds without libasound2-dev, and a missing
//   library is a clear error when the backend is chosen instead of a failed install.
// - One writer thread per stream owns the snd_pcm_t. JavaScript hands it frames through a bounded ring buffer
//   (a mutex held only for memcpy and bookkeeping), and hears back through a ThreadSafeFunction: room freed,
//   state changes (lost / recovering / ok), log lines, the results of open/drain/close. Nothing here blocks the
//   event loop, and the libuv pool is never used.
// - The PCM is opened non-blocking and the writer writes at most what snd_pcm_avail_update() says fits, so it
//   can be woken at once (flush, close) instead of sitting in a blocking write.
// - Recovery as MPD does it: EPIPE (xrun) -> prepare; ESTRPIPE (suspend) -> resume, else prepare; anything else
//   (ENODEV, EBUSY, EBADFD, EIO, ...) -> close, report "lost", reopen with backoff, report "ok" when back.
// - A fault-injection hook (injectFault) for tests only: the next writes/opens fail with a chosen errno, or the
//   writer sleeps as if blocked in a write.
// - Real-time scheduling when asked for (realtime option), as MPD does for its output thread: the writer sets
//   SCHED_FIFO priority 20 (SCHED_RESET_ON_FORK) and 1 ns timer slack on itself; realtime() says how that went.

#include <napi.h>

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// ------------------------------------------------------------------ libasound, declared by hand (stable ABI)

struct snd_pcm_t;
struct snd_pcm_hw_params_t;
struct snd_pcm_sw_params_t;
struct snd_mixer_t;
struct snd_mixer_elem_t;
struct snd_mixer_selem_id_t;
typedef unsigned long snd_pcm_uframes_t;
typedef long snd_pcm_sframes_t;
typedef void (*snd_lib_error_handler_t)(const char *, int, const char *, int, const char *, ...);

constexpr int PCM_STREAM_PLAYBACK = 0;
constexpr int PCM_NONBLOCK = 1;
constexpr int PCM_ACCESS_RW_INTERLEAVED = 3;
enum {
  ST_OPEN,
  ST_SETUP,
  ST_PREPARED,
  ST_RUNNING,
  ST_XRUN,
  ST_DRAINING,
  ST_PAUSED,
  ST_SUSPENDED,
  ST_DISCONNECTED
};

#define ALSA_FUNCS(X)                                                                                              \
  X(snd_strerror, const char *, (int))                                                                             \
  X(snd_lib_error_set_handler, int, (snd_lib_error_handler_t))                                                     \
  X(snd_pcm_open, int, (snd_pcm_t **, const char *, int, int))                                                     \
  X(snd_pcm_close, int, (snd_pcm_t *))                                                                             \
  X(snd_pcm_hw_params_malloc, int, (snd_pcm_hw_params_t **))                                                       \
  X(snd_pcm_hw_params_free, void, (snd_pcm_hw_params_t *))                                                         \
  X(snd_pcm_hw_params_any, int, (snd_pcm_t *, snd_pcm_hw_params_t *))                                              \
  X(snd_pcm_hw_params_set_rate_resample, int, (snd_pcm_t *, snd_pcm_hw_params_t *, unsigned int))                  \
  X(snd_pcm_hw_params_set_access, int, (snd_pcm_t *, snd_pcm_hw_params_t *, int))                                  \
  X(snd_pcm_hw_params_set_format, int, (snd_pcm_t *, snd_pcm_hw_params_t *, int))                                  \
  X(snd_pcm_hw_params_set_channels, int, (snd_pcm_t *, snd_pcm_hw_params_t *, unsigned int))                       \
  X(snd_pcm_hw_params_get_channels_min, int, (const snd_pcm_hw_params_t *, unsigned int *))                        \
  X(snd_pcm_hw_params_get_channels_max, int, (const snd_pcm_hw_params_t *, unsigned int *))                        \
  X(snd_pcm_hw_params_test_rate, int, (snd_pcm_t *, snd_pcm_hw_params_t *, unsigned int, int))                     \
  X(snd_pcm_hw_params_set_rate_near, int, (snd_pcm_t *, snd_pcm_hw_params_t *, unsigned int *, int *))             \
  X(snd_pcm_hw_params_get_rate_min, int, (const snd_pcm_hw_params_t *, unsigned int *, int *))                     \
  X(snd_pcm_hw_params_get_rate_max, int, (const snd_pcm_hw_params_t *, unsigned int *, int *))                     \
  X(snd_pcm_hw_params_set_buffer_time_near, int, (snd_pcm_t *, snd_pcm_hw_params_t *, unsigned int *, int *))      \
  X(snd_pcm_hw_params_set_period_time_near, int, (snd_pcm_t *, snd_pcm_hw_params_t *, unsigned int *, int *))      \
  X(snd_pcm_hw_params_get_buffer_size, int, (const snd_pcm_hw_params_t *, snd_pcm_uframes_t *))                    \
  X(snd_pcm_hw_params_get_period_size, int, (const snd_pcm_hw_params_t *, snd_pcm_uframes_t *, int *))             \
  X(snd_pcm_hw_params, int, (snd_pcm_t *, snd_pcm_hw_params_t *))                                                  \
  X(snd_pcm_sw_params_malloc, int, (snd_pcm_sw_params_t **))                                                       \
  X(snd_pcm_sw_params_free, void, (snd_pcm_sw_params_t *))                                                         \
  X(snd_pcm_sw_params_current, int, (snd_pcm_t *, snd_pcm_sw_params_t *))                                          \
  X(snd_pcm_sw_params_set_start_threshold, int, (snd_pcm_t *, snd_pcm_sw_params_t *, snd_pcm_uframes_t))          \
  X(snd_pcm_sw_params_set_avail_min, int, (snd_pcm_t *, snd_pcm_sw_params_t *, snd_pcm_uframes_t))                \
  X(snd_pcm_sw_params, int, (snd_pcm_t *, snd_pcm_sw_params_t *))                                                  \
  X(snd_pcm_prepare, int, (snd_pcm_t *))                                                                           \
  X(snd_pcm_start, int, (snd_pcm_t *))                                                                             \
  X(snd_pcm_drop, int, (snd_pcm_t *))                                                                              \
  X(snd_pcm_resume, int, (snd_pcm_t *))                                                                            \
  X(snd_pcm_state, int, (snd_pcm_t *))                                                                             \
  X(snd_pcm_avail_update, snd_pcm_sframes_t, (snd_pcm_t *))                                                        \
  X(snd_pcm_delay, int, (snd_pcm_t *, snd_pcm_sframes_t *))                                                        \
  X(snd_pcm_writei, snd_pcm_sframes_t, (snd_pcm_t *, const void *, snd_pcm_uframes_t))                             \
  X(snd_mixer_open, int, (snd_mixer_t **, int))                                                                    \
  X(snd_mixer_attach, int, (snd_mixer_t *, const char *))                                                          \
  X(snd_mixer_selem_register, int, (snd_mixer_t *, void *, void *))                                                \
  X(snd_mixer_load, int, (snd_mixer_t *))                                                                          \
  X(snd_mixer_close, int, (snd_mixer_t *))                                                                         \
  X(snd_mixer_selem_id_malloc, int, (snd_mixer_selem_id_t **))                                                     \
  X(snd_mixer_selem_id_free, void, (snd_mixer_selem_id_t *))                                                       \
  X(snd_mixer_selem_id_set_name, void, (snd_mixer_selem_id_t *, const char *))                                     \
  X(snd_mixer_selem_id_set_index, void, (snd_mixer_selem_id_t *, unsigned int))                                    \
  X(snd_mixer_find_selem, snd_mixer_elem_t *, (snd_mixer_t *, const snd_mixer_selem_id_t *))                       \
  X(snd_mixer_selem_has_playback_volume, int, (snd_mixer_elem_t *))                                                \
  X(snd_mixer_selem_get_playback_volume_range, int, (snd_mixer_elem_t *, long *, long *))                          \
  X(snd_mixer_selem_set_playback_volume_all, int, (snd_mixer_elem_t *, long))                                      \
  X(snd_mixer_selem_get_playback_dB_range, int, (snd_mixer_elem_t *, long *, long *))                              \
  X(snd_mixer_selem_set_playback_dB_all, int, (snd_mixer_elem_t *, long, int))

struct Lib {
#define DECL(name, ret, args) ret(*name) args = nullptr;
  ALSA_FUNCS(DECL)
#undef DECL
};
Lib lib;

std::mutex loadMu;
bool loadTried = false;
std::string loadError;

// ------------------------------------------------------------------ libasound's own messages -> the JS logger

enum { LOG_DEBUG = 20, LOG_INFO = 30, LOG_WARN = 40, LOG_ERROR = 50 };

struct LogMsg {
  int level;
  std::string text;
};

std::mutex logMu;
Napi::ThreadSafeFunction logTsfn;
bool haveLogTsfn = false;

void CallLog(Napi::Env env, Napi::Function fn, LogMsg *m) {
  if (env != nullptr && fn != nullptr) {
    try {
      fn.Call({Napi::Number::New(env, m->level), Napi::String::New(env, m->text)});
    } catch (...) {
    }
  }
  delete m;
}

void PostLog(int level, std::string text) {
  std::lock_guard<std::mutex> g(logMu);
  if (!haveLogTsfn) return;  // nobody listens: dropped, never written to stderr
  auto *m = new LogMsg{level, std::move(text)};
  if (logTsfn.NonBlockingCall(m, CallLog) != napi_ok) delete m;
}

std::string StrError(int err) {
  if (err < 0) err = -err;
  if (lib.snd_strerror) return lib.snd_strerror(-err);
  return std::strerror(err);
}

// While a thread opens a PCM (OpenPcm), what libasound says is collected here: one failed open makes libasound
// say up to ~8 things (for "default" without a card: "cannot find card '0'", then every evaluation step that
// failed because of it). They are posted at debug level only, and the first of them (the root cause) goes into
// the one message the open returns, so that a retrying backend logs one line per attempt.
thread_local std::vector<std::string> *tlsCapture = nullptr;

void ErrorHandler(const char *file, int line, const char *function, int err, const char *fmt, ...) {
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

// Collects libasound's messages on this thread for as long as it lives.
struct CaptureLibraryLog {
  std::vector<std::string> said;
  std::vector<std::string> *prev;
  CaptureLibraryLog() : prev(tlsCapture) { tlsCapture = &said; }
  ~CaptureLibraryLog() { tlsCapture = prev; }
  CaptureLibraryLog(const CaptureLibraryLog &) = delete;
  CaptureLibraryLog &operator=(const CaptureLibraryLog &) = delete;
};

bool LoadLib() {
  std::lock_guard<std::mutex> g(loadMu);
  if (loadTried) return loadError.empty();
  loadTried = true;
  // For tests only: SPEAKERD_ALSA_LIBRARY names another library file, to simulate a missing libasound.
  const char *forced = std::getenv("SPEAKERD_ALSA_LIBRARY");
  const char *libName = forced && *forced ? forced : "libasound.so.2";
  void *h = dlopen(libName, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    loadError = e ? e : "dlopen failed";
    return false;
  }
#define LOAD(name, ret, args)                                                                                      \
  lib.name = reinterpret_cast<ret(*) args>(dlsym(h, #name));                                                       \
  if (!lib.name) {                                                                                                 \
    loadError = std::string(libName) + " has no symbol " #name;                                                    \
    lib = Lib();                                                                                                   \
    return false;                                                                                                  \
  }
  ALSA_FUNCS(LOAD)
#undef LOAD
  lib.snd_lib_error_set_handler(ErrorHandler);
  return true;
}

// ------------------------------------------------------------------ fault injection (tests only)

struct Faults {
  int writeErrno = 0, writeCount = 0;
  int openErrno = 0, openCount = 0;
  int sleepMs = 0, sleepCount = 0;
};
std::mutex faultMu;
Faults faults;

int TakeFault(int &err, int &count) {
  std::lock_guard<std::mutex> g(faultMu);
  if (count <= 0 || err == 0) return 0;
  count--;
  return err;
}

// ------------------------------------------------------------------ opening and configuring a PCM

struct Config {
  std::string device;
  int format = 2;  // SND_PCM_FORMAT_S16_LE
  unsigned rate = 44100, channels = 2;
  unsigned bufferUs = 100000, periodUs = 20000;
  bool noResample = true;
};

struct OpenResult {
  int err = 0;         // negative errno, 0 on success
  bool fatal = false;  // the device opened but refuses this configuration: retrying will not help
  std::string message;
  snd_pcm_uframes_t bufferFrames = 0, periodFrames = 0;
};

struct HwParams {
  snd_pcm_hw_params_t *p = nullptr;
  HwParams() { lib.snd_pcm_hw_params_malloc(&p); }
  ~HwParams() {
    if (p) lib.snd_pcm_hw_params_free(p);
  }
};
struct SwParams {
  snd_pcm_sw_params_t *p = nullptr;
  SwParams() { lib.snd_pcm_sw_params_malloc(&p); }
  ~SwParams() {
    if (p) lib.snd_pcm_sw_params_free(p);
  }
};

// Refine (and, when `install`, set) the hardware parameters. The rate must be exact.
OpenResult Configure(snd_pcm_t *pcm, const Config &c, bool install) {
  OpenResult r;
  HwParams hw;
  auto fail = [&](int err, bool fatal, std::string msg) {
    r.err = err < 0 ? err : -EINVAL;
    r.fatal = fatal;
    r.message = std::move(msg);
    return r;
  };
  if (!hw.p) return fail(-ENOMEM, false, "out of memory");
  int err = lib.snd_pcm_hw_params_any(pcm, hw.p);
  if (err < 0) return fail(err, false, "cannot read the device's hardware parameters: " + StrError(err));
  // never let alsa-lib resample behind our back: the rate the device runs at is the rate we asked for
  lib.snd_pcm_hw_params_set_rate_resample(pcm, hw.p, c.noResample ? 0 : 1);
  if ((err = lib.snd_pcm_hw_params_set_access(pcm, hw.p, PCM_ACCESS_RW_INTERLEAVED)) < 0)
    return fail(err, true, "the device does not take interleaved read/write access: " + StrError(err));
  if ((err = lib.snd_pcm_hw_params_set_format(pcm, hw.p, c.format)) < 0)
    return fail(err, true, "the device does not take this sample encoding: " + StrError(err));
  if ((err = lib.snd_pcm_hw_params_set_channels(pcm, hw.p, c.channels)) < 0) {
    unsigned lo = 0, hi = 0;
    HwParams any;
    if (any.p && lib.snd_pcm_hw_params_any(pcm, any.p) >= 0) {
      lib.snd_pcm_hw_params_get_channels_min(any.p, &lo);
      lib.snd_pcm_hw_params_get_channels_max(any.p, &hi);
    }
    return fail(err, true,
                "the device does not take " + std::to_string(c.channels) + " channels (it takes " +
                    std::to_string(lo) + ".." + std::to_string(hi) + ")");
  }
  if (lib.snd_pcm_hw_params_test_rate(pcm, hw.p, c.rate, 0) < 0) {
    unsigned lo = 0, hi = 0;
    int loDir = 0, hiDir = 0;
    lib.snd_pcm_hw_params_get_rate_min(hw.p, &lo, &loDir);
    lib.snd_pcm_hw_params_get_rate_max(hw.p, &hi, &hiDir);
    if (loDir > 0) lo++;  // open interval ends
    if (hiDir < 0 && hi > lo) hi--;
    return fail(-EINVAL, true,
                "the device does not play " + std::to_string(c.rate) + " Hz without resampling (it plays " +
                    (lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi)) + " Hz)");
  }
  unsigned rate = c.rate;
  int dir = 0;
  if ((err = lib.snd_pcm_hw_params_set_rate_near(pcm, hw.p, &rate, &dir)) < 0)
    return fail(err, true, "cannot set the rate " + std::to_string(c.rate) + " Hz: " + StrError(err));
  if (rate != c.rate || dir != 0)
    return fail(-EINVAL, true,
                "the device granted " + std::to_string(rate) + " Hz instead of " + std::to_string(c.rate) + " Hz");
  if (!install) return r;
  unsigned bt = c.bufferUs, pt = c.periodUs;
  dir = 0;
  if ((err = lib.snd_pcm_hw_params_set_buffer_time_near(pcm, hw.p, &bt, &dir)) < 0)
    PostLog(LOG_WARN, "cannot set the buffer time " + std::to_string(c.bufferUs) + " us: " + StrError(err));
  dir = 0;
  if ((err = lib.snd_pcm_hw_params_set_period_time_near(pcm, hw.p, &pt, &dir)) < 0)
    PostLog(LOG_WARN, "cannot set the period time " + std::to_string(c.periodUs) + " us: " + StrError(err));
  if ((err = lib.snd_pcm_hw_params(pcm, hw.p)) < 0)
    return fail(err, err == -EINVAL, "cannot set the hardware parameters: " + StrError(err));
  lib.snd_pcm_hw_params_get_buffer_size(hw.p, &r.bufferFrames);
  dir = 0;
  lib.snd_pcm_hw_params_get_period_size(hw.p, &r.periodFrames, &dir);
  if (r.periodFrames == 0) r.periodFrames = std::max<snd_pcm_uframes_t>(1, r.bufferFrames / 4);
  SwParams sw;
  if (sw.p && lib.snd_pcm_sw_params_current(pcm, sw.p) >= 0) {
    // start when the buffer is full (a short stream is started by the drain); wake when a period is free
    lib.snd_pcm_sw_params_set_start_threshold(pcm, sw.p, r.bufferFrames);
    lib.snd_pcm_sw_params_set_avail_min(pcm, sw.p, r.periodFrames);
    if ((err = lib.snd_pcm_sw_params(pcm, sw.p)) < 0)
      return fail(err, false, "cannot set the software parameters: " + StrError(err));
  }
  return r;
}

OpenResult OpenPcmInner(const Config &c, bool install, snd_pcm_t **out);

// Open (and configure) a PCM. libasound's own messages meanwhile are logged at debug level only; the first of them
// (the root cause) is added to the message of a failed open.
OpenResult OpenPcm(const Config &c, bool install, snd_pcm_t **out) {
  CaptureLibraryLog capture;
  OpenResult r = OpenPcmInner(c, install, out);
  if (r.err < 0 && !capture.said.empty()) r.message += " (libasound: " + capture.said.front() + ")";
  return r;
}

OpenResult OpenPcmInner(const Config &c, bool install, snd_pcm_t **out) {
  OpenResult r;
  *out = nullptr;
  {
    int inj = TakeFault(faults.openErrno, faults.openCount);
    if (inj != 0) {
      r.err = -inj;
      r.message = "cannot open \"" + c.device + "\": " + StrError(inj) + " (injected)";
      return r;
    }
  }
  snd_pcm_t *pcm = nullptr;
  int err = lib.snd_pcm_open(&pcm, c.device.c_str(), PCM_STREAM_PLAYBACK, PCM_NONBLOCK);
  if (err < 0) {
    r.err = err;
    r.message = "cannot open \"" + c.device + "\": " + StrError(err);
    return r;
  }
  r = Configure(pcm, c, install);
  if (r.err < 0 || !install) {
    lib.snd_pcm_close(pcm);
    if (r.err < 0) r.message = "\"" + c.device + "\": " + r.message;
    return r;
  }
  *out = pcm;
  return r;
}

// ------------------------------------------------------------------ the stream and its writer thread

struct Event {
  std::string type;  // open, state, room, drained, closed, log, xrun
  int code = 0;
  std::string text;
  double a = 0, b = 0;
  std::string msg;
};

class Stream : public Napi::ObjectWrap<Stream> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Stream",
                       {
                           InstanceMethod<&Stream::Open>("open"),
                           InstanceMethod<&Stream::Write>("write"),
                           InstanceMethod<&Stream::Writable>("writable"),
                           InstanceMethod<&Stream::EndFill>("endFill"),
                           InstanceMethod<&Stream::Delay>("delay"),
                           InstanceMethod<&Stream::Flush>("flush"),
                           InstanceMethod<&Stream::Drain>("drain"),
                           InstanceMethod<&Stream::Close>("close"),
                           InstanceMethod<&Stream::Info>("info"),
                           InstanceMethod<&Stream::Join>("join"),
                           InstanceMethod<&Stream::Realtime>("realtime"),
                       });
  }

  Stream(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Stream>(info) {
    Napi::Env env = info.Env();
    if (!LoadLib()) throw Napi::Error::New(env, "libasound.so.2 is not loaded: " + loadError);
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
      throw Napi::TypeError::New(env, "new Stream(options, callback)");
    Napi::Object o = info[0].As<Napi::Object>();
    cfg_.device = o.Get("device").As<Napi::String>().Utf8Value();
    cfg_.format = o.Get("format").As<Napi::Number>().Int32Value();
    cfg_.rate = o.Get("rate").As<Napi::Number>().Uint32Value();
    cfg_.channels = o.Get("channels").As<Napi::Number>().Uint32Value();
    cfg_.bufferUs = o.Get("bufferUs").As<Napi::Number>().Uint32Value();
    cfg_.periodUs = o.Get("periodUs").As<Napi::Number>().Uint32Value();
    cfg_.noResample = !o.Get("allowResample").ToBoolean().Value();
    fb_ = o.Get("frameBytes").As<Napi::Number>().Uint32Value();
    size_t queueFrames = o.Get("queueFrames").As<Napi::Number>().Uint32Value();
    if (fb_ == 0 || queueFrames == 0 || cfg_.rate == 0) throw Napi::RangeError::New(env, "bad stream options");
    ring_.resize(queueFrames * fb_);
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "speakerd-alsa", 0, 1);
    tsfnLive_ = true;
    rtRequested_ = o.Get("realtime").ToBoolean().Value();
    thread_ = std::thread([this] {
      SetRealtime();
      Run();
    });
    // the writer says how its scheduling went before it does anything else (two system calls: microseconds)
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return rtDone_; });
  }

  ~Stream() override { Stop(); }

 private:
  // ---------------------------------------------------------------- JS side (event loop thread)

  Napi::Value Open(const Napi::CallbackInfo &info) {
    std::lock_guard<std::mutex> g(mu_);
    if (!quit_) {
      wantOpen_ = true;
      openPending_ = true;
      nextTry_ = std::chrono::steady_clock::now();
      cv_.notify_all();
    }
    return info.Env().Undefined();
  }

  Napi::Value Write(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "write(Uint8Array)");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    const uint8_t *src = static_cast<const uint8_t *>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    size_t frames = ta.ByteLength() / fb_;
    std::lock_guard<std::mutex> g(mu_);
    if (quit_ || !wantOpen_) return Napi::Number::New(env, 0);
    size_t cap = ring_.size();
    size_t room = (cap - rsize_) / fb_;
    size_t n = std::min(frames, room);
    size_t bytes = n * fb_;
    size_t tail = (rhead_ + rsize_) % cap;
    size_t first = std::min(bytes, cap - tail);
    if (first) std::memcpy(ring_.data() + tail, src, first);
    if (bytes > first) std::memcpy(ring_.data(), src + first, bytes - first);
    rsize_ += bytes;
    if (n < frames) needRoom_ = true;
    if (n > 0) cv_.notify_all();
    return Napi::Number::New(env, static_cast<double>(n));
  }

  // writable(): the room in the queue, in frames. A query: it changes nothing (endFill arms the "room" event).
  Napi::Value Writable(const Napi::CallbackInfo &info) {
    std::lock_guard<std::mutex> g(mu_);
    if (quit_ || !wantOpen_) return Napi::Number::New(info.Env(), 0);
    size_t room = (ring_.size() - rsize_) / fb_;
    return Napi::Number::New(info.Env(), static_cast<double>(room));
  }

  // endFill(): the host has written what it will write for now. With the queue (nearly) full, the writer posts a
  // "room" event once it has taken enough out of it (a short write() arms it too).
  Napi::Value EndFill(const Napi::CallbackInfo &info) {
    std::lock_guard<std::mutex> g(mu_);
    if (!quit_ && wantOpen_ && (ring_.size() - rsize_) / fb_ < LowWater()) needRoom_ = true;
    return info.Env().Undefined();
  }

  Napi::Value Delay(const Napi::CallbackInfo &info) {
    std::lock_guard<std::mutex> g(mu_);
    return Napi::Number::New(info.Env(), static_cast<double>(QueuedLocked() + DeviceDelayLocked()));
  }

  // Drop everything not yet audible; returns how many frames that was. The writer drops the device.
  Napi::Value Flush(const Napi::CallbackInfo &info) {
    std::lock_guard<std::mutex> g(mu_);
    size_t dropped = QueuedLocked() + DeviceDelayLocked();
    rhead_ = rsize_ = 0;
    dropGen_++;
    delayFrames_ = 0;
    running_ = false;
    cv_.notify_all();
    return Napi::Number::New(info.Env(), static_cast<double>(dropped));
  }

  // drain(close): play out what is queued, then (when close) release the device. Answered by a "drained" event.
  Napi::Value Drain(const Napi::CallbackInfo &info) {
    std::lock_guard<std::mutex> g(mu_);
    wantDrain_ = true;
    drainClose_ = info.Length() > 0 && info[0].ToBoolean().Value();
    cv_.notify_all();
    return info.Env().Undefined();
  }

  // close(drain): stop the writer (after playing out what is queued when drain). Answered by a "closed" event.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    std::lock_guard<std::mutex> g(mu_);
    bool drain = info.Length() > 0 && info[0].ToBoolean().Value();
    quit_ = true;
    if (drain) {
      wantDrain_ = true;
      drainClose_ = true;
    } else {
      abort_ = true;
    }
    cv_.notify_all();
    return info.Env().Undefined();
  }

  // realtime() -> {requested, ok, errno, code, message, timerSlack}: how the writer's real-time scheduling went
  Napi::Value Realtime(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::lock_guard<std::mutex> g(mu_);
    Napi::Object o = Napi::Object::New(env);
    o.Set("requested", rtRequested_);
    o.Set("ok", rtRequested_ && rtErr_ == 0);
    o.Set("errno", rtErr_);
    o.Set("code", rtErr_ == 0 ? "" : rtErr_ == EPERM ? "EPERM" : rtErr_ == EINVAL ? "EINVAL" : rtErr_ == ESRCH ? "ESRCH" : "E" + std::to_string(rtErr_));
    o.Set("message", rtErr_ ? std::strerror(rtErr_) : "");
    o.Set("timerSlack", rtRequested_ && slackErr_ == 0);
    return o;
  }

  Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::lock_guard<std::mutex> g(mu_);
    Napi::Object o = Napi::Object::New(env);
    o.Set("phase", phase_ == P_OPEN ? "open" : phase_ == P_LOST ? "lost" : "closed");
    o.Set("bufferFrames", static_cast<double>(bufferFrames_));
    o.Set("periodFrames", static_cast<double>(periodFrames_));
    o.Set("queuedFrames", static_cast<double>(QueuedLocked()));
    o.Set("capacityFrames", static_cast<double>(ring_.size() / fb_));
    o.Set("deviceDelayFrames", static_cast<double>(DeviceDelayLocked()));
    o.Set("framesWritten", static_cast<double>(framesWritten_));
    o.Set("xruns", static_cast<double>(xruns_));
    return o;
  }

  // ---------------------------------------------------------------- shared helpers (mu_ held)

  size_t LowWater() const { return std::max<size_t>(1, std::min(periodFrames_ ? periodFrames_ : 256, ring_.size() / fb_ / 2)); }

  size_t QueuedLocked() const {
    size_t q = rsize_ / fb_;
    if (igen_ == dropGen_ && ilen_ > ioff_) q += (ilen_ - ioff_) / fb_;
    return q;
  }

  // The device's delay as last sampled by the writer, less what has played since when it is running.
  size_t DeviceDelayLocked() const {
    if (delayFrames_ <= 0) return 0;
    double d = static_cast<double>(delayFrames_);
    if (running_) {
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - delayAt_).count();
      d -= ms * cfg_.rate / 1000.0;
    }
    return d > 0 ? static_cast<size_t>(d) : 0;
  }

  // ---------------------------------------------------------------- writer thread

  void Post(Event *e) {
    if (!tsfnLive_) {
      delete e;
      return;
    }
    auto cb = [](Napi::Env env, Napi::Function fn, Event *ev) {
      if (env != nullptr && fn != nullptr) {
        try {
          fn.Call({Napi::String::New(env, ev->type), Napi::Number::New(env, ev->code), Napi::String::New(env, ev->text),
                   Napi::Number::New(env, ev->a), Napi::Number::New(env, ev->b), Napi::String::New(env, ev->msg)});
        } catch (...) {
        }
      }
      delete ev;
    };
    if (tsfn_.NonBlockingCall(e, cb) != napi_ok) delete e;
  }
  void Post(const char *type, int code = 0, std::string text = "", double a = 0, double b = 0, std::string msg = "") {
    Post(new Event{type, code, std::move(text), a, b, std::move(msg)});
  }
  void Log(int level, std::string text) { Post("log", level, std::move(text)); }

  // Sample the device delay (writer thread, mu_ NOT held); store it under the lock.
  void SampleDelay(std::unique_lock<std::mutex> &lk) {
    snd_pcm_sframes_t d = 0;
    int st = lib.snd_pcm_state(pcm_);
    int err = lib.snd_pcm_delay(pcm_, &d);
    lk.lock();
    if (err >= 0) {
      delayFrames_ = d;
      delayAt_ = std::chrono::steady_clock::now();
      running_ = st == ST_RUNNING;
    }
  }

  void ClosePcm() {
    if (!pcm_) return;
    lib.snd_pcm_drop(pcm_);  // the file plugin writes out its buffer on drop, not on close
    lib.snd_pcm_close(pcm_);
    pcm_ = nullptr;
  }

  // The device failed: close it, report "lost", reopen with backoff (writer thread, mu_ held).
  void Lose(std::unique_lock<std::mutex> &lk, int err, const char *doing) {
    lk.unlock();
    ClosePcm();
    lk.lock();
    phase_ = P_LOST;
    delayFrames_ = 0;
    running_ = false;
    backoffMs_ = 250;
    nextTry_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoffMs_);
    std::string msg = "device \"" + cfg_.device + "\" failed while " + doing + ": " + StrError(err) + "; reopening";
    if (!reportedLost_) {
      reportedLost_ = true;
      Post("state", -std::abs(err), "lost", 0, 0, msg);
    } else {
      Log(LOG_DEBUG, msg);
    }
  }

  // Recover from a write error the way MPD does (writer thread, mu_ held on entry and exit).
  void Recover(std::unique_lock<std::mutex> &lk, int err) {
    if (err == -EPIPE) {
      xruns_++;
      lk.unlock();
      int r = lib.snd_pcm_prepare(pcm_);
      lk.lock();
      Post("xrun", 0, "underrun (xrun) on \"" + cfg_.device + "\": prepared and carrying on", xruns_);
      if (r < 0) Lose(lk, r, "recovering from an underrun");
      return;
    }
    if (err == -ESTRPIPE) {
      Post("state", 0, "recovering", 0, 0, "device \"" + cfg_.device + "\" is suspended; resuming");
      int r = -EAGAIN;
      for (int i = 0; i < 50 && !abort_; i++) {
        lk.unlock();
        r = lib.snd_pcm_resume(pcm_);
        lk.lock();
        if (r != -EAGAIN) break;
        cv_.wait_for(lk, std::chrono::milliseconds(100));
      }
      if (r < 0) {
        lk.unlock();
        r = lib.snd_pcm_prepare(pcm_);
        lk.lock();
      }
      if (r < 0) {
        Lose(lk, r, "resuming after a suspend");
        return;
      }
      if (!reportedLost_) Post("state", 0, "ok", 0, 0, "device \"" + cfg_.device + "\" resumed");
      return;
    }
    Lose(lk, err, "writing");
  }

  // Play out what the device holds (writer thread, mu_ held on entry and exit).
  void DrainDevice(std::unique_lock<std::mutex> &lk) {
    uint64_t gen = dropGen_;
    double bufferMs = bufferFrames_ * 1000.0 / cfg_.rate;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(bufferMs) + 2000);
    lk.unlock();
    snd_pcm_sframes_t d = 0;
    if (lib.snd_pcm_state(pcm_) == ST_PREPARED && lib.snd_pcm_delay(pcm_, &d) >= 0 && d > 0) lib.snd_pcm_start(pcm_);
    for (;;) {
      d = 0;
      int err = lib.snd_pcm_delay(pcm_, &d);
      int st = lib.snd_pcm_state(pcm_);
      if (err < 0 || d <= 0 || st != ST_RUNNING) break;
      lk.lock();
      delayFrames_ = d;
      delayAt_ = std::chrono::steady_clock::now();
      running_ = true;
      if (abort_ || dropGen_ != gen || std::chrono::steady_clock::now() > deadline) {
        lk.unlock();
        break;
      }
      double ms = std::min(50.0, std::max(1.0, d * 1000.0 / cfg_.rate));
      cv_.wait_for(lk, std::chrono::microseconds(static_cast<long>(ms * 1000)));
      lk.unlock();
    }
    lib.snd_pcm_drop(pcm_);  // also makes the file plugin write out its buffer
    lib.snd_pcm_prepare(pcm_);
    lk.lock();
    delayFrames_ = 0;
    running_ = false;
  }

  // On the writer thread itself, first thing: its name, and SCHED_FIFO (0 is the calling thread) and 1 ns timer
  // slack when asked.
  void SetRealtime() {
    pthread_setname_np(pthread_self(), "speakerd-alsa");
    int err = 0, slackErr = 0;
    if (rtRequested_) {
      if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) != 0) slackErr = errno;
      sched_param sp;
      std::memset(&sp, 0, sizeof sp);
      sp.sched_priority = 20;
      if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) != 0) err = errno;
    }
    std::lock_guard<std::mutex> g(mu_);
    rtErr_ = err;
    slackErr_ = slackErr;
    rtDone_ = true;
    cv_.notify_all();
  }

  void Run() {
    using clock = std::chrono::steady_clock;
    std::unique_lock<std::mutex> lk(mu_);
    uint64_t seenDrop = dropGen_;
    for (;;) {
      if (abort_) break;
      if (dropGen_ != seenDrop) {
        seenDrop = dropGen_;
        if (igen_ != dropGen_) ioff_ = ilen_ = 0;
        if (pcm_) {
          lk.unlock();
          lib.snd_pcm_drop(pcm_);
          lib.snd_pcm_prepare(pcm_);
          lk.lock();
          delayFrames_ = 0;
          running_ = false;
        }
        continue;
      }
      if (!pcm_) {
        if (wantDrain_) {
          // nothing to play out (closed, or the device is gone): what is queued is dropped
          wantDrain_ = false;
          if (rsize_ > 0 || ilen_ > ioff_) Log(LOG_WARN, "no device: dropped the queued audio");
          rhead_ = rsize_ = 0;
          ioff_ = ilen_ = 0;
          if (drainClose_) {
            wantOpen_ = false;
            phase_ = P_CLOSED;
          }
          Post("drained");
          if (quit_) break;
          continue;
        }
        if (quit_) break;
        if (!wantOpen_) {
          cv_.wait(lk);
          continue;
        }
        if (clock::now() < nextTry_) {
          cv_.wait_until(lk, nextTry_);
          continue;
        }
        Config c = cfg_;
        lk.unlock();
        snd_pcm_t *pcm = nullptr;
        OpenResult r = OpenPcm(c, true, &pcm);
        lk.lock();
        if (r.err == 0) {
          pcm_ = pcm;
          phase_ = P_OPEN;
          bufferFrames_ = r.bufferFrames;
          periodFrames_ = r.periodFrames;
          backoffMs_ = 0;
          attempts_ = 0;
          if (openPending_) {
            openPending_ = false;
            Post("open", 0, "", static_cast<double>(r.bufferFrames), static_cast<double>(r.periodFrames));
          }
          if (reportedLost_) {
            reportedLost_ = false;
            Post("state", 0, "ok", 0, 0, "device \"" + cfg_.device + "\" is back");
          }
          if (needRoom_) {
            needRoom_ = false;
            Post("room");
          }
          continue;
        }
        bool firstAttempt = openPending_;
        if (openPending_ && r.fatal) {
          // the device is there and refuses the format: retrying will not help
          openPending_ = false;
          wantOpen_ = false;
          phase_ = P_CLOSED;
          Post("open", r.err, r.message, 1, 0);
          continue;
        }
        phase_ = P_LOST;
        if (!reportedLost_) {
          reportedLost_ = true;
          Post("state", r.err, "lost", 0, 0, r.message + "; retrying");
        }
        if (openPending_) {
          openPending_ = false;
          Post("open", r.err, r.message, 0, 0);
        }
        backoffMs_ = backoffMs_ ? std::min(backoffMs_ * 2, 5000) : 250;
        attempts_++;
        // one line per attempt (the first is logged by the JS side, which hears the open's result)
        if (!firstAttempt)
          Log(LOG_INFO, r.message + "; retrying in " + std::to_string(backoffMs_) + " ms (attempt " +
                            std::to_string(attempts_) + ")");
        nextTry_ = clock::now() + std::chrono::milliseconds(backoffMs_);
        continue;
      }

      // ---- the device is open
      if (igen_ != dropGen_) ioff_ = ilen_ = 0;
      if (ioff_ >= ilen_ && rsize_ > 0) {
        size_t maxBytes = std::max<size_t>(bufferFrames_, 1024) * fb_;
        size_t take = std::min(rsize_, maxBytes);
        if (inflight_.size() < take) inflight_.resize(take);
        size_t first = std::min(take, ring_.size() - rhead_);
        std::memcpy(inflight_.data(), ring_.data() + rhead_, first);
        if (take > first) std::memcpy(inflight_.data() + first, ring_.data(), take - first);
        rhead_ = (rhead_ + take) % ring_.size();
        rsize_ -= take;
        if (rsize_ == 0) rhead_ = 0;
        ioff_ = 0;
        ilen_ = take;
        igen_ = dropGen_;
        if (needRoom_ && (ring_.size() - rsize_) / fb_ >= LowWater()) {
          needRoom_ = false;
          Post("room");
        }
      }
      if (ioff_ >= ilen_) {
        if (wantDrain_) {
          DrainDevice(lk);
          if (dropGen_ != seenDrop) continue;  // a flush came in meanwhile
          wantDrain_ = false;
          if (drainClose_) {
            lk.unlock();
            ClosePcm();
            lk.lock();
            phase_ = P_CLOSED;
            wantOpen_ = false;
          }
          Post("drained");
          if (quit_) break;
          continue;
        }
        lk.unlock();
        SampleDelay(lk);
        if (dropGen_ != seenDrop || abort_ || wantDrain_ || rsize_ > 0) continue;
        cv_.wait_for(lk, running_ ? std::chrono::milliseconds(std::max<long>(1, PeriodMs())) : std::chrono::milliseconds(1000));
        continue;
      }
      // test hook: the writer blocks as if stuck in a write
      if (int ms = TakeFault(faults.sleepMs, faults.sleepCount)) {
        lk.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        lk.lock();
        continue;
      }
      uint64_t gen = igen_;
      const uint8_t *p = inflight_.data() + ioff_;
      snd_pcm_uframes_t frames = (ilen_ - ioff_) / fb_;
      snd_pcm_uframes_t want = std::min<snd_pcm_uframes_t>(frames, periodFrames_ ? periodFrames_ : frames);
      lk.unlock();
      snd_pcm_sframes_t r;
      snd_pcm_sframes_t avail = lib.snd_pcm_avail_update(pcm_);
      if (avail < 0) {
        r = avail;
      } else if (static_cast<snd_pcm_uframes_t>(avail) < want &&
                 (avail == 0 || lib.snd_pcm_state(pcm_) == ST_RUNNING)) {
        // a stream that has not started yet takes what fits: filling the buffer is what starts it
        if (avail == 0 && lib.snd_pcm_state(pcm_) == ST_PREPARED) lib.snd_pcm_start(pcm_);
        // not enough room yet: sleep until about a period is free (flush and close wake us at once)
        double ms = (want - avail) * 1000.0 / cfg_.rate;
        ms = std::min(std::max(ms, 1.0), std::max(1.0, static_cast<double>(PeriodMs())));
        SampleDelay(lk);
        if (dropGen_ == seenDrop && !abort_) cv_.wait_for(lk, std::chrono::microseconds(static_cast<long>(ms * 1000)));
        continue;
      } else {
        snd_pcm_uframes_t n = std::min<snd_pcm_uframes_t>(frames, avail);
        int inj = TakeFault(faults.writeErrno, faults.writeCount);
        r = inj ? -inj : lib.snd_pcm_writei(pcm_, p, n);
      }
      if (r > 0) {
        SampleDelay(lk);
        framesWritten_ += r;
        if (gen == igen_ && igen_ == dropGen_) ioff_ += static_cast<size_t>(r) * fb_;
        continue;
      }
      lk.lock();
      if (r == 0 || r == -EAGAIN) {
        cv_.wait_for(lk, std::chrono::milliseconds(1));
        continue;
      }
      Recover(lk, static_cast<int>(r));
    }
    // leaving: release the device
    lk.unlock();
    ClosePcm();
    lk.lock();
    phase_ = P_CLOSED;
    wantOpen_ = false;
    Post("closed");
    tsfnLive_ = false;
    tsfn_.Release();
  }

  long PeriodMs() const { return static_cast<long>(periodFrames_ * 1000 / std::max(1u, cfg_.rate)); }

  void Stop() {
    {
      std::lock_guard<std::mutex> g(mu_);
      quit_ = true;
      abort_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id())
        thread_.detach();
      else
        thread_.join();
    }
  }

 public:
  // Called on the event loop thread once the "closed" event arrived: the thread is finishing; reap it.
  Napi::Value Join(const Napi::CallbackInfo &info) {
    if (thread_.joinable()) thread_.join();
    return info.Env().Undefined();
  }

 private:
  enum Phase { P_CLOSED, P_OPEN, P_LOST };
  Config cfg_;
  size_t fb_ = 4;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  bool tsfnLive_ = false;
  // real-time scheduling: asked for, and how it went (errno, 0 = ok), set by the writer under mu_
  bool rtRequested_ = false, rtDone_ = false;
  int rtErr_ = 0, slackErr_ = 0;
  // the bounded queue (JS -> writer)
  std::vector<uint8_t> ring_;
  size_t rhead_ = 0, rsize_ = 0;
  // the chunk being written (writer only, except the counters read under mu_)
  std::vector<uint8_t> inflight_;
  size_t ioff_ = 0, ilen_ = 0;
  uint64_t igen_ = 0, dropGen_ = 0;
  // requests
  bool wantOpen_ = false, openPending_ = false, wantDrain_ = false, drainClose_ = false, quit_ = false,
       abort_ = false, needRoom_ = false;
  // device
  snd_pcm_t *pcm_ = nullptr;
  Phase phase_ = P_CLOSED;
  bool reportedLost_ = false;
  int backoffMs_ = 0;
  int attempts_ = 0;
  std::chrono::steady_clock::time_point nextTry_;
  snd_pcm_uframes_t bufferFrames_ = 0, periodFrames_ = 0;
  long delayFrames_ = 0;
  std::chrono::steady_clock::time_point delayAt_;
  bool running_ = false;
  double framesWritten_ = 0;
  double xruns_ = 0;
};

// ------------------------------------------------------------------ hardware mixer

class Mixer : public Napi::ObjectWrap<Mixer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Mixer",
                       {InstanceMethod<&Mixer::SetVolume>("setVolume"), InstanceMethod<&Mixer::Close>("close")});
  }

  Mixer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Mixer>(info) {
    Napi::Env env = info.Env();
    if (!LoadLib()) throw Napi::Error::New(env, "libasound.so.2 is not loaded: " + loadError);
    std::string card = info[0].As<Napi::String>().Utf8Value();
    std::string control = info[1].As<Napi::String>().Utf8Value();
    unsigned index = info[2].As<Napi::Number>().Uint32Value();
    int err;
    auto fail = [&](const std::string &what, int e) {
      if (mixer_) lib.snd_mixer_close(mixer_);
      mixer_ = nullptr;
      Napi::Error x = Napi::Error::New(env, what + (e ? ": " + StrError(e) : ""));
      x.Set("errno", Napi::Number::New(env, e));
      throw x;
    };
    if ((err = lib.snd_mixer_open(&mixer_, 0)) < 0) fail("cannot open a mixer", err);
    if ((err = lib.snd_mixer_attach(mixer_, card.c_str())) < 0) fail("cannot attach the mixer to \"" + card + "\"", err);
    if ((err = lib.snd_mixer_selem_register(mixer_, nullptr, nullptr)) < 0) fail("cannot register the mixer", err);
    if ((err = lib.snd_mixer_load(mixer_)) < 0) fail("cannot load the mixer of \"" + card + "\"", err);
    snd_mixer_selem_id_t *sid = nullptr;
    lib.snd_mixer_selem_id_malloc(&sid);
    lib.snd_mixer_selem_id_set_name(sid, control.c_str());
    lib.snd_mixer_selem_id_set_index(sid, index);
    elem_ = lib.snd_mixer_find_selem(mixer_, sid);
    lib.snd_mixer_selem_id_free(sid);
    if (!elem_) fail("\"" + card + "\" has no mixer control \"" + control + "\"," + std::to_string(index), 0);
    if (!lib.snd_mixer_selem_has_playback_volume(elem_))
      fail("the mixer control \"" + control + "\" has no playback volume", 0);
    lib.snd_mixer_selem_get_playback_volume_range(elem_, &min_, &max_);
    hasDb_ = lib.snd_mixer_selem_get_playback_dB_range(elem_, &minDb_, &maxDb_) >= 0 && maxDb_ > minDb_;
  }

  ~Mixer() override {
    if (mixer_) lib.snd_mixer_close(mixer_);
  }

 private:
  // volume 0..100: amplitude (v/100)^3 like the host's software volume, through dB where the control has a dB
  // scale, else spread linearly over the raw range.
  Napi::Value SetVolume(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!mixer_) throw Napi::Error::New(env, "the mixer is closed");
    double v = std::min(100.0, std::max(0.0, info[0].As<Napi::Number>().DoubleValue()));
    int err;
    if (hasDb_ && maxDb_ - minDb_ > 2400) {
      double gain = std::pow(v / 100.0, 3.0);
      long db = gain <= 0 ? minDb_ : static_cast<long>(std::lround(2000.0 * std::log10(gain))) + maxDb_;
      db = std::max(minDb_, std::min(maxDb_, db));
      err = lib.snd_mixer_selem_set_playback_dB_all(elem_, db, 1);
    } else {
      long raw = min_ + std::lround((max_ - min_) * v / 100.0);
      err = lib.snd_mixer_selem_set_playback_volume_all(elem_, raw);
    }
    if (err < 0) throw Napi::Error::New(env, "cannot set the mixer volume: " + StrError(err));
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    if (mixer_) lib.snd_mixer_close(mixer_);
    mixer_ = nullptr;
    return info.Env().Undefined();
  }

  snd_mixer_t *mixer_ = nullptr;
  snd_mixer_elem_t *elem_ = nullptr;
  long min_ = 0, max_ = 0, minDb_ = 0, maxDb_ = 0;
  bool hasDb_ = false;
};

// ------------------------------------------------------------------ module functions

Napi::Value Load(const Napi::CallbackInfo &info) {
  if (LoadLib()) return info.Env().Undefined();
  return Napi::String::New(info.Env(), loadError);
}

void ReleaseLogTsfn() {
  std::lock_guard<std::mutex> g(logMu);
  if (haveLogTsfn) logTsfn.Release();
  haveLogTsfn = false;
}

Napi::Value SetLogHandler(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  ReleaseLogTsfn();
  if (info.Length() > 0 && info[0].IsFunction()) {
    std::lock_guard<std::mutex> g(logMu);
    logTsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "speakerd-alsa-log", 0, 1);
    logTsfn.Unref(env);  // log lines never keep the process alive
    haveLogTsfn = true;
  }
  return env.Undefined();
}

// The device and format a probe asks about, from {device, format, rate, channels, allowResample}.
static Config ProbeConfig(const Napi::Object &o) {
  Config c;
  c.device = o.Get("device").As<Napi::String>().Utf8Value();
  c.format = o.Get("format").As<Napi::Number>().Int32Value();
  c.rate = o.Get("rate").As<Napi::Number>().Uint32Value();
  c.channels = o.Get("channels").As<Napi::Number>().Uint32Value();
  c.noResample = !o.Get("allowResample").ToBoolean().Value();
  return c;
}

// probe({device, format, rate, channels, allowResample}): can the device play this format exactly? Opens the
// device non-blocking, refines the parameters without installing them, closes it.
Napi::Value Probe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!LoadLib()) throw Napi::Error::New(env, "libasound.so.2 is not loaded: " + loadError);
  Config c = ProbeConfig(info[0].As<Napi::Object>());
  snd_pcm_t *pcm = nullptr;
  OpenResult r = OpenPcm(c, false, &pcm);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", r.err == 0);
  out.Set("errno", -r.err);
  out.Set("fatal", r.fatal);
  out.Set("message", r.message);
  return out;
}

// probeAsync({device, format, rate, channels, allowResample}, callback): the same as probe, on a thread of its own
// (a PCM plugin's open may wait on a server or a Bluetooth link), never on the event loop or the libuv pool. The
// callback gets the result object. It does not keep the process alive (the caller bounds the wait with a timer).
// The thread may outlive the environment (the process exits meanwhile): an environment cleanup hook marks the job
// so that the thread then leaves the thread-safe function alone.
struct ProbeJob {
  std::mutex mu;
  bool envGone = false;
  Napi::ThreadSafeFunction tsfn;
};
struct ProbeDone {
  std::shared_ptr<ProbeJob> *holder;  // the cleanup hook's argument
  OpenResult result;
};

void ProbeEnvGone(void *arg) {
  auto *holder = static_cast<std::shared_ptr<ProbeJob> *>(arg);
  {
    std::lock_guard<std::mutex> g((*holder)->mu);
    (*holder)->envGone = true;
  }
  delete holder;
}

Napi::Value ProbeAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!LoadLib()) throw Napi::Error::New(env, "libasound.so.2 is not loaded: " + loadError);
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "probeAsync(options, callback)");
  Config c = ProbeConfig(info[0].As<Napi::Object>());
  auto job = std::make_shared<ProbeJob>();
  job->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "speakerd-alsa-probe", 0, 1);
  job->tsfn.Unref(env);
  // registered after the thread-safe function, so it runs before that one's own cleanup (reverse order)
  auto *holder = new std::shared_ptr<ProbeJob>(job);
  napi_add_env_cleanup_hook(env, ProbeEnvGone, holder);
  std::thread([c, job, holder]() {
    snd_pcm_t *pcm = nullptr;
    auto *done = new ProbeDone{holder, OpenPcm(c, false, &pcm)};
    auto cb = [](Napi::Env env, Napi::Function fn, ProbeDone *d) {
      if (env != nullptr && fn != nullptr) {
        auto job = *d->holder;
        {
          // the thread has released the function by the time it lets go of the lock
          std::lock_guard<std::mutex> g(job->mu);
        }
        napi_remove_env_cleanup_hook(env, ProbeEnvGone, d->holder);
        delete d->holder;
        try {
          Napi::Object out = Napi::Object::New(env);
          out.Set("ok", d->result.err == 0);
          out.Set("errno", -d->result.err);
          out.Set("fatal", d->result.fatal);
          out.Set("message", d->result.message);
          fn.Call({out});
        } catch (...) {
        }
      }
      delete d;
    };
    std::lock_guard<std::mutex> g(job->mu);
    if (job->envGone) {
      delete done;
      return;
    }
    if (job->tsfn.BlockingCall(done, cb) != napi_ok) delete done;
    job->tsfn.Release();
  }).detach();
  return env.Undefined();
}

// injectFault({write?: errno, writeCount?, open?: errno, openCount?, sleepMs?, sleepCount?}) -- FOR TESTS ONLY.
Napi::Value InjectFault(const Napi::CallbackInfo &info) {
  Napi::Object o = info[0].As<Napi::Object>();
  auto num = [&](const char *k, int def) {
    Napi::Value v = o.Get(k);
    return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : def;
  };
  std::lock_guard<std::mutex> g(faultMu);
  if (o.Has("write")) {
    faults.writeErrno = num("write", 0);
    faults.writeCount = num("writeCount", 1);
  }
  if (o.Has("open")) {
    faults.openErrno = num("open", 0);
    faults.openCount = num("openCount", 1);
  }
  if (o.Has("sleepMs")) {
    faults.sleepMs = num("sleepMs", 0);
    faults.sleepCount = num("sleepCount", 1);
  }
  return info.Env().Undefined();
}

Napi::Value ClearFaults(const Napi::CallbackInfo &info) {
  std::lock_guard<std::mutex> g(faultMu);
  faults = Faults();
  return info.Env().Undefined();
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("load", Napi::Function::New<Load>(env, "load"));
  exports.Set("setLogHandler", Napi::Function::New<SetLogHandler>(env, "setLogHandler"));
  exports.Set("probe", Napi::Function::New<Probe>(env, "probe"));
  exports.Set("probeAsync", Napi::Function::New<ProbeAsync>(env, "probeAsync"));
  exports.Set("injectFault", Napi::Function::New<InjectFault>(env, "injectFault"));
  exports.Set("clearFaults", Napi::Function::New<ClearFaults>(env, "clearFaults"));
  exports.Set("Stream", Stream::Init(env));
  exports.Set("Mixer", Mixer::Init(env));
  env.AddCleanupHook(ReleaseLogTsfn);
  return exports;
}

}  // namespace

NODE_API_MODULE(speakerd_alsa, InitModule)
