import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { isIP, isIPv6 } from 'node:net';
import { dirname, resolve as resolvePath } from 'node:path';
import type { PluginContext } from '@speakerd/plugin-sdk';
import type { RtpOptions } from './options.js';
import { UdpTransport, classify, isMulticast, resolveAddress, type Delivery } from './transport.js';

/** How long a probe may take (the SDK asks a probe to settle within about two seconds). */
export const PROBE_TIMEOUT_MS = 2000;

function code(err: unknown): string {
  const c = (err as { code?: unknown } | null)?.code;
  if (typeof c === 'string') return c;
  return err instanceof Error ? err.message : String(err);
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`${what} took longer than ${ms / 1000} s`), { code: 'ETIMEDOUT' })),
      ms,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Whether the rtp backend can send as configured, now: the destination resolves, and UDP sockets can be bound and
 * connected to it (RTP on `port`, RTCP on `port + 1`, set up for multicast or broadcast as the mode says), and the
 * SDP file's directory can be written. No datagram is sent. Resolves undefined when all is well, else one line:
 * what failed and which key to change.
 */
export async function probeRtp(
  opts: RtpOptions,
  context: Pick<PluginContext, 'configDir'>,
  timeoutMs: number = PROBE_TIMEOUT_MS,
): Promise<string | undefined> {
  if (opts.sdp !== undefined) {
    const file = resolvePath(context.configDir, opts.sdp);
    const dir = dirname(file);
    try {
      const s = await stat(dir);
      if (!s.isDirectory())
        return `rtp.sdp: ${dir} is not a directory; set "rtp.sdp" to a file in a directory that exists`;
      await access(dir, constants.W_OK);
    } catch (err) {
      return `rtp.sdp: cannot write ${file} (${dir}: ${code(err)}); set "rtp.sdp" to a file in a directory this user can write, or remove the key`;
    }
  }
  // with mode "request" the destination is not used: recipients come at run time; the sockets are checked below
  let address = opts.destination;
  if (opts.mode !== 'request') {
    try {
      address = await within(
        timeoutMs,
        `resolving ${JSON.stringify(opts.destination)}`,
        resolveAddress(opts.destination),
      );
    } catch (err) {
      return `rtp.destination: cannot resolve ${JSON.stringify(opts.destination)} (${code(err)}); set "rtp.destination" to a host name that resolves or an IP address`;
    }
  }
  let delivery: Delivery = isIP(address) ? classify(address) : 'unicast';
  if (opts.mode === 'multicast') {
    if (!isMulticast(address))
      return `rtp.destination: ${address} is not a multicast address; set "rtp.mode" to "auto" or a multicast "rtp.destination"`;
    delivery = 'multicast';
  } else if (opts.mode === 'broadcast') {
    if (isIPv6(address)) return 'rtp.destination: IPv6 has no broadcast; set "rtp.mode" to "multicast" or "auto"';
    delivery = 'broadcast';
  } else if (opts.mode === 'unicast') delivery = 'unicast';

  const transport = new UdpTransport({
    ttl: opts.ttl,
    loop: opts.loop,
    interface: opts.interface,
    onError: () => {},
    onControlError: () => {},
  });
  // "request": a socket of the family the recipients will probably use, connected to nothing in particular
  const target = opts.mode === 'request' ? { address: '127.0.0.1', port: opts.port } : { address, port: opts.port };
  try {
    await within(timeoutMs, `setting up UDP to ${target.address}:${target.port}`, transport.add(target, delivery));
    return undefined;
  } catch (err) {
    const where = `${target.address}:${target.port} (RTCP ${target.port + 1})`;
    const hint =
      delivery === 'multicast'
        ? 'check "rtp.interface" and that a route for multicast exists (ip route)'
        : 'check "rtp.destination" and the network (ip route get ' + target.address + ')';
    return `cannot send RTP to ${where} (${code(err)}): ${hint}`;
  } finally {
    await transport.close();
  }
}
