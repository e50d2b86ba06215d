/**
 * Channel order on the wire for more than 2 channels (the mapping tables are in the README, "Channel order").
 *
 * The host hands over frames in WAVE (WAVEFORMATEXTENSIBLE) order: 3 FL FR FC, 4 FL FR BL BR, 5 FL FR FC BL BR,
 * 6 FL FR FC LFE BL BR, 7 FL FR FC LFE BC SL SR, 8 FL FR FC LFE BL BR SL SR. RFC 3551 4.1's default order (3 l r c,
 * 4 l c r S, 5 Fl Fr Fc Sl Sr, 6 l lc c r rc S) has no LFE and is not 5.1; RFC 3190 7 names other orders in the
 * `channel-order` fmtp parameter (its "DV" convention). ffmpeg and VLC ignore the order (the samples come out as
 * sent). GStreamer's rtpL16depay/rtpL24depay read it through gstrtpchannels.c, whose lookup in 1.22 is inverted
 * (`if (g_ascii_strcasecmp (name, order))`: the first entry for the channel count whose name is NOT the one
 * announced, or the first entry when none is); later GStreamer (`!g_ascii_strcasecmp`) takes the named entry.
 */

/**
 * `wav`: the host's order, and the DV order announced where one has the host's positions in the host's order;
 * `gstreamer-1.22`: what GStreamer 1.22's inverted lookup plays in the host's order.
 */
export type ChannelOrderMode = 'wav' | 'gstreamer-1.22';

export interface WireOrder {
  /** The RFC 3190 `channel-order` value to announce (`a=fmtp:<pt> channel-order=...`), if any. */
  readonly channelOrder: string | undefined;
  /** Wire channel `i` carries host channel `map[i]`; undefined when the wire order is the host's. */
  readonly map: readonly number[] | undefined;
}

/** 7.1: L R C Wo, then the side pair (Ls1 Rs1), then the rear pair (Ls2 Rs2); the host has rear before side. */
const SIDE_BEFORE_REAR = [0, 1, 2, 3, 6, 7, 4, 5] as const;

const ORDERS: Record<ChannelOrderMode, Record<number, WireOrder>> = {
  wav: {
    // L R Ls Rs; GStreamer FL FR SL SR: quad, the surround pair as side
    4: { channelOrder: 'DV.LRLsRs', map: undefined },
    // Lmix Rmix T Wo Q1 Q2; GStreamer FL FR FC LFE SL SR: 5.1, the surround pair as side
    6: { channelOrder: 'DV.LmixRmixTWoQ1Q2', map: undefined },
  },
  'gstreamer-1.22': {
    4: { channelOrder: 'DV.LRLsRs', map: undefined },
    // 1.22 skips the named entry and takes its default FL FR FC SL SR (the host's order): no reordering
    5: { channelOrder: 'DV.LRLsRsC', map: undefined },
    // 1.22 skips DV.LRLsRsCS and takes DV.LmixRmixTWoQ1Q2 (FL FR FC LFE SL SR, the host's order): no reordering
    6: { channelOrder: 'DV.LRLsRsCS', map: undefined },
    // every 8-channel entry is FL FR FC LFE SL SR RL RR: sent side before rear, as the DV order says
    8: { channelOrder: 'DV.LRCWoLs1Rs1Ls2Rs2', map: SIDE_BEFORE_REAR },
  },
};

const NONE: WireOrder = { channelOrder: undefined, map: undefined };

/** What goes on the wire for `channels` channels of the host's layout in `mode`. */
export function wireOrder(channels: number, mode: ChannelOrderMode): WireOrder {
  return ORDERS[mode][channels] ?? NONE;
}

/**
 * Copy the whole frames of `src` into `dst` from byte `at`, wire channel `i` taken from host channel `map[i]`;
 * `sampleBytes` per sample (2 for L16, 3 for L24).
 */
export function reorderInto(
  dst: Uint8Array,
  at: number,
  src: Uint8Array,
  map: readonly number[],
  sampleBytes: number,
): void {
  const channels = map.length;
  const bpf = channels * sampleBytes;
  const frames = Math.floor(src.length / bpf);
  for (let f = 0; f < frames; f++) {
    const base = f * bpf;
    const out = at + base;
    for (let c = 0; c < channels; c++) {
      const from = base + map[c]! * sampleBytes;
      const to = out + c * sampleBytes;
      for (let b = 0; b < sampleBytes; b++) dst[to + b] = src[from + b]!;
    }
  }
}
