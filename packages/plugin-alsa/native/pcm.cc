// Opening and configuring a PCM (see pcm.h). The test build can make the next opens fail (test_hooks.h).

#include "pcm.h"

#include <algorithm>
#include <cerrno>

#include "library_log.h"
#include "test_hooks.h"

namespace speakerd_alsa {

namespace {

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

OpenResult OpenPcmInner(const Config &c, bool install, snd_pcm_t **out) {
  OpenResult r;
  *out = nullptr;
  if (int inj = TakeOpenFault()) {
    r.err = -inj;
    r.message = "cannot open \"" + c.device + "\": " + StrError(inj) + InjectedSuffix();
    return r;
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

}  // namespace

// Open (and configure) a PCM. libasound's own messages meanwhile are logged at debug level only; the first of them
// (the root cause) is added to the message of a failed open.
OpenResult OpenPcm(const Config &c, bool install, snd_pcm_t **out) {
  CaptureLibraryLog capture;
  OpenResult r = OpenPcmInner(c, install, out);
  if (r.err < 0 && !capture.said.empty()) r.message += " (libasound: " + capture.said.front() + ")";
  return r;
}

}  // namespace speakerd_alsa
