import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { ErrorCodes, SpeakerdError, type PluginContext, type SpeakerdPlugin } from '@speakerd/plugin-sdk';
import type { ResolvedConfig } from './config.js';
import { makeDirs } from './decoders/server.js';
import { AUTO_CANDIDATES } from './plugins.js';
import { VERSION } from './version.js';

/** How long a candidate's probe may take before it counts as unable. */
const PROBE_TIMEOUT_MS = 3000;

/** What `auto` picked, and why the ones before it were passed over. */
export interface AutoChoice {
  readonly plugin: string;
  readonly skipped: readonly { plugin: string; why: string }[];
  /** For RTP: the SDP file a receiver opens. */
  readonly sdp?: string;
  /** One line for a person: the output, and for RTP how to listen. */
  readonly line: string;
}

/** Why `plugin` cannot play with `options` here now (its `unavailable()`, then its `probe()`), or undefined. */
export async function whyNot(
  plugin: SpeakerdPlugin,
  options: unknown,
  context: PluginContext,
): Promise<string | undefined> {
  const missing = plugin.unavailable?.();
  if (missing) return missing;
  if (!plugin.probe) return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      plugin.probe(options, context),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`no answer in ${PROBE_TIMEOUT_MS} ms`), PROBE_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Pick the output of a `backend: "auto"` configuration: ALSA when its device (alsa.device, "default" unless set)
 * opens; else RTP with its section (127.0.0.1:5004 unless set), writing an SDP file next to the decoder socket
 * unless rtp.sdp says where. Returns the configuration with that backend (and those options) in force.
 */
export async function chooseAuto(config: ResolvedConfig): Promise<{ config: ResolvedConfig; choice: AutoChoice }> {
  const skipped: { plugin: string; why: string }[] = [];
  for (const name of AUTO_CANDIDATES) {
    const loaded = config.plugins.get(name);
    if (!loaded) continue;
    let options = config.options.get(name);
    let sdp: string | undefined;
    if (name === 'rtp') {
      const o = options as { sdp?: string; destination: string; port: number };
      sdp = o.sdp === undefined ? resolvePath(dirname(config.host.socket), 'stream.sdp') : o.sdp;
      if (!isAbsolute(sdp)) sdp = resolvePath(config.dir, sdp);
      if (o.sdp === undefined) {
        makeDirs(dirname(sdp), 'set "rtp.sdp" in speakerrc to a file in a directory of your own');
        options = { ...o, sdp };
      }
    }
    const context: PluginContext = { configDir: config.dir, pluginName: name, hostVersion: VERSION };
    const why = await whyNot(loaded.plugin, options, context);
    if (why !== undefined) {
      skipped.push({ plugin: name, why });
      continue;
    }
    const passed = skipped.map((s) => `${s.plugin}: ${s.why}`).join('; ');
    let line: string;
    if (name === 'rtp') {
      const o = options as { destination: string; port: number };
      line =
        `output: rtp to ${o.destination}:${o.port}${passed ? ` (${passed})` : ''}; listen with: ` +
        `ffplay -nodisp -protocol_whitelist file,udp,rtp -i ${sdp} (or open ${sdp} in VLC)`;
    } else {
      line = `output: ${name}${name === 'alsa' ? `, device "${(options as { device: string }).device}"` : ''}`;
      if (passed) line += ` (${passed})`;
    }
    const options2 = new Map(config.options);
    options2.set(name, options);
    return {
      config: { ...config, backend: loaded, options: options2 },
      choice: { plugin: name, skipped, ...(sdp === undefined ? {} : { sdp }), line },
    };
  }
  throw new SpeakerdError(
    ErrorCodes.BACKEND_UNAVAILABLE,
    `backend "auto" found no output that can play: ${skipped.map((s) => `${s.plugin}: ${s.why}`).join('; ')}; ` +
      'set "backend" in speakerrc (alsa, command or rtp)',
  );
}
