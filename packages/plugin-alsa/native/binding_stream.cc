// Stream: one PCM and its writer thread (writer.h), as JavaScript sees it.
//
// Events reach JavaScript through a ThreadSafeFunction. An environment cleanup hook, registered after that
// function (hooks run in reverse order, so it runs first), stops the writer and closes the PCM when the
// environment goes away with the stream still open (a worker thread that exits, terminate()): the writer never
// posts to a function Node has already torn down.

#include <system_error>

#include "alsa_lib.h"
#include "args.h"
#include "binding.h"
#include "writer.h"

namespace speakerd_alsa {

namespace {

constexpr int64_t MAX_QUEUE_BYTES = int64_t{256} << 20;

class Stream : public Napi::ObjectWrap<Stream>, public EventSink {
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

  // new Stream({device, format, rate, channels, bufferUs, periodUs, queueFrames, frameBytes, allowResample?,
  // realtime?}, onEvent)
  Stream(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Stream>(info), env_(info.Env()) {
    ENTRY("new Stream(options, onEvent)");
    REQUIRE_ARGC(2, 2);
    REQUIRE_OBJECT(0, o);
    REQUIRE_FUNCTION(1, onEvent);
    Config c;
    c.device = FieldString(o, "device", USAGE);
    c.format = static_cast<int>(FieldInteger(o, "format", 0, 63, USAGE));
    c.rate = static_cast<unsigned>(FieldInteger(o, "rate", 1, 10000000, USAGE));
    c.channels = static_cast<unsigned>(FieldInteger(o, "channels", 1, 1024, USAGE));
    c.bufferUs = static_cast<unsigned>(FieldInteger(o, "bufferUs", 1, 60000000, USAGE));
    c.periodUs = static_cast<unsigned>(FieldInteger(o, "periodUs", 1, 60000000, USAGE));
    REQUIRE_FIELD_INTEGER(o, "frameBytes", frameBytes, 1, 4096);
    REQUIRE_FIELD_INTEGER(o, "queueFrames", queueFrames, 1, MAX_QUEUE_BYTES);
    OPTIONAL_FIELD_BOOLEAN(o, "allowResample", allowResample);
    OPTIONAL_FIELD_BOOLEAN(o, "realtime", realtime);
    c.noResample = !allowResample;
    if (frameBytes * queueFrames > MAX_QUEUE_BYTES)
      ThrowCoded(env, ErrorKind::Range, ERR_RANGE,
                 std::string(USAGE) + ": options.queueFrames x options.frameBytes must be at most 256 MiB");
    REQUIRE_LIBRARY();
    fb_ = static_cast<size_t>(frameBytes);
    try {
      writer_.reset(new Writer(c, fb_, static_cast<size_t>(queueFrames), realtime, this));
    } catch (const std::bad_alloc &) {
      ThrowCoded(env, ErrorKind::Range, ERR_RANGE, std::string(USAGE) + ": cannot allocate the queue");
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, onEvent, "speakerd-alsa", 0, 1);
    napi_add_env_cleanup_hook(env, EnvCleanup, this);
    hooked_ = true;
    try {
      writer_->Start();
    } catch (const std::system_error &e) {
      napi_remove_env_cleanup_hook(env, EnvCleanup, this);
      hooked_ = false;
      tsfn_.Release();  // else it would keep the event loop alive for ever
      writer_.reset();
      ThrowCoded(env, ErrorKind::Error, ERR_THREAD, std::string("cannot start the writer thread: ") + e.what(),
                 e.code().value());
    }
  }

  ~Stream() override {
    if (hooked_) napi_remove_env_cleanup_hook(env_, EnvCleanup, this);
    writer_.reset();  // stops and joins the writer if it still runs
  }

  // ---- EventSink (writer thread, its lock held)
  void Post(Event *e) override {
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
  void Release() override { tsfn_.Release(); }

 private:
  static void EnvCleanup(void *arg) {
    auto *s = static_cast<Stream *>(arg);
    s->hooked_ = false;
    if (s->writer_) s->writer_->Shutdown();
  }

  Napi::Value Open(const Napi::CallbackInfo &info) {
    ENTRY("open()");
    REQUIRE_ARGC(0, 0);
    REQUIRE_OPEN(!writer_->Closing(), "stream");
    writer_->Open();
    return env.Undefined();
  }

  // write(data) -> frames taken (data holds whole frames)
  Napi::Value Write(const Napi::CallbackInfo &info) {
    ENTRY("write(data)");
    REQUIRE_ARGC(1, 1);
    REQUIRE_TYPED_ARRAY(0, data);
    REQUIRE_OPEN(!writer_->Closing(), "stream");
    size_t bytes = data.ByteLength();
    if (bytes % fb_ != 0)
      ThrowCoded(env, ErrorKind::Range, ERR_RANGE,
                 std::string(USAGE) + ": " + std::to_string(bytes) + " bytes is not a whole number of " +
                     std::to_string(fb_) + "-byte frames");
    const uint8_t *src = static_cast<const uint8_t *>(data.ArrayBuffer().Data()) + data.ByteOffset();
    return Napi::Number::New(env, static_cast<double>(writer_->Write(src, bytes / fb_)));
  }

  // writable(): the room in the queue, in frames. A query: it changes nothing (endFill arms the "room" event).
  Napi::Value Writable(const Napi::CallbackInfo &info) {
    ENTRY("writable()");
    REQUIRE_ARGC(0, 0);
    REQUIRE_OPEN(!writer_->Closing(), "stream");
    return Napi::Number::New(env, static_cast<double>(writer_->Writable()));
  }

  Napi::Value EndFill(const Napi::CallbackInfo &info) {
    ENTRY("endFill()");
    REQUIRE_ARGC(0, 0);
    REQUIRE_OPEN(!writer_->Closing(), "stream");
    writer_->EndFill();
    return env.Undefined();
  }

  Napi::Value Delay(const Napi::CallbackInfo &info) {
    ENTRY("delay()");
    REQUIRE_ARGC(0, 0);
    REQUIRE_OPEN(!writer_->Closing(), "stream");
    return Napi::Number::New(env, static_cast<double>(writer_->Delay()));
  }

  Napi::Value Flush(const Napi::CallbackInfo &info) {
    ENTRY("flush()");
    REQUIRE_ARGC(0, 0);
    REQUIRE_OPEN(!writer_->Closing(), "stream");
    return Napi::Number::New(env, static_cast<double>(writer_->Flush()));
  }

  // drain(close): play out what is queued, then (when close) release the device. Answered by a "drained" event.
  Napi::Value Drain(const Napi::CallbackInfo &info) {
    ENTRY("drain(close)");
    REQUIRE_ARGC(1, 1);
    REQUIRE_BOOLEAN(0, close);
    REQUIRE_OPEN(!writer_->Closing(), "stream");
    writer_->Drain(close);
    return env.Undefined();
  }

  // close(drain): stop the writer (after playing out what is queued when drain). Answered by a "closed" event;
  // a second close() does nothing.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    ENTRY("close(drain)");
    REQUIRE_ARGC(1, 1);
    REQUIRE_BOOLEAN(0, drain);
    if (!writer_->Closing()) writer_->Close(drain);
    return env.Undefined();
  }

  // realtime() -> {requested, ok, errno, code, message, timerSlack}: how the writer's real-time scheduling went
  Napi::Value Realtime(const Napi::CallbackInfo &info) {
    ENTRY("realtime()");
    REQUIRE_ARGC(0, 0);
    RealtimeInfo r = writer_->Realtime();
    int e = r.err;
    Napi::Object o = Napi::Object::New(env);
    o.Set("requested", r.requested);
    o.Set("ok", r.requested && e == 0);
    o.Set("errno", e);
    o.Set("code", e == 0 ? "" : e == EPERM ? "EPERM" : e == EINVAL ? "EINVAL" : e == ESRCH ? "ESRCH" : "E" + std::to_string(e));
    o.Set("message", e ? std::strerror(e) : "");
    o.Set("timerSlack", r.timerSlack);
    return o;
  }

  Napi::Value Info(const Napi::CallbackInfo &info) {
    ENTRY("info()");
    REQUIRE_ARGC(0, 0);
    StreamInfo s = writer_->Info();
    Napi::Object o = Napi::Object::New(env);
    o.Set("phase", s.phase);
    o.Set("bufferFrames", s.bufferFrames);
    o.Set("periodFrames", s.periodFrames);
    o.Set("queuedFrames", s.queuedFrames);
    o.Set("capacityFrames", s.capacityFrames);
    o.Set("deviceDelayFrames", s.deviceDelayFrames);
    o.Set("framesWritten", s.framesWritten);
    o.Set("xruns", s.xruns);
    return o;
  }

  // Called on the event loop once the "closed" event arrived: the thread is finishing; reap it.
  Napi::Value Join(const Napi::CallbackInfo &info) {
    ENTRY("join()");
    REQUIRE_ARGC(0, 0);
    writer_->Join();
    return env.Undefined();
  }

  napi_env env_;
  size_t fb_ = 4;
  std::unique_ptr<Writer> writer_;
  Napi::ThreadSafeFunction tsfn_;
  bool hooked_ = false;
};

}  // namespace

Napi::Function StreamClass(Napi::Env env) { return Stream::Init(env); }

}  // namespace speakerd_alsa
