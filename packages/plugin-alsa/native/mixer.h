// A hardware mixer control (simple element playback volume), without JavaScript.
//
// Open() is the addon's one blocking call on the event loop (snd_mixer_open/attach/load: a few ioctls on the card's
// control device; measured on this machine without a card, "default": see the README). The backend's setVolume
// is synchronous, so the control is opened where it is first needed.
#pragma once

#include <string>

#include "alsa_lib.h"

namespace speakerd_alsa {

class MixerControl {
 public:
  MixerControl() = default;
  ~MixerControl() { Close(); }
  MixerControl(const MixerControl &) = delete;
  MixerControl &operator=(const MixerControl &) = delete;

  // Open `control`,`index` on `card` (libasound must be loaded). On failure: false, with *why and *err (errno,
  // 0 when libasound gave none) set, and nothing left open.
  bool Open(const std::string &card, const std::string &control, unsigned index, std::string *why, int *err);
  // volume 0..100: amplitude (v/100)^3 like the host's software volume, through dB where the control has a dB
  // scale, else spread linearly over the raw range. 0 or a negative errno.
  int SetVolume(double volume);
  void Close();
  bool IsOpen() const { return mixer_ != nullptr; }

 private:
  snd_mixer_t *mixer_ = nullptr;
  snd_mixer_elem_t *elem_ = nullptr;
  long min_ = 0, max_ = 0, minDb_ = 0, maxDb_ = 0;
  bool hasDb_ = false;
};

}  // namespace speakerd_alsa
