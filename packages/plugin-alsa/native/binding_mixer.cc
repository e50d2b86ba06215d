// Mixer: a hardware mixer control (mixer.h), as JavaScript sees it. new Mixer(...) opens the control on the event
// loop: the addon's one blocking call (see mixer.h and the README for how long it takes).

#include "alsa_lib.h"
#include "args.h"
#include "binding.h"
#include "mixer.h"

namespace speakerd_alsa {

namespace {

class Mixer : public Napi::ObjectWrap<Mixer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Mixer",
                       {InstanceMethod<&Mixer::SetVolume>("setVolume"), InstanceMethod<&Mixer::Close>("close")});
  }

  // new Mixer(card, control, index)
  Mixer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Mixer>(info) {
    ENTRY("new Mixer(card, control, index)");
    REQUIRE_ARGC(3, 3);
    REQUIRE_STRING(0, card);
    REQUIRE_STRING(1, control);
    REQUIRE_UINT32(2, index, 0, 0xffffffffu);
    REQUIRE_LIBRARY();
    std::string why;
    int err = 0;
    if (!control_.Open(card, control, index, &why, &err)) ThrowCoded(env, ErrorKind::Error, ERR_MIXER, why, err);
  }

 private:
  // setVolume(volume 0..100)
  Napi::Value SetVolume(const Napi::CallbackInfo &info) {
    ENTRY("setVolume(volume)");
    REQUIRE_ARGC(1, 1);
    REQUIRE_NUMBER(0, volume, 0, 100);
    REQUIRE_OPEN(control_.IsOpen(), "mixer");
    int err = control_.SetVolume(volume);
    if (err < 0) ThrowCoded(env, ErrorKind::Error, ERR_MIXER, "cannot set the mixer volume: " + StrError(err), -err);
    return env.Undefined();
  }

  // close(): a second close does nothing
  Napi::Value Close(const Napi::CallbackInfo &info) {
    ENTRY("close()");
    REQUIRE_ARGC(0, 0);
    control_.Close();
    return env.Undefined();
  }

  MixerControl control_;
};

}  // namespace

Napi::Function MixerClass(Napi::Env env) { return Mixer::Init(env); }

}  // namespace speakerd_alsa
