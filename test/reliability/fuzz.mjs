#!/usr/bin/env node
// Fuzzes the built speakerd as a hostile music server and hostile decoders would (docs/reliability.md).
//
// Control channel: generated lines (valid commands with random fields, wrong types, huge numbers, nesting up to
// 10,000 deep in volume/seq/id/type/plugin fields, invalid UTF-8, lone surrogates, lines over 64 KiB, empty lines,
// CRLF, mutated lines, random bytes) in batches, each batch followed by a `status` whose answer time is the status
// latency. Every line's expected answer comes from a model of docs/PROTOCOL.md (section 2): each answer that echoes
// a seq is matched to its command (type, error code, how many), and the answers without one are counted per batch.
// Decoder socket: generated header connections, many at once (valid, mutated, truncated, over-long, deep, wrong
// encodings/rates/channels, bad ids, dripped a few bytes at a time, WAV streams whose RIFF header is dripped, valid
// and broken, duplicate ids, header timeouts); each must get exactly the one answer line section 3 says.
//
// A crash (speakerd exits) or a hang (a status or a header answer that does not come within --hang-ms) is counted,
// the lines and headers in flight are replayed one at a time on a fresh speakerd to find the one that does it
// (saved under --out), and the run goes on with a new speakerd (up to --max-crashes).
//
//   node test/reliability/fuzz.mjs [--lines 800000] [--headers 200000] [--seed N] [--concurrency 48]
//        [--batch 500] [--hang-ms 15000] [--max-crashes 10] [--out DIR] [--json]
//   node test/reliability/fuzz.mjs --replay-line FILE | --replay-header FILE   (a saved culprit, on a fresh speakerd)
//
// Also from the environment: FUZZ_LINES, FUZZ_HEADERS, FUZZ_SEED. Exit status 0 when nothing crashed, nothing
// hung and every answer was the expected one.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, Rng, crashSignature, flags, mix, procSample, quantile, sleep } from './lib.mjs';

const opt = flags(process.argv.slice(2), {
  lines: Number(process.env.FUZZ_LINES ?? 800_000),
  headers: Number(process.env.FUZZ_HEADERS ?? 200_000),
  seed: Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31)),
  concurrency: 48,
  batch: 500,
  hangMs: 15_000,
  maxCrashes: 10,
  out: '',
  json: false,
  replayLine: '',
  replayHeader: '',
});

const MAX_LINE = 65536;
const MAX_HEADER = 4096;
const HEADER_TIMEOUT_MS = 1000;
const MAX_TRACKS = 4096;
const ENCODINGS = ['u8', 's8', 's16le', 's16be', 's24le', 's24be', 's32le', 's32be', 'f32le', 'f32be'];
const POOL = Array.from({ length: 6 }, (_, i) => `p-${i}`);
const utf8 = new globalThis.TextDecoder('utf-8', { fatal: true });

// ===================================================================== the model (docs/PROTOCOL.md)

const isPlain = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Section 3's id rule, and the issue-11 one: well-formed (no lone surrogates). Returns a rule name or ''. */
function idRule(v) {
  if (typeof v !== 'string') return 'type';
  const n = [...v].length;
  if (n === 0 || n > 64) return 'length';
  // eslint-disable-next-line no-control-regex -- control characters are the point
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return 'control';
  if (!v.isWellFormed()) return 'id-wellformed';
  return '';
}

/**
 * What a control line must be answered with. Returns `{ none }`, `{ unseq: category, min, max }` (answers without a
 * seq, counted per batch) or `{ seq, types, codes, min, max, async, rule }`.
 */
function expectLine(bytes) {
  if (bytes.length > MAX_LINE) return { unseq: 'error', min: 1, max: 1 };
  // not valid UTF-8: bad-json without a seq (PROTOCOL.md section 2), whatever the text would decode to
  try {
    utf8.decode(bytes);
  } catch {
    return { unseq: 'error', min: 1, max: 1 };
  }
  let text = bytes.toString('utf8');
  if (text.endsWith('\r')) text = text.slice(0, -1);
  if (text.trim() === '') return { none: true };
  let o;
  try {
    o = JSON.parse(text);
  } catch {
    return { unseq: 'error', min: 1, max: 1 };
  }
  if (!isPlain(o)) return { unseq: 'error', min: 1, max: 1 };
  let seq;
  if (o.seq !== undefined) {
    if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq)) return { unseq: 'error', min: 1, max: 1 };
    seq = o.seq === 0 ? 0 : o.seq; // -0 is echoed as 0
  }
  const ans = (types, extra = {}) =>
    seq === undefined
      ? {
          unseq: types.length === 1 ? types[0] : 'cancel',
          min: extra.min ?? 1,
          max: extra.max ?? 1,
          cancelId: extra.id,
        }
      : {
          seq,
          types,
          codes: extra.codes,
          min: extra.min ?? 1,
          max: extra.max ?? 1,
          async: !!extra.async,
          rule: extra.rule,
        };
  const err = (code, rule) => ans(['error'], { codes: [code], rule });
  if (typeof o.type !== 'string') return err('bad-command');
  switch (o.type) {
    case 'status':
      return ans(['status']);
    case 'volume': {
      const v = o.volume;
      return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 100 ? ans(['volume']) : err('bad-command');
    }
    case 'play': {
      const r = idRule(o.id);
      return r ? err('bad-command', r) : ans(['error'], { codes: ['busy'], min: 0, max: 1 });
    }
    case 'cancel': {
      const r = idRule(o.id);
      return r ? err('bad-command', r) : ans(['finished', 'stillborn', 'unknown'], { id: o.id });
    }
    case 'pause':
    case 'resume':
      return { none: true };
    case 'reload':
      return ans(['reloaded', 'error'], { codes: ['config'], async: true });
    default:
      // the command backend registers no commands of its own
      return err('unknown-command');
  }
}

/** What a decoder connection that sends `bytes` and then closes (`end`) or holds must be answered with. */
function expectHeader(bytes, end) {
  const nl = bytes.indexOf(0x0a);
  if (nl === -1) {
    if (bytes.length > MAX_HEADER) return { code: 'bad-header' };
    return end ? { code: 'bad-header' } : { code: 'header-timeout' };
  }
  if (nl > MAX_HEADER) return { code: 'bad-header' };
  const line = bytes.subarray(0, nl);
  try {
    utf8.decode(line);
  } catch {
    return { code: 'bad-header', rule: 'utf8' };
  }
  let h;
  try {
    h = JSON.parse(line.toString('utf8'));
  } catch {
    return { code: 'bad-header' };
  }
  if (!isPlain(h)) return { code: 'bad-header' };
  for (const k of Object.keys(h))
    if (!['id', 'encoding', 'rate', 'channels'].includes(k)) return { code: 'bad-header' };
  const r = idRule(h.id);
  if (r) return { code: 'bad-header', rule: r === 'id-wellformed' ? r : undefined };
  if (h.encoding === 'wav') {
    if (h.rate !== undefined || h.channels !== undefined) return { code: 'bad-header' };
    return { ok: true, id: h.id, wav: true };
  }
  if (!ENCODINGS.includes(h.encoding)) return { code: 'bad-header' };
  const int = (x, lo, hi) => typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
  if (!int(h.rate, 8000, 768000) || !int(h.channels, 1, 8)) return { code: 'bad-header' };
  return { ok: true, id: h.id, format: { encoding: h.encoding, rate: h.rate, channels: h.channels } };
}

// ===================================================================== generators

/** Code points an id may be made of (valid ones), by kind. */
function idChar(R) {
  switch (R.int(0, 9)) {
    case 0:
      return String.fromCodePoint(R.int(0xa0, 0x2ff)); // Latin-1 letters, combining marks
    case 1:
      return String.fromCodePoint(R.int(0x4e00, 0x9fff)); // CJK
    case 2:
      return String.fromCodePoint(R.int(0x1f300, 0x1faff)); // emoji (astral: a surrogate pair in JS)
    case 3:
      return R.pick(['\u202e', '\u200b', '\ufeff', '\ufffd', '\u2028', '\u2029', '"', '\\', '/', ' ']);
    case 4:
      return String.fromCodePoint(R.int(0x10000, 0x10ffff));
    default:
      return String.fromCharCode(R.int(0x20, 0x7e));
  }
}

function validId(R, prefix = '') {
  const n = R.logInt(64 - [...prefix].length);
  let s = prefix;
  for (let i = 0; i < n; i++) s += idChar(R);
  return s;
}

/** A JSON string literal for `s`: JSON.stringify, or every UTF-16 unit escaped, or escapes mixed in. */
function jsonString(R, s) {
  if (R.chance(0.8)) return JSON.stringify(s);
  let out = '"';
  for (const ch of s) {
    if (ch === '"' || ch === '\\' || ch.charCodeAt(0) < 0x20 || R.chance(0.5))
      for (let i = 0; i < ch.length; i++)
        out +=
          '\\u' +
          ch
            .charCodeAt(i)
            .toString(16)
            .padStart(4, R.chance(0.5) ? '0' : '0');
    else out += ch;
  }
  return out + '"';
}

/** `[[[…x…]]]`, `{"a":{"a":…}}` or a mix, `depth` deep around `inner`. */
function deep(R, depth, inner = R.pick(['1', '"x"', 'null', '[]', '{}', ''])) {
  switch (R.int(0, 3)) {
    case 0:
      return '['.repeat(depth) + inner + ']'.repeat(depth);
    case 1:
      return '{"a":'.repeat(depth) + (inner || '0') + '}'.repeat(depth);
    case 2: {
      let open = '';
      let close = '';
      for (let i = 0; i < depth; i++) {
        if (i % 2) {
          open += '{"k":';
          close = '}' + close;
        } else {
          open += '[0,';
          close = ']' + close;
        }
      }
      return open + (inner || '0') + close;
    }
    default:
      // unbalanced: the JSON parser itself must refuse it
      return '['.repeat(depth) + inner;
  }
}

/** Nesting depth for a deep field: anywhere up to 10,000, often deep enough to exhaust a recursive stringify. */
function depth(R) {
  return R.pick([R.logInt(10_000), R.int(3000, 10_000), R.int(1, 200)]);
}

const WEIRD = [
  'null',
  'true',
  'false',
  '""',
  '"x"',
  '"1"',
  '0',
  '-0',
  '1.5',
  '-1',
  '1e400',
  '-1e400',
  '1e-400',
  '9007199254740992',
  '-9007199254740993',
  '123456789012345678901234567890',
  '[]',
  '{}',
  '[1,2]',
  '{"a":1}',
  '"\\u0000"',
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"\\uDBFF\\uDFFF"',
];

/** A value of a wrong type (or a deep one). */
function weird(R) {
  if (R.chance(0.15)) return deep(R, depth(R));
  if (R.chance(0.05)) return JSON.stringify('z'.repeat(R.logInt(20000)));
  return R.pick(WEIRD);
}

/** An id that breaks section 3's rule (raw: bytes that are not UTF-8 go straight into the line). */
function badId(R) {
  switch (R.int(0, 8)) {
    case 0:
      return { json: '""' };
    case 1:
      return { json: JSON.stringify('x'.repeat(R.int(65, 300))) };
    case 2:
      return { json: JSON.stringify('a' + String.fromCharCode(R.pick([R.int(0, 0x1f), R.int(0x7f, 0x9f)])) + 'b') };
    case 3:
      return { json: '"a' + R.pick(['\\ud800', '\\udfff', '\\udc00\\ud800', '\\ud83d']) + 'b"' };
    case 4:
      return { json: deep(R, depth(R)) };
    case 5:
      // invalid UTF-8 inside the string: lone continuation, overlong '/', CESU surrogate, truncated sequence, 0xff
      return {
        raw: Buffer.concat([
          Buffer.from('"ab'),
          Buffer.from(
            R.pick([[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff], [0xf8, 0x88, 0x80, 0x80]]),
          ),
          Buffer.from('cd"'),
        ]),
      };
    case 6:
      return { json: JSON.stringify(String.fromCodePoint(0x1f600).repeat(65)) };
    default:
      return { json: weird(R) };
  }
}

/** Numbers written the ways JSON allows (the same value). */
function numberText(R, n) {
  if (!Number.isInteger(n) || R.chance(0.6)) return String(n);
  return R.pick([`${n}.0`, `${n}e0`, `${n}0e-1`, `${n}.000`, n === 0 ? '-0' : `${n}E+0`]);
}

/** Join [key, raw JSON value | Buffer] pairs into an object, keys in random order, random whitespace. */
function object(R, pairs) {
  if (R.chance(0.3)) pairs.sort(() => R.next() - 0.5);
  const ws = () => (R.chance(0.1) ? R.pick([' ', '  ', '\t', '\r', ' \t ']) : '');
  const parts = [Buffer.from(ws() + '{' + ws())];
  pairs.forEach(([k, v], i) => {
    if (i) parts.push(Buffer.from(',' + ws()));
    parts.push(Buffer.from(JSON.stringify(k) + ws() + ':' + ws()));
    parts.push(Buffer.isBuffer(v) ? v : Buffer.from(v));
    parts.push(Buffer.from(ws()));
  });
  parts.push(Buffer.from('}' + ws()));
  return Buffer.concat(parts);
}

/** Byte-level mutations of a line: flip, delete, insert, duplicate a range, cut. Never a newline. */
function mutate(R, b) {
  const out = [...b];
  for (let n = R.int(1, 4); n > 0; n--) {
    const at = R.int(0, Math.max(0, out.length - 1));
    switch (R.int(0, 4)) {
      case 0:
        out[at] = R.int(0, 255);
        break;
      case 1:
        out.splice(at, R.int(1, 4));
        break;
      case 2:
        out.splice(at, 0, R.pick([0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x30, 0x80, 0xff, R.int(0, 255)]));
        break;
      case 3: {
        const len = R.int(1, 16);
        out.splice(at, 0, ...out.slice(at, at + len));
        break;
      }
      default:
        out.length = at;
    }
  }
  return Buffer.from(out.map((x) => (x === 0x0a ? 0x20 : x)));
}

/**
 * One control line (without its newline). `seqs()` hands out the seqs the generator uses (all distinct), so that
 * every answer that echoes one can be matched to its line.
 */
function controlLine(R, seqs) {
  const kind = R.weighted({
    status: 10,
    volume: 16,
    play: 12,
    cancel: 14,
    pausing: 3,
    reload: 0.05,
    unknownType: 7,
    badType: 5,
    badSeq: 6,
    extraDeep: 3,
    mutated: 10,
    badJson: 5,
    nonObject: 3,
    randomBytes: 2,
    blank: 2,
    longLine: 0.25,
  });
  const seqPair = () => {
    if (R.chance(0.12)) return [];
    return [['seq', numberText(R, seqs())]];
  };
  let line;
  switch (kind) {
    case 'status':
      line = object(R, [['type', '"status"'], ...seqPair()]);
      break;
    case 'volume': {
      let v;
      const c = R.int(0, 9);
      if (c < 4) v = numberText(R, R.chance(0.5) ? R.int(0, 100) : Math.round(R.next() * 100000) / 1000);
      else if (c < 6)
        v = R.pick(['-0.0001', '100.0001', '101', '-1', '1e3', '1e400', '-1e400', '1e-400', 'NaN', 'Infinity']);
      else if (c < 8) v = deep(R, depth(R));
      else v = weird(R);
      line = object(R, [['type', '"volume"'], ['volume', v], ...seqPair()]);
      break;
    }
    case 'play':
    case 'cancel': {
      let id;
      const c = R.int(0, 9);
      if (c < 5) id = JSON.stringify(R.pick(POOL));
      else if (c < 7) {
        let s;
        do s = validId(R);
        while (s.startsWith('p-') || s.startsWith('h'));
        id = jsonString(R, s);
      } else {
        const b = badId(R);
        id = b.raw ?? b.json;
      }
      const pairs = [['type', JSON.stringify(kind)], ['id', id], ...seqPair()];
      // a cancel without a seq whose answer could be a `finished`: keep the model simple, give it one
      if (kind === 'cancel' && pairs.length === 2) pairs.push(['seq', String(seqs())]);
      line = object(R, pairs);
      break;
    }
    case 'pausing':
      line = object(R, [['type', R.chance(0.5) ? '"pause"' : '"resume"'], ...seqPair()]);
      break;
    case 'reload':
      line = object(R, [
        ['type', '"reload"'],
        ['seq', String(seqs())],
      ]);
      break;
    case 'unknownType': {
      const t = R.pick([
        'foo',
        '',
        'STATUS',
        'status ',
        'command.x',
        'rtp.add-recipient',
        'alsa.mixer',
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        'play\u0000',
        validId(R),
      ]);
      const pairs = [['type', jsonString(R, t)], ...seqPair()];
      // a plugin-looking command with hostile fields
      if (R.chance(0.5)) pairs.push([R.pick(['address', 'port', 'recipients', 'x']), weird(R)]);
      line = object(R, pairs);
      break;
    }
    case 'badType':
      line = object(R, [['type', weird(R)], ...seqPair(), ...(R.chance(0.3) ? [['id', '"p-0"']] : [])]);
      break;
    case 'badSeq':
      line = object(R, [
        ['type', JSON.stringify(R.pick(['status', 'volume', 'play', 'cancel', 'x']))],
        [
          'seq',
          R.chance(0.4)
            ? deep(R, depth(R))
            : R.pick([
                '1.5',
                '"1"',
                'null',
                'true',
                '[1]',
                '{}',
                '1e300',
                '9007199254740992',
                '-9007199254740992',
                '0.1',
                '1e400',
              ]),
        ],
        ...(R.chance(0.5) ? [['volume', '50']] : []),
      ]);
      break;
    case 'extraDeep':
      // fields nobody reads may be anything
      line = object(R, [
        ['type', JSON.stringify(R.pick(['status', 'volume', 'pause', 'resume']))],
        ['volume', '42'],
        [R.pick(['x', 'plugin', 'data', 'volume2']), deep(R, depth(R))],
        ...seqPair(),
      ]);
      break;
    case 'mutated': {
      const base = object(R, [
        ['type', JSON.stringify(R.pick(['status', 'volume', 'play', 'cancel']))],
        ['volume', String(R.int(0, 100))],
        ['id', JSON.stringify(R.pick(POOL))],
        ['seq', String(seqs())],
      ]);
      line = mutate(R, base);
      break;
    }
    case 'badJson':
      line = Buffer.from(
        R.pick([
          '{',
          '}',
          '{"type":"status"',
          '{"type":"status",}',
          "{'type':'status'}",
          '{"type":status}',
          '{"type":"status"}}',
          '{"type":"status"} {"type":"status"}',
          '{"type":"volume","volume":01}',
          '{"type":"volume","volume":.5}',
          '{"type":"volume","volume":+5}',
          '{"type":"volume","volume":0x10}',
          '{"type":"\\x41"}',
          '{"type":"\\u12"}',
          '\u0000{"type":"status"}',
          '{"type":"status"}\u0000',
          '\ufeff{"type":"status"}',
        ]),
      );
      break;
    case 'nonObject':
      line = Buffer.from(R.pick(['[]', '[{"type":"status"}]', '"status"', '1', 'null', 'true', deep(R, depth(R))]));
      break;
    case 'randomBytes':
      line = R.bytes(R.logInt(2000)).map((x) => (x === 0x0a ? 0x0d : x));
      break;
    case 'blank':
      line = Buffer.from(R.pick(['', ' ', '\t', '\r', '  \t  ', '\u00a0', '\ufeff']));
      break;
    case 'longLine': {
      const n = R.pick([MAX_LINE + 1, MAX_LINE + R.int(2, 200_000), MAX_LINE - 20, MAX_LINE]);
      const pad = Math.max(0, n - 30);
      line = Buffer.from(`{"type":"status","x":"${'y'.repeat(pad)}"}`);
      break;
    }
  }
  if (R.chance(0.05)) line = Buffer.concat([line, Buffer.from('\r')]);
  return line;
}

// --------------------------------------------------------------------- headers

function rateValue(R) {
  return R.pick([8000, 11025, 22050, 44100, 48000, 88200, 96000, 176400, 192000, 384000, 768000, R.int(8000, 768000)]);
}

function headerPairs(R, id) {
  return [
    ['id', jsonString(R, id)],
    ['encoding', JSON.stringify(R.pick(ENCODINGS))],
    ['rate', numberText(R, rateValue(R))],
    ['channels', numberText(R, R.int(1, 8))],
  ];
}

function le16(n) {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n & 0xffff);
  return b;
}
function le32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
const chunk = (id, body, size = body.length) =>
  Buffer.concat([Buffer.from(id, 'latin1'), le32(size), body, body.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);

/** A RIFF/WAVE header (and a little PCM): valid with the format it announces, or broken with why. */
function wavStream(R) {
  const kinds = [
    [1, 8, 'u8'],
    [1, 16, 's16le'],
    [1, 24, 's24le'],
    [1, 32, 's32le'],
    [3, 32, 'f32le'],
  ];
  let [tag, bits, encoding] = R.pick(kinds);
  let channels = R.int(1, 8);
  let rate = rateValue(R);
  let blockAlign = (bits / 8) * channels;
  let extensible = R.chance(0.2);
  let broken = '';
  const b = R.int(0, 24);
  if (b === 0) {
    channels = R.pick([0, 9, 65535]);
    broken = 'channels';
  } else if (b === 1) {
    rate = R.pick([0, 7999, 768001, 0xffffffff]);
    broken = 'rate';
  } else if (b === 2) {
    bits = R.pick([4, 12, 20, 64]);
    broken = 'bits';
  } else if (b === 3) {
    tag = R.pick([2, 6, 7, 0x55]);
    extensible = false;
    broken = 'tag';
  } else if (b === 4) {
    blockAlign += 1;
    broken = 'blockAlign';
  } else if (b === 5 && tag === 3) {
    bits = 16;
    broken = 'float16';
  }
  let fmt = Buffer.concat([
    le16(extensible ? 0xfffe : tag),
    le16(channels),
    le32(rate),
    le32(rate * blockAlign),
    le16(blockAlign),
    le16(bits),
  ]);
  if (extensible) {
    const sub = Buffer.from(tag === 3 ? '0300000000001000800000aa00389b71' : '0100000000001000800000aa00389b71', 'hex');
    if (b === 6) {
      sub[0] = 9;
      broken = 'subformat';
    }
    fmt = Buffer.concat([fmt, le16(22), le16(bits), le32(0), sub]);
  } else if (R.chance(0.2)) fmt = Buffer.concat([fmt, le16(0)]);
  const parts = [];
  if (R.chance(0.3)) parts.push(chunk('LIST', R.bytes(R.chance(0.05) ? R.int(10_000, 30_000) : R.int(0, 301))));
  if (b === 7) {
    parts.push(chunk('data', Buffer.alloc(0), 0));
    broken = 'data-before-fmt';
  }
  if (b === 8) {
    parts.push(chunk('fmt ', fmt.subarray(0, 8)));
    broken = 'short-fmt';
  } else parts.push(chunk('fmt ', fmt));
  if (b === 9) {
    parts.push(Buffer.concat([Buffer.from('junk'), le32(70_000)]));
    broken = 'huge-chunk';
  }
  const pcm = R.bytes(R.int(0, 64));
  parts.push(Buffer.concat([Buffer.from('data'), le32(R.pick([0, 0xffffffff, pcm.length, R.int(0, 1 << 30)]))]));
  let riff = Buffer.concat([
    Buffer.from(R.chance(0.05) ? 'RF64' : 'RIFF'),
    le32(R.pick([0, 0xffffffff, R.int(36, 1 << 30)])),
    Buffer.from('WAVE'),
    ...parts,
  ]);
  if (b === 10) {
    riff[R.int(0, 3)] ^= 0x20;
    broken = 'riff-tag';
  } else if (b === 11) {
    riff[R.int(8, 11)] ^= 0x20;
    broken = 'wave-tag';
  } else if (b === 12) {
    riff = riff.subarray(0, R.int(1, riff.length - 1));
    broken = 'cut';
    return { bytes: riff, broken };
  }
  return {
    bytes: Buffer.concat([riff, pcm]),
    broken,
    format: broken ? undefined : { encoding, rate, channels },
  };
}

/**
 * One decoder connection's plan: the bytes it sends (in pieces), whether it then closes, and what follows an
 * accepted header (PCM, a WAV stream, a second connection with the same id).
 */
function headerPlan(R, i) {
  const kind = R.weighted({
    valid: 26,
    field: 20,
    mutated: 14,
    truncated: 8,
    wav: 12,
    deep: 5,
    badUtf8: 3,
    nonJson: 4,
    long: 2,
    dup: 2,
    empty: 1,
    close0: 1,
    destroy: 1,
    timeout: 0.3,
  });
  const id = validId(R, `h${i}.`);
  const plan = { i, kind, end: true, pieces: null, bytes: null };
  let line;
  const pairs = headerPairs(R, id);
  switch (kind) {
    case 'valid':
    case 'dup':
      line = object(R, pairs);
      break;
    case 'field': {
      const f = R.int(0, 6);
      if (f === 0) pairs[0][1] = badId(R).json ?? '1';
      else if (f === 1)
        pairs[1][1] = R.pick(['"S16LE"', '"s16"', '"wav "', '""', '"pcm"', '"s24"', '"f64le"', 'null', '1', weird(R)]);
      else if (f === 2)
        pairs[2][1] = R.pick([
          '7999',
          '768001',
          '44100.5',
          '"44100"',
          '-1',
          '0',
          '1e400',
          'null',
          '9007199254740993',
          weird(R),
        ]);
      else if (f === 3) pairs[3][1] = R.pick(['0', '9', '1.5', '"2"', '-1', 'null', '1e308', '256', weird(R)]);
      else if (f === 4) pairs.push([R.pick(['bitrate', 'ID', '', '__proto__', 'seq', 'type']), weird(R)]);
      else if (f === 5) pairs.splice(R.int(0, 3), 1);
      else pairs[1][1] = '"wav"';
      line = object(R, pairs);
      break;
    }
    case 'mutated':
      line = mutate(R, object(R, pairs));
      break;
    case 'truncated': {
      const full = object(R, pairs);
      plan.bytes = full.subarray(0, R.int(0, full.length - 1));
      break;
    }
    case 'wav':
      line = object(R, [pairs[0], ['encoding', '"wav"']]);
      plan.wav = wavStream(R);
      break;
    case 'deep': {
      const f = R.int(0, 3);
      pairs[f][1] = deep(R, R.chance(0.7) ? R.int(1, 2000) : R.int(2000, 6000));
      line = object(R, pairs);
      break;
    }
    case 'badUtf8': {
      const bad = Buffer.from(R.pick([[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff], [0xfe, 0xfe]]));
      pairs[0][1] = Buffer.concat([Buffer.from(JSON.stringify(id).slice(0, -1)), bad, Buffer.from('"')]);
      if (R.chance(0.3))
        pairs[0][1] = '"' + id.slice(0, 10).replace(/["\\]/g, '') + R.pick(['\\ud800', '\\udfff', '\\ud83d']) + '"';
      line = object(R, pairs);
      break;
    }
    case 'nonJson':
      line = R.chance(0.5)
        ? R.bytes(R.logInt(3000)).map((x) => (x === 0x0a ? 0x20 : x))
        : Buffer.from(R.pick(['[]', '"x"', '1', 'null', '[{"id":"a"}]', '{"id":"a",}']));
      break;
    case 'long':
      if (R.chance(0.5)) line = Buffer.from(`{"id":"${'x'.repeat(R.int(MAX_HEADER, 3 * MAX_HEADER))}"}`);
      else {
        plan.bytes = Buffer.alloc(R.int(MAX_HEADER + 1, 3 * MAX_HEADER), 0x7b);
        plan.end = false; // refused for its size, not for closing
      }
      break;
    case 'empty':
      line = Buffer.alloc(0);
      break;
    case 'close0':
      plan.bytes = Buffer.alloc(0);
      break;
    case 'destroy':
      plan.bytes = object(R, pairs).subarray(0, R.int(0, 20));
      plan.destroy = true;
      break;
    case 'timeout':
      plan.bytes = object(R, pairs).subarray(0, R.int(0, 20));
      plan.end = false;
      break;
  }
  if (line) {
    const eol = R.chance(0.1) ? '\r\n' : '\n';
    plan.bytes = Buffer.concat([line, Buffer.from(eol)]);
  }
  // PCM right behind the header, in the same write
  if (!plan.wav && R.chance(0.3) && line) plan.bytes = Buffer.concat([plan.bytes, R.bytes(R.int(1, 3000))]);
  plan.expect = plan.destroy ? undefined : expectHeader(plan.bytes, plan.end);
  if (plan.expect?.ok && plan.expect.wav && !plan.wav) plan.wav = wavStream(R);
  plan.pieces = R.chance(0.15)
    ? pieces(R, plan.bytes, Math.max(R.int(1, 16), Math.ceil(plan.bytes.length / 200)))
    : [plan.bytes];
  if (plan.wav) plan.wavPieces = pieces(R, plan.wav.bytes, R.pick([1, 2, 3, 7, 64]));
  plan.pcm = R.bytes(R.int(0, 4000));
  return plan;
}

function pieces(R, b, max) {
  const out = [];
  for (let off = 0; off < b.length;) {
    const n = R.int(1, max);
    out.push(b.subarray(off, off + n));
    off += n;
  }
  return out.length ? out : [b];
}

// ===================================================================== the run

const stats = {
  seed: opt.seed,
  lines: 0,
  linesBytes: 0,
  deepLines: 0,
  headers: 0,
  answers: 0,
  seqAnswers: 0,
  unseqAnswers: 0,
  statusSent: 0,
  headerAnswers: 0,
  headersAccepted: 0,
  headersRefused: 0,
  wavArrived: 0,
  wavBad: 0,
  crashes: 0,
  hangs: 0,
  violations: 0,
  idRuleViolations: 0,
  restarts: 0,
};
const problems = [];
/** A protocol violation (wrong, missing or stray answer): counted, the first ones kept with their line. */
function violation(kind, detail) {
  const idRuleOnly = detail.rule === 'id-wellformed' || detail.rule === 'utf8';
  if (idRuleOnly) stats.idRuleViolations++;
  else stats.violations++;
  if (idRuleOnly ? stats.idRuleViolations <= 8 : stats.violations <= 40) problems.push({ kind, ...detail });
}
const crashes = [];
const hangs = [];
const latencies = [];

let dir;
let configPath;
let socketPath;
let daemon;
/** Bumped at every crash: work of an old speakerd is abandoned. */
let epoch = 0;

function writeConfig() {
  socketPath = join(dir, 'run', 'decoders.sock');
  configPath = join(dir, 'speakerrc.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      backend: 'command',
      command: { run: 'cat > /dev/null', keepRunning: true },
      socket: socketPath,
      maxTracks: MAX_TRACKS,
      headerTimeoutMs: HEADER_TIMEOUT_MS,
      bufferMs: 500,
      unplayedTimeoutMs: 0,
    }),
  );
}

// --------------------------------------------------------------------- control-side bookkeeping

/** Expectations of answers that echo a seq, by seq. */
const expected = new Map();
/** Seqs that more than one line carried (a mutation made one up): their answers are not checked. */
const ambiguous = new Set();
/** Batches sent whose status has not been answered, oldest first. */
let batches = [];
/** Answers without a seq, counted towards the oldest open batch. */
const UNSEQ = ['error', 'status', 'volume', 'cancel', 'reloaded'];
/** Reloads without a seq answer whenever they are done: counted over the whole run. */
let unseqReloads = { sent: 0, got: 0 };
/** Header jobs waiting for a WAV stream's verdict (arrived, or bad-header with the id), by id. */
const wavWaiters = new Map();
const acceptedIds = new Set();
let arrivedCount = 0;
let expectedArrived = 0;
let refusalEvents = 0;
let pendingCancels = [];
let wakeWriter = () => {};
let nextSeq = 1;
const seqs = () => nextSeq++;

function onEvent(e, ep) {
  if (ep !== epoch) return;
  stats.answers++;
  if (e.type === 'ready') return;
  if (e.seq !== undefined) {
    stats.seqAnswers++;
    if (ambiguous.has(e.seq)) return;
    const x = expected.get(e.seq);
    if (!x) {
      violation('stray answer', { event: e });
      return;
    }
    if (x.status) return statusAnswered(x, e);
    x.got.push(e);
    if (!x.types.includes(e.type) || (e.type === 'error' && x.codes && !x.codes.includes(e.code)))
      violation('wrong answer', {
        line: preview(x.line),
        event: brief(e),
        expected: x.types,
        codes: x.codes,
        rule: x.rule,
      });
    if (x.got.length > x.max) violation('extra answer', { line: preview(x.line), event: brief(e), rule: x.rule });
    if (x.cancelOf) {
      // a header whose id was replaced by a generated one ("x", U+10FFFF…) shares the control side's id pool: a
      // random control line may have cancelled that track first, and `unknown` is then the right answer
      const shared = !x.cancelOf.startsWith('h');
      if (e.type !== 'stillborn' && !(shared && e.type === 'unknown'))
        violation('wrong answer', { line: preview(x.line), event: brief(e), expected: ['stillborn'] });
      acceptedIds.delete(x.cancelOf);
    }
    if (x.async && x.got.length >= x.min) expected.delete(e.seq);
    return;
  }
  switch (e.type) {
    case 'arrived':
      // every arrived comes from the decoder side (the control side's tracks, p-…, never get a decoder); a mutated
      // header may be accepted with an id that no longer starts with h
      if (typeof e.id === 'string' && !e.id.startsWith('p-')) arrivedCount++;
      wavWaiters.get(e.id)?.({ arrived: e });
      return;
    case 'playing':
    case 'paused':
    case 'backend':
      return;
    case 'reloaded':
      unseqReloads.got++;
      return;
    case 'error':
      if (typeof e.message === 'string' && e.message.startsWith('decoder refused')) {
        refusalEvents++;
        return;
      }
      if (e.code === 'bad-header' && e.id !== undefined) {
        wavWaiters.get(e.id)?.({ bad: e });
        return;
      }
      if (e.code === 'not-played') return violation('unexpected event', { event: brief(e) });
      break;
    case 'finished':
    case 'stillborn':
    case 'unknown':
      e = { ...e, type: 'cancel' };
      break;
  }
  stats.unseqAnswers++;
  const b = batches[0];
  if (!b || !UNSEQ.includes(e.type)) return violation('unexpected event', { event: brief(e) });
  b.unseqGot[e.type] = (b.unseqGot[e.type] ?? 0) + 1;
}

function statusAnswered(x, e) {
  latencies.push(performance.now() - x.sentAt);
  expected.delete(x.seq);
  const b = batches.shift();
  if (!b || b.statusSeq !== x.seq) {
    violation('status out of order', { seq: x.seq });
    return;
  }
  if (e.type !== 'status') violation('wrong answer', { line: 'status', event: brief(e) });
  for (const cat of UNSEQ) {
    const got = b.unseqGot[cat] ?? 0;
    const [min, max] = b.unseqWant[cat] ?? [0, 0];
    if (got < min || got > max)
      violation('unsequenced answers', {
        category: cat,
        got,
        expected: min === max ? min : `${min}..${max}`,
        batch: b.lines
          .filter((l) => l.exp.unseq === cat)
          .slice(0, 5)
          .map((l) => preview(l.bytes)),
      });
  }
  for (const s of b.syncSeqs) {
    const y = expected.get(s);
    if (!y) continue;
    expected.delete(s);
    if (y.got.length < y.min) violation('missing answer', { line: preview(y.line), expected: y.types, rule: y.rule });
  }
  b.resolve();
}

const preview = (b) => {
  const s = Buffer.isBuffer(b) ? b.toString('utf8') : String(b);
  return s.length > 160 ? `${s.slice(0, 120)}… (${Buffer.byteLength(s)} bytes)` : s;
};
const brief = (e) => {
  const s = JSON.stringify(e);
  return s.length > 300 ? s.slice(0, 300) + '…' : s;
};

function record(line, exp) {
  if (exp.seq === undefined) return;
  if (expected.has(exp.seq) || ambiguous.has(exp.seq)) {
    expected.delete(exp.seq);
    ambiguous.add(exp.seq);
    return;
  }
  expected.set(exp.seq, { ...exp, line, got: [] });
}

// --------------------------------------------------------------------- speakerd

async function startDaemon() {
  const ep = ++epoch;
  batches = [];
  expected.clear();
  for (const w of wavWaiters.values()) w({ abandoned: true });
  wavWaiters.clear();
  acceptedIds.clear();
  pendingCancels = [];
  const d = new Daemon(configPath, {
    cwd: dir,
    logLevel: 'error',
    onEvent: (e) => onEvent(e, ep),
    onGarbage: (l) => violation('not JSON on stdout', { line: preview(l) }),
    onExit: (r) => {
      if (ep === epoch) onCrash(d, r);
    },
  });
  daemon = d;
  await d.ready;
  d.base = procSample(d.pid);
  return d;
}

/** Lines and headers in flight when speakerd died or hung, for the replay. */
const inFlightHeaders = new Map();
let crashWork = Promise.resolve();
let restarting;

function onCrash(d, r) {
  if (shuttingDown) return;
  stats.crashes++;
  const signature = crashSignature(r.stderr);
  const lines = batches.flatMap((b) => b.lines.map((l) => l.bytes));
  const headers = [...inFlightHeaders.values()];
  const c = {
    code: r.code,
    signal: r.signal,
    signature,
    stderr: r.stderr.slice(-3000),
    lines: lines.length,
    headers: headers.length,
  };
  crashes.push(c);
  for (const b of batches) b.resolve();
  batches = [];
  epoch++;
  restarting = (async () => {
    await crashWork;
    const seen = crashes.filter((x) => x.signature === signature).length;
    if (seen === 1 && crashes.length <= 5) await culprit(c, lines, headers, 'crash');
    if (stats.crashes + stats.hangs <= opt.maxCrashes) {
      stats.restarts++;
      await startDaemon();
    }
  })();
  crashWork = restarting;
}

async function onHang(what, lines, headers) {
  if (shuttingDown) return;
  stats.hangs++;
  const h = { what, lines: lines.length, headers: headers.length, stderr: daemon.stderr.slice(-3000) };
  hangs.push(h);
  const old = daemon;
  epoch++;
  for (const b of batches) b.resolve();
  batches = [];
  await old.kill();
  restarting = (async () => {
    if (hangs.length <= 3) await culprit(h, lines, headers, 'hang');
    if (stats.crashes + stats.hangs <= opt.maxCrashes) {
      stats.restarts++;
      await startDaemon();
    }
  })();
  await restarting;
}

/** Replay `lines`, then `headers`, one at a time on a fresh speakerd until one kills or hangs it; save it. */
async function culprit(report, lines, headers, kind) {
  const found = await findCulprit(lines, headers);
  if (!found) {
    report.culprit = 'not reproduced one at a time';
    return;
  }
  const outDir = opt.out || join(dir, 'keep');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${kind}-${crashes.length + hangs.length}.${found.kind}`);
  writeFileSync(file, found.bytes);
  report.culprit = {
    kind: found.kind,
    file,
    preview: preview(found.bytes),
    bytes: found.bytes.length,
    stderr: found.stderr,
  };
  report.replay = `node test/reliability/fuzz.mjs --replay-${found.kind} ${file}`;
  keepDir = !opt.out;
}
let keepDir = false;

async function findCulprit(lines, headers) {
  // the lines on one fresh speakerd, each followed by a status: the first after which it dies or hangs
  if (lines.length) {
    const found = await replayLines(lines);
    if (found) return found;
  }
  for (const p of headers) {
    const r = await replayOne('header', p.bytes, p.end);
    if (r.died || r.hung) return { kind: 'header', bytes: p.bytes, ...r };
  }
  return undefined;
}

async function replayLines(lines) {
  const sub = mkdtempSync(join(tmpdir(), 'speakerd-fuzz-replay-'));
  const cfg = join(sub, 'speakerrc.json');
  writeFileSync(
    cfg,
    JSON.stringify({ backend: 'command', command: { run: 'cat > /dev/null' }, socket: join(sub, 'run', 'd.sock') }),
  );
  let waiting = () => {};
  const d = new Daemon(cfg, { cwd: sub, logLevel: 'error', onEvent: (e) => e.seq === -424242 && waiting() });
  try {
    await d.ready;
    for (const bytes of lines) {
      const got = new Promise((r) => (waiting = r));
      await d.write(Buffer.concat([bytes, Buffer.from('\n{"type":"status","seq":-424242}\n')]));
      const r = await Promise.race([got.then(() => 'ok'), d.exit.then(() => 'died'), sleep(10_000).then(() => 'hung')]);
      if (r !== 'ok')
        return { kind: 'line', bytes, died: r === 'died', hung: r === 'hung', stderr: d.stderr.slice(-2000) };
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    await d.kill();
    rmSync(sub, { recursive: true, force: true });
  }
}

/** One line (and a status) or one header on a fresh speakerd: did it die or hang? */
async function replayOne(kind, bytes, end = true) {
  const sub = mkdtempSync(join(tmpdir(), 'speakerd-fuzz-replay-'));
  const cfg = join(sub, 'speakerrc.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      backend: 'command',
      command: { run: 'cat > /dev/null' },
      socket: join(sub, 'run', 'd.sock'),
      headerTimeoutMs: HEADER_TIMEOUT_MS,
    }),
  );
  let statusSeen;
  const gotStatus = new Promise((r) => (statusSeen = r));
  const d = new Daemon(cfg, { cwd: sub, logLevel: 'error', onEvent: (e) => e.seq === 424242 && statusSeen() });
  try {
    await d.ready;
    if (kind === 'line') {
      await d.write(Buffer.concat([bytes, Buffer.from('\n{"type":"status","seq":424242}\n')]));
    } else {
      const s = connect(join(sub, 'run', 'd.sock'));
      s.on('error', () => {});
      s.write(bytes);
      if (end) s.end();
      await Promise.race([new Promise((r) => s.once('data', r)), d.exit, sleep(HEADER_TIMEOUT_MS + 3000)]);
      s.destroy();
      await d.write('{"type":"status","seq":424242}\n');
    }
    const r = await Promise.race([
      gotStatus.then(() => 'ok'),
      d.exit.then(() => 'died'),
      sleep(10_000).then(() => 'hung'),
    ]);
    return { died: r === 'died', hung: r === 'hung', stderr: r === 'ok' ? undefined : d.stderr.slice(-2000) };
  } catch {
    return { died: true, stderr: d.stderr.slice(-2000) };
  } finally {
    await d.kill();
    rmSync(sub, { recursive: true, force: true });
  }
}

// --------------------------------------------------------------------- the control writer

async function controlWriter() {
  const R = new Rng(mix(opt.seed, 1));
  let made = 0;
  while (true) {
    if (restarting) {
      await restarting;
      restarting = undefined;
    }
    if (stats.crashes + stats.hangs > opt.maxCrashes) return;
    if (made >= opt.lines && pendingCancels.length === 0) {
      if (headersDone) return;
      await Promise.race([new Promise((r) => (wakeWriter = r)), sleep(20)]);
      continue;
    }
    while (batches.length >= 2 && !restarting) await Promise.race([batches[0].done, sleep(50)]);
    if (restarting) continue;
    const ep = epoch;
    const b = { lines: [], unseqWant: {}, unseqGot: {}, syncSeqs: [], resolve: () => {} };
    b.done = new Promise((r) => (b.resolve = r));
    const want = (cat, min, max) => {
      const w = (b.unseqWant[cat] ??= [0, 0]);
      w[0] += min;
      w[1] += max;
    };
    const add = (bytes, exp, extra = {}) => {
      b.lines.push({ bytes, exp });
      if (exp.none) return;
      if (exp.unseq) {
        if (exp.unseq === 'reloaded') {
          unseqReloads.sent++;
          return;
        }
        want(exp.unseq, exp.min, exp.max);
        return;
      }
      record(bytes, { ...exp, ...extra });
      if (!exp.async) b.syncSeqs.push(exp.seq);
    };
    for (const c of pendingCancels.splice(0)) {
      const s = seqs();
      const bytes = Buffer.from(JSON.stringify({ type: 'cancel', id: c, seq: s }));
      add(bytes, expectLine(bytes), { cancelOf: c });
    }
    const n = Math.min(opt.batch, opt.lines - made);
    for (let k = 0; k < n; k++) {
      const bytes = controlLine(R, seqs);
      made++;
      stats.lines++;
      stats.linesBytes += bytes.length + 1;
      if (bytes.length > 2000 && /^\s*[[{]/.test(bytes.subarray(0, 40).toString('latin1'))) stats.deepLines++;
      add(bytes, expectLine(bytes));
    }
    const statusSeq = seqs();
    b.statusSeq = statusSeq;
    const x = { status: true, seq: statusSeq, sentAt: 0 };
    expected.set(statusSeq, x);
    batches.push(b);
    const payload = Buffer.concat([
      ...b.lines.flatMap((l) => [l.bytes, Buffer.from('\n')]),
      Buffer.from(`{"type":"status","seq":${statusSeq}}\n`),
    ]);
    x.sentAt = performance.now();
    stats.statusSent++;
    const d = daemon;
    await d.write(payload);
    x.sentAt = Math.max(x.sentAt, performance.now() - 0); // the status is at the end of the write
    // a status that does not come is a hang
    const t = setTimeout(() => {
      if (ep === epoch && batches.includes(b)) {
        const lines = batches.flatMap((y) => y.lines.map((l) => l.bytes));
        void onHang(`status seq ${statusSeq} not answered within ${opt.hangMs} ms`, lines, [
          ...inFlightHeaders.values(),
        ]);
      }
    }, opt.hangMs);
    b.done.then(() => clearTimeout(t));
  }
}

// --------------------------------------------------------------------- the decoders

let headersDone = false;
let shuttingDown = false;
const pendingAfter = new Set();

async function headerWorker(next) {
  for (;;) {
    if (restarting) await restarting;
    if (stats.crashes + stats.hangs > opt.maxCrashes) return;
    const i = next();
    if (i === undefined) return;
    const plan = headerPlan(new Rng(mix(opt.seed, 2, i)), i);
    stats.headers++;
    inFlightHeaders.set(i, plan);
    try {
      await runHeader(plan, epoch);
    } finally {
      inFlightHeaders.delete(i);
    }
  }
}

function runHeader(plan, ep) {
  return new Promise((resolve) => {
    const s = connect(socketPath);
    let buf = Buffer.alloc(0);
    let answer;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(hang);
      s.destroy();
      resolve();
    };
    const hang = setTimeout(() => {
      if (ep !== epoch || finished) return finish();
      finish();
      void onHang(`decoder ${plan.kind} #${plan.i}: no answer within ${opt.hangMs} ms`, [], [plan]);
    }, opt.hangMs);
    s.on('error', () => {});
    s.on('close', () => {
      if (ep !== epoch || daemon.exited) return finish();
      if (!answer && plan.expect && !finished)
        violation('no header answer', { kind: plan.kind, header: preview(plan.bytes), expected: plan.expect });
      finish();
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (answer) {
        if (!answer.ok) violation('bytes after a refusal', { kind: plan.kind, header: preview(plan.bytes) });
        return;
      }
      const nl = buf.indexOf(0x0a);
      if (nl === -1) return;
      stats.headerAnswers++;
      clearTimeout(hang); // what follows an answer (a WAV stream's verdict) has its own deadline
      try {
        answer = JSON.parse(buf.subarray(0, nl).toString('utf8'));
      } catch {
        violation('header answer not JSON', { answer: preview(buf) });
        return finish();
      }
      if (buf.length > nl + 1 && !answer.ok) violation('bytes after a refusal', { kind: plan.kind });
      const after = afterAnswer(s, plan, answer, ep).then(finish);
      pendingAfter.add(after);
      void after.then(() => pendingAfter.delete(after));
    });
    s.once('connect', async () => {
      if (plan.destroy) {
        s.write(plan.bytes);
        await sleep(1);
        return finish();
      }
      for (const p of plan.pieces) {
        if (finished || answer) break;
        s.write(p);
        if (plan.pieces.length > 1) await new Promise((r) => setImmediate(r));
      }
      if (plan.end && !answer && !finished && !plan.expect?.ok) s.end();
    });
  });
}

async function afterAnswer(s, plan, answer, ep) {
  const want = plan.expect;
  if (!want) return;
  if (answer.ok !== true) {
    stats.headersRefused++;
    const okAlt = want.ok && answer.code === 'duplicate-id'; // a mutation made another job's id
    // a header dripped for longer than headerTimeoutMs (48 decoders at once) meets the deadline first
    const slow = plan.pieces.length > 1 && answer.code === 'header-timeout';
    if (!slow && (want.ok ? !okAlt : answer.code !== want.code))
      violation('wrong header answer', {
        kind: plan.kind,
        header: preview(plan.bytes),
        answer,
        expected: want,
        rule: want.rule,
      });
    return;
  }
  stats.headersAccepted++;
  if (!want.ok) {
    violation('wrong header answer', {
      kind: plan.kind,
      header: preview(plan.bytes),
      answer,
      expected: want,
      rule: want.rule,
    });
    // it is a track now: cancel it so that it does not stay
    if (!plan.bytes.includes('"wav"')) expectedArrived++;
  }
  let id = want.ok ? want.id : undefined;
  if (id === undefined) {
    // accepted against the model: cancel it too (its id as speakerd decoded it), so that it does not stay
    try {
      id = JSON.parse(plan.bytes.subarray(0, plan.bytes.indexOf(0x0a)).toString('utf8')).id;
    } catch {
      return;
    }
    if (typeof id !== 'string') return;
    s.end();
    pendingCancels.push(id);
    wakeWriter();
    return;
  }
  acceptedIds.add(id);
  if (plan.kind === 'dup') {
    const again = await new Promise((resolve) => {
      const t = connect(socketPath);
      let b = '';
      t.on('error', () => resolve(undefined));
      t.on('data', (d) => {
        b += d;
        if (b.includes('\n')) resolve(b.slice(0, b.indexOf('\n')));
      });
      t.on('close', () => resolve(b || undefined));
      t.write(plan.bytes.subarray(0, plan.bytes.indexOf(0x0a) + 1));
      setTimeout(() => resolve(undefined), opt.hangMs);
    });
    if (again) stats.headersRefused++;
    if (!again || JSON.parse(again).code !== 'duplicate-id')
      violation('wrong header answer', {
        kind: 'dup',
        header: preview(plan.bytes),
        answer: again,
        expected: 'duplicate-id',
      });
  }
  if (want.wav) {
    const verdict = new Promise((resolve) => wavWaiters.set(id, resolve));
    for (const p of plan.wavPieces) {
      if (ep !== epoch || s.destroyed) break;
      s.write(p);
      await new Promise((r) => setImmediate(r));
    }
    if (plan.wav.broken === 'cut') s.end();
    const v = await Promise.race([verdict, sleep(opt.hangMs).then(() => ({ timeout: true }))]);
    wavWaiters.delete(id);
    if (ep !== epoch || v.abandoned) return;
    if (v.timeout) {
      void onHang(
        `wav #${plan.i} (${plan.wav.broken || 'valid'}): no arrived/bad-header within ${opt.hangMs} ms`,
        [],
        [plan],
      );
      return;
    }
    if (plan.wav.broken) {
      stats.wavBad++;
      if (!v.bad) violation('wav not refused', { broken: plan.wav.broken, event: brief(v.arrived) });
    } else {
      stats.wavArrived++;
      expectedArrived++;
      if (!v.arrived) violation('wav refused', { event: brief(v.bad) });
      else if (JSON.stringify(v.arrived.format) !== JSON.stringify(plan.wav.format))
        violation('wav format', { got: v.arrived.format, expected: plan.wav.format });
    }
  } else {
    expectedArrived++;
    if (plan.pcm.length) s.write(plan.pcm);
  }
  s.end();
  pendingCancels.push(id);
  wakeWriter();
}

// --------------------------------------------------------------------- main

async function replayMain() {
  const kind = opt.replayLine ? 'line' : 'header';
  const bytes = readFileSync(opt.replayLine || opt.replayHeader);
  const r = await replayOne(kind, bytes);
  console.log(r.died ? `speakerd died:\n${r.stderr}` : r.hung ? `speakerd hung:\n${r.stderr}` : 'speakerd survived it');
  process.exitCode = r.died || r.hung ? 1 : 0;
}

async function main() {
  if (opt.replayLine || opt.replayHeader) return replayMain();
  if (process.env.FUZZ_GEN_ONLY) {
    const R = new Rng(mix(opt.seed, 1));
    for (let k = 0; k < opt.lines; k++) {
      const st = { ...R };
      const t = performance.now();
      controlLine(R, seqs);
      if (performance.now() - t > 100) console.log('slow line', k, st);
    }
    return;
  }
  dir = mkdtempSync(join(tmpdir(), 'speakerd-fuzz-'));
  const t0 = performance.now();
  if (!opt.json)
    console.log(
      `fuzz: seed ${opt.seed}, ${opt.lines} control lines, ${opt.headers} headers, ${opt.concurrency} decoders at once`,
    );
  try {
    writeConfig();
    const first = await startDaemon();
    // the play pool's tracks play (silence: their decoders never come), so plays and cancels meet every state
    await first.write(
      POOL.slice(0, 2)
        .map((id) => JSON.stringify({ type: 'play', id }) + '\n')
        .join(''),
    );
    let h = 0;
    const next = () => (h < opt.headers ? h++ : undefined);
    const writer = controlWriter();
    await Promise.all(Array.from({ length: opt.concurrency }, () => headerWorker(next)));
    await Promise.all([...pendingAfter]);
    headersDone = true;
    wakeWriter();
    await writer;
    if (restarting) await restarting;
    // the last answers (reloads, the last batch's: the writer returns once it has written them) and the decoder
    // refusals' events; an answer still missing after 10 s is a violation below
    const end = performance.now() + 10_000;
    while (
      performance.now() < end &&
      ([...expected.values()].some((x) => x.async || (!x.status && x.got.length < x.min)) ||
        unseqReloads.got < unseqReloads.sent)
    )
      await sleep(50);
    const elapsed = (performance.now() - t0) / 1000;
    const last = procSample(daemon.pid);
    for (const [seq, x] of expected)
      if (!x.status && x.got.length < x.min)
        violation('missing answer', { seq, line: preview(x.line), expected: x.types });
    if (unseqReloads.got !== unseqReloads.sent)
      violation('reload answers', { sent: unseqReloads.sent, got: unseqReloads.got });
    if (stats.crashes === 0 && stats.hangs === 0) {
      if (refusalEvents !== stats.headersRefused && Math.abs(refusalEvents - stats.headersRefused) > countDestroys())
        violation('refusal events', { events: refusalEvents, refusals: stats.headersRefused });
      // (where headers the model refuses were accepted, which of them arrive is not modelled)
      if (stats.idRuleViolations === 0 && arrivedCount !== expectedArrived)
        violation('arrived events', { got: arrivedCount, expected: expectedArrived });
    }
    shuttingDown = true;
    await daemon.stop();
    const sorted = [...latencies].sort((a, b) => a - b);
    const summary = {
      ...stats,
      elapsedS: round(elapsed, 1),
      linesPerS: Math.round(stats.lines / elapsed),
      headersPerS: Math.round(stats.headers / elapsed),
      status: {
        n: sorted.length,
        p50: round(quantile(sorted, 0.5)),
        p99: round(quantile(sorted, 0.99)),
        max: round(sorted[sorted.length - 1]),
      },
      fds: { start: first.base?.fds, end: last?.fds },
      rssMb: { start: mb(first.base?.rssKb), end: mb(last?.rssKb) },
      refusalEvents,
      arrivedEvents: arrivedCount,
      crashList: crashes,
      hangList: hangs,
      problems,
    };
    if (opt.json) console.log(JSON.stringify(summary));
    else printSummary(summary);
    process.exitCode = stats.crashes || stats.hangs || stats.violations || stats.idRuleViolations ? 1 : 0;
  } finally {
    if (daemon && !daemon.exited) await daemon.kill();
    if (keepDir) console.error(`culprits kept in ${join(dir, 'keep')}`);
    else rmSync(dir, { recursive: true, force: true });
    if (keepDir) rmSync(join(dir, 'run'), { recursive: true, force: true });
  }
}

let destroys = 0;
function countDestroys() {
  if (!destroys) for (let i = 0; i < stats.headers; i++) if (headerPlanKind(i) === 'destroy') destroys++;
  return destroys;
}
function headerPlanKind(i) {
  return headerPlan(new Rng(mix(opt.seed, 2, i)), i).kind;
}

const round = (x, d = 2) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const mb = (kb) => (Number.isFinite(kb) ? round(kb / 1024, 1) : undefined);

function printSummary(s) {
  const out = [
    `fuzz: seed ${s.seed}: ${s.elapsedS} s`,
    `  control lines  ${s.lines} (${(s.linesBytes / 2 ** 20).toFixed(1)} MiB, ${s.deepLines} deep or long), ${s.linesPerS} lines/s`,
    `  answers        ${s.answers} events (${s.seqAnswers} echoing a seq, ${s.unseqAnswers} without); ${s.status.n} status probes`,
    `  headers        ${s.headers}, ${s.headersPerS}/s: ${s.headersAccepted} accepted, ${s.headersRefused} refused; wav ${s.wavArrived} arrived, ${s.wavBad} refused`,
    `  status latency p50 ${s.status.p50} ms, p99 ${s.status.p99} ms, max ${s.status.max} ms`,
    `  speakerd       fds ${s.fds.start} -> ${s.fds.end}, RSS ${s.rssMb.start} -> ${s.rssMb.end} MB`,
    `  crashes ${s.crashes}, hangs ${s.hangs}, protocol violations ${s.violations}, id-rule violations ${s.idRuleViolations}`,
  ];
  for (const c of s.crashList)
    out.push(
      `  CRASH (exit ${c.code ?? c.signal}): ${c.signature}`,
      `    culprit: ${JSON.stringify(c.culprit)}`,
      c.replay ? `    replay: ${c.replay}` : '',
    );
  for (const h of s.hangList) out.push(`  HANG: ${h.what}`, `    culprit: ${JSON.stringify(h.culprit)}`);
  for (const p of s.problems.slice(0, 20)) out.push(`  ${p.kind}: ${JSON.stringify(p).slice(0, 400)}`);
  console.log(out.filter(Boolean).join('\n'));
}

await main();
