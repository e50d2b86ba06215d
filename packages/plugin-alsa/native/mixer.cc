// The hardware mixer (see mixer.h).

#include "mixer.h"

#include <algorithm>
#include <cmath>

namespace speakerd_alsa {

bool MixerControl::Open(const std::string &card, const std::string &control, unsigned index, std::string *why,
                        int *errOut) {
  Close();
  int err;
  auto fail = [&](const std::string &what, int e) {
    Close();
    *why = what + (e ? ": " + StrError(e) : "");
    *errOut = e < 0 ? -e : e;
    return false;
  };
  if ((err = lib.snd_mixer_open(&mixer_, 0)) < 0) return fail("cannot open a mixer", err);
  if ((err = lib.snd_mixer_attach(mixer_, card.c_str())) < 0)
    return fail("cannot attach the mixer to \"" + card + "\"", err);
  if ((err = lib.snd_mixer_selem_register(mixer_, nullptr, nullptr)) < 0) return fail("cannot register the mixer", err);
  if ((err = lib.snd_mixer_load(mixer_)) < 0) return fail("cannot load the mixer of \"" + card + "\"", err);
  snd_mixer_selem_id_t *sid = nullptr;
  if (lib.snd_mixer_selem_id_malloc(&sid) < 0 || !sid) return fail("out of memory", 0);
  lib.snd_mixer_selem_id_set_name(sid, control.c_str());
  lib.snd_mixer_selem_id_set_index(sid, index);
  elem_ = lib.snd_mixer_find_selem(mixer_, sid);
  lib.snd_mixer_selem_id_free(sid);
  if (!elem_) return fail("\"" + card + "\" has no mixer control \"" + control + "\"," + std::to_string(index), 0);
  if (!lib.snd_mixer_selem_has_playback_volume(elem_))
    return fail("the mixer control \"" + control + "\" has no playback volume", 0);
  lib.snd_mixer_selem_get_playback_volume_range(elem_, &min_, &max_);
  hasDb_ = lib.snd_mixer_selem_get_playback_dB_range(elem_, &minDb_, &maxDb_) >= 0 && maxDb_ > minDb_;
  return true;
}

int MixerControl::SetVolume(double volume) {
  double v = std::min(100.0, std::max(0.0, volume));
  if (hasDb_ && maxDb_ - minDb_ > 2400) {
    double gain = std::pow(v / 100.0, 3.0);
    long db = gain <= 0 ? minDb_ : static_cast<long>(std::lround(2000.0 * std::log10(gain))) + maxDb_;
    db = std::max(minDb_, std::min(maxDb_, db));
    return lib.snd_mixer_selem_set_playback_dB_all(elem_, db, 1);
  }
  long raw = min_ + std::lround((max_ - min_) * v / 100.0);
  return lib.snd_mixer_selem_set_playback_volume_all(elem_, raw);
}

void MixerControl::Close() {
  if (mixer_) lib.snd_mixer_close(mixer_);
  mixer_ = nullptr;
  elem_ = nullptr;
}

}  // namespace speakerd_alsa
