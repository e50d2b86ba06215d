// docs/configuration.md, the reference of every speakerrc key, is made by packages/host/scripts/config-doc.js from
// the JSON Schema speakerd's zod schemas make; it must be the page the generator makes now.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runNode } from './helpers/cli.js';

const DOC = join(REPO, 'docs/configuration.md');
const SCHEMA_FILE = join(REPO, 'packages/host/speakerrc.schema.json');

describe('docs/configuration.md', () => {
  it('is the page the JSON Schema makes (regenerate it with "npm run docs:config")', async () => {
    const r = await runNode(['packages/host/scripts/config-doc.js', '--print']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(
      r.stdout,
      'docs/configuration.md differs from what packages/host/scripts/config-doc.js makes: run ' +
        '"npm run docs:config" and commit the file',
    ).toBe(readFileSync(DOC, 'utf8'));
  });

  it('has an entry with type, default and an example for every key of the committed schema', () => {
    const doc = readFileSync(DOC, 'utf8');
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as { properties: Record<string, any> };
    const keys: string[] = [];
    for (const [k, s] of Object.entries(schema.properties)) {
      if (['alsa', 'command', 'rtp', 'snapcast'].includes(k))
        for (const sub of Object.keys(s.properties)) keys.push(`${k}.${sub}`);
      else keys.push(k);
    }
    for (const key of keys) {
      const at = doc.indexOf(`\n### \`${key}\`\n`);
      expect(at, `${key} has an entry`).toBeGreaterThan(0);
      const next = doc.indexOf('\n### ', at + 1);
      const body = doc.slice(at, next < 0 ? undefined : next);
      expect(body, key).toMatch(/\n- Type: /);
      expect(body, key).toMatch(/\n- Default: /);
      expect(body, key).toContain('```json');
    }
  });
});
