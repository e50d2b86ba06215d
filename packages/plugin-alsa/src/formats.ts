import type { Encoding } from '@speakerd/plugin-sdk';

/** speakerd's encodings as ALSA `snd_pcm_format_t` values (24-bit is packed: S24_3LE/S24_3BE). */
export const ALSA_FORMATS: Readonly<Record<Encoding, { code: number; name: string }>> = {
  s8: { code: 0, name: 'S8' },
  u8: { code: 1, name: 'U8' },
  s16le: { code: 2, name: 'S16_LE' },
  s16be: { code: 3, name: 'S16_BE' },
  s32le: { code: 10, name: 'S32_LE' },
  s32be: { code: 11, name: 'S32_BE' },
  f32le: { code: 14, name: 'FLOAT_LE' },
  f32be: { code: 15, name: 'FLOAT_BE' },
  s24le: { code: 32, name: 'S24_3LE' },
  s24be: { code: 33, name: 'S24_3BE' },
};
