// Shared by fuzz.mjs and soak.mjs: a seeded generator, the built speakerd as a child process (events parsed, its
// exit noticed, stderr kept), /proc samples, flags. Plain ESM on the built dist/, no extra dependencies.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const SPEAKERD = process.env.SPEAKERD_BIN ?? join(REPO, 'packages/host/bin/speakerd.js');

/** `--name value` and `--flag` from argv, with defaults; numbers stay numbers. */
export function flags(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, inline] = a.slice(2).split('=', 2);
    const key = k.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in defaults)) throw new Error(`unknown flag --${k} (known: ${Object.keys(defaults).join(', ')})`);
    let v = inline;
    if (v === undefined) {
      if (typeof defaults[key] === 'boolean') v = 'true';
      else v = argv[++i];
    }
    if (v === undefined) throw new Error(`--${k} needs a value`);
    out[key] = typeof defaults[key] === 'number' ? Number(v) : typeof defaults[key] === 'boolean' ? v !== 'false' : v;
    if (typeof defaults[key] === 'number' && !Number.isFinite(out[key])) throw new Error(`--${k}: not a number: ${v}`);
  }
  return out;
}

/** splitmix32: a 32-bit hash of a few integers (seeds for independent streams). */
export function mix(...xs) {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = (h + (x >>> 0) + 0x9e3779b9) | 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A small seeded generator (mulberry32) with the helpers the generators use. */
export class Rng {
  constructor(seed) {
    this.s = seed >>> 0;
  }
  next() {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = Math.imul(this.s ^ (this.s >>> 15), 1 | this.s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer lo..hi inclusive. */
  int(lo, hi) {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p) {
    return this.next() < p;
  }
  pick(xs) {
    return xs[Math.floor(this.next() * xs.length)];
  }
  /** An integer 1..max, log-uniform (small ones as often as large ones). */
  logInt(max) {
    return Math.max(1, Math.min(max, Math.floor(Math.exp(this.next() * Math.log(max + 1)))));
  }
  /** One of `table`'s keys, by weight. */
  weighted(table) {
    let total = 0;
    for (const w of Object.values(table)) total += w;
    let x = this.next() * total;
    for (const [k, w] of Object.entries(table)) if ((x -= w) < 0) return k;
    return Object.keys(table)[0];
  }
  bytes(n) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Open file descriptors and resident memory (kB) of a process, or undefined once it is gone. */
export function procSample(pid) {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { fds, rssKb: m ? Number(m[1]) : NaN };
  } catch {
    return undefined;
  }
}

/**
 * The built speakerd, spawned as a music server would: events parsed from stdout (each passed to `onEvent`),
 * stderr kept (the last 64 KiB), an unexpected exit reported through `onExit`.
 */
export class Daemon {
  constructor(configPath, { cwd, onEvent = () => {}, onExit = () => {}, onGarbage = () => {}, logLevel = 'warn' }) {
    this.stderr = '';
    this.exited = false;
    this.stopping = false;
    this.exit = new Promise((resolve) => (this.resolveExit = resolve));
    this.child = spawn(process.execPath, [SPEAKERD, '--allow-root', '--config', configPath, '--log-level', logLevel], {
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid;
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    let buf = '';
    this.child.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let e;
        try {
          e = JSON.parse(line);
        } catch {
          onGarbage(line);
          continue;
        }
        if (e.type === 'ready') this.readyResolve(e);
        onEvent(e);
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-65536);
    });
    this.child.stdin.on('error', () => {});
    this.child.on('error', (err) => this.readyReject(err));
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      this.code = code;
      this.signal = signal;
      this.readyReject(new Error(`speakerd exited (${code ?? signal}) before ready:\n${this.stderr}`));
      // stderr may still be draining: let it
      setTimeout(() => {
        this.resolveExit({ code, signal });
        if (!this.stopping) onExit({ code, signal, stderr: this.stderr });
      }, 50);
    });
  }

  /** Write to stdin; resolves once the pipe has room again. */
  write(data) {
    if (this.exited) return Promise.resolve();
    if (this.child.stdin.write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.child.stdin.off('drain', done);
        this.child.off('exit', done);
        resolve();
      };
      this.child.stdin.once('drain', done);
      this.child.once('exit', done);
    });
  }

  /** EOF on stdin (speakerd's clean stop), then SIGKILL if it has not exited within `ms`. */
  async stop(ms = 10_000) {
    this.stopping = true;
    if (!this.exited) this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const r = await this.exit;
    clearTimeout(t);
    return r;
  }

  kill() {
    this.stopping = true;
    if (!this.exited) this.child.kill('SIGKILL');
    return this.exit;
  }
}

/** The first lines of an uncaught exception in speakerd's stderr (its message and innermost frames). */
export function crashSignature(stderr) {
  const lines = stderr.split('\n');
  const at = lines.findIndex((l) => /^\s+at /.test(l));
  if (at === -1) return lines.filter(Boolean).slice(-3).join(' | ').slice(0, 300);
  const head = lines
    .slice(Math.max(0, at - 3), at)
    .filter((l) => /Error|error|Exception/.test(l))
    .pop();
  return [head ?? lines[at - 1], ...lines.slice(at, at + 3)].map((l) => l.trim()).join(' | ');
}
