import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A random even port in 20000..59998 (RTP on it, RTCP on the next). */
export function freePortPair(): number {
  return 20000 + 2 * Math.floor(Math.random() * 20000);
}

/** Wait until a UDP socket is bound to `port` in this network namespace (the receiver is listening). */
export async function udpBound(port: number, timeoutMs = 15000): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
      if (
        existsSync(f) &&
        readFileSync(f, 'utf8')
          .split('\n')
          .some((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hex}`))
      )
        return;
    }
    await sleep(50);
  }
  throw new Error(`nothing bound UDP port ${port}`);
}

/** The exit code of `child`, killing it (SIGKILL) if it has not exited within `timeoutMs`. */
export function exitOf(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/** ffmpeg receiving the RTP stream an SDP file describes, writing raw PCM in `format` to `out`; stderr collected. */
export function ffmpegReceiver(sdp: string, out: string, format: 's16be' | 's16le' = 's16be') {
  const child = spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-protocol_whitelist', 'file,udp,rtp', '-i', sdp, '-f', format, '-y', out],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const r = { child, stderr: '' };
  child.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return r;
}

/**
 * The caps sdpdemux would make of an SDP file (sdpdemux is in gst-plugins-bad, which CI does not install): the
 * rtpmap, and each fmtp parameter as a string field (e.g. channel-order), as gst_sdp_media_get_caps_from_media does.
 */
export function capsFromSdp(sdp: string): { port: number; caps: string } {
  const m = /^m=audio (\d+) RTP\/AVP (\d+)\r?$/m.exec(sdp)!;
  const map = /^a=rtpmap:\d+ (\w+)\/(\d+)\/(\d+)\r?$/m.exec(sdp)!;
  const fmtp = /^a=fmtp:\d+ (.*?)\r?$/m.exec(sdp);
  const params = (fmtp?.[1] ?? '')
    .split(';')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((kv) => `,${kv.split('=')[0]!.toLowerCase()}=(string)${kv.split('=')[1]}`);
  const caps =
    `application/x-rtp,media=audio,payload=${m[2]},encoding-name=${map[1]},clock-rate=${map[2]},channels=${map[3]}` +
    params.join('');
  return { port: Number(m[1]), caps };
}

/**
 * GStreamer receiving the stream an SDP file describes: udpsrc with its caps ! rtpjitterbuffer ! rtpL16depay !
 * filesink `out` (s16be, in GStreamer's channel order); stop it with SIGINT (-e: the file is flushed).
 */
export function gstReceiver(sdp: string, out: string) {
  const { port, caps } = capsFromSdp(readFileSync(sdp, 'utf8'));
  const child = spawn(
    'gst-launch-1.0',
    [
      '-q',
      '-e',
      'udpsrc',
      `port=${port}`,
      `caps=${caps}`,
      '!',
      'rtpjitterbuffer',
      '!',
      'rtpL16depay',
      '!',
      'filesink',
      `location=${out}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const r = { child, stderr: '', caps };
  child.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return r;
}
