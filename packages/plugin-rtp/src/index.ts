import { definePlugin, packageInfo } from '@speakerd/plugin-sdk';
import { RtpBackend } from './backend.js';
import { options } from './options.js';
import { section } from './section.js';
import { probeRtp } from './probe.js';

const pkg = packageInfo(import.meta.url);

export default definePlugin({
  manifest: {
    name: section.name,
    version: pkg.version,
    sdk: '^0.1.0',
    description: section.description,
  },
  options,
  backend: RtpBackend,
  /** The destination resolves and UDP sockets bind and connect to it (nothing is sent); the SDP file can be written. */
  probe: (opts, context) => probeRtp(opts, context),
});

export { options, RtpBackend };
export type { RtpOptions } from './options.js';
export { payloadFor, framesPerPacket, writeRtpHeader, type Payload } from './payload.js';
export { buildSdp, type SdpParams } from './sdp.js';
export { probeRtp, PROBE_TIMEOUT_MS } from './probe.js';
/** For `speakerd doctor`: whether the native sender addon is built and loads. */
export { loadNative, ADDON_PATH } from './native.js';
export { buildSap } from './sap.js';
export { rtcpIntervalMs } from './rtcp.js';
export {
  UdpTransport,
  udpTransport,
  classify,
  isMulticast,
  isBroadcast,
  type Transport,
  type TransportFactory,
  type Destination,
  type Delivery,
  type SendDone,
} from './transport.js';
