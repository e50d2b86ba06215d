// The JSON Schema of speakerrc (packages/host/speakerrc.schema.json, `speakerd schema`): made from the zod schemas
// speakerd validates with, kept in sync with them, and agreeing with speakerd on what is valid, checked by a real
// JSON Schema validator (ajv) next to `speakerd check-config`.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from '@speakerd/plugin-sdk';
import { HOST_KEYS } from '../packages/host/src/config-schema.js';
import { JSON_SCHEMA_DRAFT, buildConfigSchema, toJsonSchema } from '../packages/host/src/schema.js';
import { REPO, hasStackTrace, runNode, runSpeakerd, tempDir, type RunResult } from './helpers/cli.js';

const SCHEMA_FILE = join(REPO, 'packages/host/speakerrc.schema.json');
const BUILTINS = ['alsa', 'command', 'rtp', 'snapcast'];
/** The host keys of PROTOCOL.md section 4, and `$schema`. */
const DOCUMENTED_HOST_KEYS = [
  '$schema',
  'backend',
  'plugins',
  'socket',
  'format',
  'bufferMs',
  'maxBufferMB',
  'unplayedTimeoutMs',
  'earlyFinishMs',
  'reportIntervalMs',
  'headerTimeoutMs',
  'maxTracks',
  'volume',
];

type Schema = { $schema: string; properties: Record<string, any>; additionalProperties: unknown };

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

function dir(): string {
  const t = tempDir('speakerd-schema-');
  cleanups.push(t.cleanup);
  return t.dir;
}

function committed(): Schema {
  return JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Schema;
}

/** ajv in strict mode: a keyword it does not know, or a schema that is not valid draft-07, fails to compile. */
function compile(schema: object): ValidateFunction {
  return new Ajv({ strict: true, allErrors: true }).compile(schema);
}

/** The example configuration of PROTOCOL.md section 4 (JSON with `//` comments). */
function protocolExample(): Record<string, unknown> {
  const doc = readFileSync(join(REPO, 'docs/PROTOCOL.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## 4. speakerrc'));
  const block = /```jsonc\n([\s\S]*?)\n```/.exec(section)?.[1];
  if (block === undefined) throw new Error('no jsonc block in section 4 of docs/PROTOCOL.md');
  return JSON.parse(block.replace(/\s+\/\/.*$/gm, '')) as Record<string, unknown>;
}

async function schemaOf(cwd: string, extra: string[] = []): Promise<Schema> {
  const r = await runSpeakerd(['schema', '--allow-root', ...extra], { cwd });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Schema;
}

async function checkConfig(config: unknown): Promise<RunResult> {
  const d = dir();
  writeFileSync(join(d, '.speakerrc.json'), JSON.stringify(config));
  return runSpeakerd(['check-config', '--allow-root'], { cwd: d });
}

describe('packages/host/speakerrc.schema.json', () => {
  it('is the one the zod schemas make (regenerate it with "npm run schema")', async () => {
    const r = await runNode(['packages/host/scripts/schema.js', '--print']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(
      r.stdout,
      'packages/host/speakerrc.schema.json differs from what the zod schemas make: run "npm run schema" and ' +
        'commit the file',
    ).toBe(readFileSync(SCHEMA_FILE, 'utf8'));
  });

  it('is draft-07 with the host keys and the built-in sections as properties, and nothing else allowed', () => {
    const schema = committed();
    expect(schema.$schema).toBe(JSON_SCHEMA_DRAFT);
    expect(Object.keys(schema.properties)).toEqual([...DOCUMENTED_HOST_KEYS, ...BUILTINS]);
    expect(Object.keys(schema.properties)).toEqual([...HOST_KEYS, ...BUILTINS]);
    expect(schema.additionalProperties).toBe(false);
    for (const [key, sub] of Object.entries(schema.properties))
      expect(typeof sub.description, `${key} has a description`).toBe('string');
    for (const [key, sub] of Object.entries(schema.properties.rtp.properties as Record<string, any>))
      expect(typeof sub.description, `rtp.${key} has a description`).toBe('string');
    compile(schema);
  });
});

describe('speakerd schema', () => {
  it('prints the schema as JSON, exit 0: every host key, the built-ins, and installed plugins it does not load', async () => {
    const schema = await schemaOf(dir());
    for (const key of [...DOCUMENTED_HOST_KEYS, ...BUILTINS]) expect(schema.properties).toHaveProperty([key]);
    // the repository's example plugin is installed (a workspace), but no configuration loads it: its section is
    // allowed, unchecked, as speakerd keeps it
    expect(schema.properties.recorder.description).toContain('not loaded');
    expect(Object.keys(schema.properties.recorder)).toEqual(['description']);
    const { recorder: _recorder, ...rest } = schema.properties;
    expect({ ...schema, properties: rest }).toEqual(committed());
    compile(schema);
  });

  it('is listed in --help', async () => {
    const r = await runSpeakerd(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\n\s+schema \[options\]\s+print the JSON Schema of speakerrc/);
  });

  it('takes --config and adds the section of every plugin that configuration loads, from its zod schema', async () => {
    const d = dir();
    mkdirSync(join(d, 'node_modules', '@speakerd'), { recursive: true });
    symlinkSync(join(REPO, 'packages/plugin-sdk'), join(d, 'node_modules', '@speakerd', 'plugin-sdk'));
    mkdirSync(join(d, 'outside'));
    writeFileSync(join(d, 'outside', 'package.json'), JSON.stringify({ name: 'outside', type: 'module' }));
    writeFileSync(
      join(d, 'outside', 'index.js'),
      `import { definePlugin, z, intRange } from '@speakerd/plugin-sdk';
export default definePlugin({
  manifest: { name: 'outside', version: '1.2.3', sdk: '^0.1.0', description: 'a plugin from elsewhere' },
  options: z.strictObject({ level: intRange(0, 10).default(3).describe('How loud.') }).prefault({}),
});
`,
    );
    mkdirSync(join(d, 'etc'));
    // a mistake elsewhere in the configuration does not stop it: the schema is there to find such mistakes
    writeFileSync(
      join(d, 'etc', 'mine.json'),
      JSON.stringify({ plugins: ['../outside'], outside: { level: 50 }, rtp: { port: 'abc' } }),
    );
    const schema = await schemaOf(d, ['--config', 'etc/mine.json']);
    expect(schema.properties.outside).toEqual({
      description: 'The section of the plugin outside (a plugin from elsewhere).',
      default: {},
      type: 'object',
      properties: { level: { default: 3, description: 'How loud.', type: 'integer', minimum: 0, maximum: 10 } },
      additionalProperties: false,
    });
    const validate = compile(schema);
    expect(validate({ plugins: ['../outside'], outside: { level: 5 } })).toBe(true);
    expect(validate({ plugins: ['../outside'], outside: { level: 50 } })).toBe(false);
    expect(validate.errors?.[0]?.instancePath).toBe('/outside/level');
  });

  it('fails with exit 2 when the configuration does not say which plugins to load', async () => {
    const d = dir();
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ backend: './not-here' }));
    const r = await runSpeakerd(['schema', '--allow-root'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('SPEAKERD_ERR_PLUGIN_NOT_FOUND');
    expect(r.stderr).toContain('backend:');
    expect(hasStackTrace(r.stderr)).toBe(false);

    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ backend: 5 }));
    const r2 = await runSpeakerd(['schema', '--allow-root'], { cwd: d });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('backend: expected a backend name, package name or path, got 5');
  });
});

describe('"$schema" in speakerrc', () => {
  it('is accepted and ignored: check-config validates it and does not print it', async () => {
    const config = { $schema: SCHEMA_FILE, backend: 'rtp', rtp: { port: 5008 } };
    expect(compile(committed())(config)).toBe(true);
    const r = await checkConfig(config);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { config: Record<string, unknown> };
    expect(out.config).not.toHaveProperty('$schema');
    expect(out.config.rtp).toMatchObject({ port: 5008 });
  });

  it('must be a string', async () => {
    const r = await checkConfig({ $schema: 5 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('$schema: expected a JSON Schema path or URL, got 5');
  });
});

describe('the JSON Schema and speakerd agree', () => {
  const valid: [string, unknown][] = [
    ['the example of PROTOCOL.md section 4', protocolExample()],
    ['an empty configuration', {}],
    ['a mixer by name', { alsa: { mixer: 'PCM' } }],
    ['a mixer with a control and no index', { alsa: { mixer: { control: 'Master' } } }],
    ['a dynamic payload type', { rtp: { payloadType: 100 } }],
    ['a fractional volume', { volume: 37.5 }],
  ];
  for (const [what, config] of valid)
    it(`both accept ${what}`, async () => {
      const validate = compile(committed());
      expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
      const r = await checkConfig(config);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });

  // [what, config, the key path speakerd names, what ajv says: where and which keyword]
  const invalid: [string, unknown, string, { instancePath: string; keyword: string }][] = [
    [
      'rtp.port given as a string',
      { rtp: { port: 'abc' } },
      'rtp.port',
      { instancePath: '/rtp/port', keyword: 'type' },
    ],
    [
      'rtp.port 65535 (RTCP needs port + 1)',
      { rtp: { port: 65535 } },
      'rtp.port',
      { instancePath: '/rtp/port', keyword: 'maximum' },
    ],
    ['an unknown top-level key', { bufferMS: 100 }, 'bufferMS', { instancePath: '', keyword: 'additionalProperties' }],
    [
      'an unknown key in a plugin section',
      { command: { runn: 'cat' } },
      'command.runn',
      { instancePath: '/command', keyword: 'additionalProperties' },
    ],
    [
      'an unknown encoding',
      { format: { encoding: 's17', rate: 44100, channels: 2 } },
      'format.encoding',
      { instancePath: '/format/encoding', keyword: 'enum' },
    ],
    [
      'a format without its rate',
      { format: { encoding: 's16le', channels: 2 } },
      'format.rate',
      { instancePath: '/format', keyword: 'required' },
    ],
    ['a volume given as a word', { volume: 'loud' }, 'volume', { instancePath: '/volume', keyword: 'type' }],
    ['a fractional bufferMs', { bufferMs: 100.5 }, 'bufferMs', { instancePath: '/bufferMs', keyword: 'type' }],
    ['an empty backend', { backend: '' }, 'backend', { instancePath: '/backend', keyword: 'minLength' }],
    [
      'a mixer index out of range',
      { alsa: { mixer: { control: 'Master', index: 256 } } },
      'alsa.mixer',
      { instancePath: '/alsa/mixer/index', keyword: 'maximum' },
    ],
    ['"$schema" given as a number', { $schema: 5 }, '$schema', { instancePath: '/$schema', keyword: 'type' }],
  ];
  for (const [what, config, keyPath, error] of invalid)
    it(`both reject ${what}`, async () => {
      const validate = compile(committed());
      expect(validate(config)).toBe(false);
      expect(validate.errors).toContainEqual(expect.objectContaining(error));
      const r = await checkConfig(config);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`.speakerrc.json: ${keyPath}`);
    });

  it('where JSON Schema cannot say it (one key compared with another), the schema accepts more, never less', async () => {
    const config = { command: { restartMinMs: 500, restartMaxMs: 200 } };
    expect(compile(committed())(config)).toBe(true);
    const r = await checkConfig(config);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('command.restartMaxMs: must not be less than restartMinMs (500), got 200');
  });
});

describe('buildConfigSchema', () => {
  it('keeps the references of a plugin schema pointing into its section', () => {
    const Level = intLevel().meta({ id: 'Level' });
    const options = z.strictObject({ low: Level, high: Level });
    const schema = buildConfigSchema([{ name: 'refs', options }]);
    const section = (schema.properties as Record<string, any>).refs;
    expect(section.properties.low).toEqual({ $ref: '#/properties/refs/definitions/Level' });
    expect(section.definitions.Level).toMatchObject({ type: 'integer', maximum: 10 });
    const validate = compile(schema);
    expect(validate({ refs: { low: 3, high: 10 } })).toBe(true);
    expect(validate({ refs: { low: 11 } })).toBe(false);
  });

  it('gives a plugin whose options schema has no JSON Schema a section that accepts anything', () => {
    const notZod = { safeParse: () => ({ success: true, data: {} }) };
    expect(toJsonSchema(notZod)).toBeUndefined();
    const schema = buildConfigSchema([{ name: 'opaque', options: notZod, description: 'made by hand' }]);
    const section = (schema.properties as Record<string, any>).opaque;
    expect(section).toEqual({
      description:
        'The section of the plugin opaque (made by hand). Its options schema has no JSON Schema; speakerd checks it.',
    });
    expect(compile(schema)({ opaque: { anything: [1, 2] } })).toBe(true);
  });
});

function intLevel() {
  return z.number().int().min(0).max(10);
}
