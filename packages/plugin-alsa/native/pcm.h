// Opening and configuring a PCM: the hardware parameters (exact rate, no resampling behind our back), the
// software parameters, and one message saying why an open failed.
#pragma once

#include <string>

#include "alsa_lib.h"

namespace speakerd_alsa {

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

// Open a PCM non-blocking (libasound must be loaded). With `install`, set the parameters and hand the PCM to
// *out; without, refine them only (can the device play this exactly?) and close it again. Blocks for as long as
// snd_pcm_open does: call it off the event loop (the writer thread, a probe thread).
OpenResult OpenPcm(const Config &c, bool install, snd_pcm_t **out);

}  // namespace speakerd_alsa
