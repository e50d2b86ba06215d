// One RTP receiver per sender, each on its own thread (a worker), so each sender wakes its own receiver for
// every packet it sends: on loopback the sender's send() runs the receive path and pays for that wake-up, and a
// shared receiver would charge it to whichever sender happens to send first in each period. Records, per packet,
// the arrival time (epoch ms: performance.timeOrigin + performance.now(), comparable across threads) and the
// unwrapped RTP timestamp, and samples the sender's CPU (/proc/<pid>/stat) at most every 200 ms.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { clkTck } = workerData;
const s = { pid: 0, arrivals: [], ts: [], lastTs: undefined, unwrap: 0, cpu: [], lastSample: -Infinity, bytes: 0 };

/** utime + stime of a process in seconds, or undefined once it is gone. */
function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clkTck; // fields 14 and 15
  } catch {
    return undefined;
  }
}

const now = () => performance.timeOrigin + performance.now();

function onPacket(msg) {
  const at = now();
  if (msg.length < 12) return;
  const ts = msg.readUInt32BE(4);
  if (s.lastTs !== undefined && ts < s.lastTs && s.lastTs - ts > 2 ** 31) s.unwrap += 2 ** 32;
  s.lastTs = ts;
  s.arrivals.push(at);
  s.ts.push(ts + s.unwrap);
  s.bytes += msg.length - 12;
  if (s.pid && at - s.lastSample > 200) {
    const c = cpuOf(s.pid);
    if (c !== undefined) s.cpu.push({ ts: ts + s.unwrap, cpu: c });
    s.lastSample = at;
  }
}

async function bindPair() {
  for (;;) {
    const port = 30000 + 2 * Math.floor(Math.random() * 15000);
    const a = createSocket('udp4');
    const b = createSocket('udp4');
    try {
      await new Promise((res, rej) => (a.once('error', rej), a.bind(port, '127.0.0.1', res)));
      await new Promise((res, rej) => (b.once('error', rej), b.bind(port + 1, '127.0.0.1', res)));
      return { port, rtp: a, rtcp: b };
    } catch {
      for (const x of [a, b]) {
        try {
          x.close();
        } catch {
          // not bound
        }
      }
    }
  }
}

const pair = await bindPair();
pair.rtp.on('message', onPacket);
pair.rtcp.on('message', () => {});
parentPort.on('message', (m) => {
  if (m.type === 'pid') s.pid = m.pid;
  else if (m.type === 'stop') {
    // one last CPU sample if the sender is still there
    const c = s.pid ? cpuOf(s.pid) : undefined;
    if (c !== undefined && s.ts.length > 0) s.cpu.push({ ts: s.ts[s.ts.length - 1], cpu: c });
    pair.rtp.close();
    pair.rtcp.close();
    const { arrivals, ts, cpu, bytes } = s;
    parentPort.postMessage({ type: 'data', arrivals, ts, cpu, bytes });
  }
});
parentPort.postMessage({ type: 'bound', port: pair.port });
