// probeAsync({device, format, rate, channels, allowResample}, callback): can the device play this format exactly?
// Opens the device non-blocking, refines the parameters without installing them, closes it, on a thread of its
// own (a PCM plugin's open may wait on a server or a Bluetooth link), never on the event loop or the libuv pool.
// The callback gets {ok, errno, fatal, message}. It does not keep the process alive (the caller bounds the wait
// with a timer). The thread may outlive the environment (the process or worker exits meanwhile): an environment
// cleanup hook marks the job so that the thread then leaves the thread-safe function alone.

#include <memory>
#include <mutex>
#include <system_error>

#include "alsa_lib.h"
#include "args.h"
#include "binding.h"
#include "threads.h"

namespace speakerd_alsa {

Config ProbeConfigFrom(const Napi::Object &o, const char *usage) {
  Config c;
  c.device = FieldString(o, "device", usage);
  c.format = static_cast<int>(FieldInteger(o, "format", 0, 63, usage));
  c.rate = static_cast<unsigned>(FieldInteger(o, "rate", 1, 10000000, usage));
  c.channels = static_cast<unsigned>(FieldInteger(o, "channels", 1, 1024, usage));
  c.noResample = !FieldOptionalBoolean(o, "allowResample", usage);
  return c;
}

Napi::Object ProbeResultObject(Napi::Env env, const OpenResult &r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", r.err == 0);
  out.Set("errno", -r.err);
  out.Set("fatal", r.fatal);
  out.Set("message", r.message);
  return out;
}

namespace {

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

void Deliver(Napi::Env env, Napi::Function fn, ProbeDone *d) {
  if (env != nullptr && fn != nullptr) {
    auto job = *d->holder;
    {
      // the thread has released the function by the time it lets go of the lock
      std::lock_guard<std::mutex> g(job->mu);
    }
    napi_remove_env_cleanup_hook(env, ProbeEnvGone, d->holder);
    delete d->holder;
    try {
      fn.Call({ProbeResultObject(env, d->result)});
    } catch (...) {
    }
  }
  delete d;
}

}  // namespace

Napi::Value ProbeAsync(const Napi::CallbackInfo &info) {
  ENTRY("probeAsync(options, callback)");
  REQUIRE_ARGC(2, 2);
  REQUIRE_OBJECT(0, o);
  REQUIRE_FUNCTION(1, callback);
  Config c = ProbeConfigFrom(o, USAGE);
  REQUIRE_LIBRARY();
  auto job = std::make_shared<ProbeJob>();
  job->tsfn = Napi::ThreadSafeFunction::New(env, callback, "speakerd-alsa-probe", 0, 1);
  job->tsfn.Unref(env);
  // registered after the thread-safe function, so it runs before that one's own cleanup (reverse order)
  auto *holder = new std::shared_ptr<ProbeJob>(job);
  napi_add_env_cleanup_hook(env, ProbeEnvGone, holder);
  try {
    StartThread([c, job, holder]() {
      snd_pcm_t *pcm = nullptr;
      auto *done = new ProbeDone{holder, OpenPcm(c, false, &pcm)};
      std::lock_guard<std::mutex> g(job->mu);
      if (job->envGone) {
        delete done;
        return;
      }
      if (job->tsfn.BlockingCall(done, Deliver) != napi_ok) delete done;
      job->tsfn.Release();
    }).detach();
  } catch (const std::system_error &e) {
    napi_remove_env_cleanup_hook(env, ProbeEnvGone, holder);
    delete holder;
    job->tsfn.Release();
    ThrowCoded(env, ErrorKind::Error, ERR_THREAD, std::string("cannot start the probe thread: ") + e.what(),
               e.code().value());
  }
  return env.Undefined();
}

}  // namespace speakerd_alsa
