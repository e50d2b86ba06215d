// libasound, loaded with dlopen() at run time: a table of function pointers.
//
// The addon builds without libasound2-dev and a missing library is a clear error when the backend is chosen,
// not a failed install. The declarations below are written by hand from alsa-lib's stable ABI.
#pragma once

#include <string>

namespace speakerd_alsa {

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
#define SPEAKERD_ALSA_DECL(name, ret, args) ret(*name) args = nullptr;
  ALSA_FUNCS(SPEAKERD_ALSA_DECL)
#undef SPEAKERD_ALSA_DECL
};
extern Lib lib;

// dlopen libasound.so.2 once (thread-safe); false, with LoadError() saying why, when it cannot. The entry points
// call LoadLibWithLog (library_log.h), which also routes libasound's messages to the log.
bool LoadLib();
std::string LoadError();

// libasound's text for an errno (either sign), or strerror before the library is loaded.
std::string StrError(int err);

}  // namespace speakerd_alsa
