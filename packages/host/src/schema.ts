import { dirname } from 'node:path';
import { SpeakerdError, isSpeakerdError, issuesFromZod, z } from '@speakerd/plugin-sdk';
import { ConfigError, findConfigFile } from './config.js';
import { HOST_KEYS, hostConfigSchema } from './config-schema.js';
import { BUILTIN_PLUGINS, findInstalledPlugins, loadPlugins, sectionsInOrder, type PluginSet } from './plugins.js';

/**
 * The JSON Schema of speakerrc, made from the zod schemas speakerd validates with: the host's keys at the top,
 * and one property per plugin, its section, from the plugin's own `options` schema.
 *
 * Draft-07: the newest draft VS Code's JSON language service (and the YAML language server) support in full
 * (2019-09 and 2020-12 only in part, with a warning in older versions), and the one ajv's default class takes.
 * Nothing here needs a newer draft.
 */
export const JSON_SCHEMA_DRAFT = 'http://json-schema.org/draft-07/schema#';

/** A JSON Schema, as plain JSON. */
export type JsonSchema = Record<string, unknown>;

/** A plugin section of the schema: the key in speakerrc and the plugin's options schema. */
export interface SchemaSection {
  readonly name: string;
  /** A zod schema (or any Standard JSON Schema), as in {@link SpeakerdPlugin.options}. */
  readonly options: unknown;
  /** Used when the schema carries no description of its own. */
  readonly description?: string;
}

interface StandardJsonSchema {
  readonly '~standard': {
    readonly jsonSchema: { readonly input: (options: { target: string; libraryOptions?: object }) => JsonSchema };
  };
}

function hasStandardJsonSchema(value: unknown): value is StandardJsonSchema {
  const std = (value as { '~standard'?: { jsonSchema?: { input?: unknown } } } | null)?.['~standard'];
  return typeof std?.jsonSchema?.input === 'function';
}

/**
 * One schema as draft-07 JSON Schema of what a person writes: the input side, so a key with a default is optional,
 * and its default is shown. What JSON Schema cannot say (a refine function, a transform) is left out: the schema
 * then accepts more than speakerd does, never less. Undefined when the schema cannot be converted at all.
 */
export function toJsonSchema(schema: unknown): JsonSchema | undefined {
  const params = { target: 'draft-07', io: 'input', unrepresentable: 'any' } as const;
  try {
    // a plugin's schema may come from another copy of zod (or another library): let it convert itself, with
    // its own registry of descriptions, where it can (Standard JSON Schema)
    const json = hasStandardJsonSchema(schema)
      ? schema['~standard'].jsonSchema.input({ target: params.target, libraryOptions: params })
      : z.toJSONSchema(schema as z.ZodType, params);
    const { $schema: _draft, ...rest } = json;
    return rest;
  } catch {
    return undefined;
  }
}

/** Make the `$ref`s of a schema that is to live at `pointer` inside a bigger one point into it. */
function rebaseRefs<T>(value: T, pointer: string): T {
  if (Array.isArray(value)) return value.map((v: unknown) => rebaseRefs(v, pointer)) as T;
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#') ? pointer + v.slice(1) : rebaseRefs(v, pointer);
  return out as T;
}

function pointerTo(key: string): string {
  return `#/properties/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/**
 * The JSON Schema of a configuration with these plugin sections (in this order), plus `unloaded`: keys of
 * installed plugins the configuration does not load, whose sections speakerd keeps without checking them.
 */
export function buildConfigSchema(sections: readonly SchemaSection[], unloaded: readonly string[] = []): JsonSchema {
  const host = toJsonSchema(hostConfigSchema);
  if (!host) throw new Error('the host configuration schema has no JSON Schema');
  const properties: Record<string, unknown> = { ...(host.properties as Record<string, unknown>) };
  for (const s of sections) {
    if (HOST_KEYS.has(s.name)) continue;
    const json = toJsonSchema(s.options);
    const fallback = `The section of the plugin ${s.name}${s.description ? ` (${s.description})` : ''}.`;
    properties[s.name] = json
      ? { ...(json.description === undefined ? { description: fallback } : {}), ...rebaseRefs(json, pointerTo(s.name)) }
      : { description: `${fallback} Its options schema has no JSON Schema; speakerd checks it.` };
  }
  for (const name of unloaded)
    if (!(name in properties))
      properties[name] = {
        description:
          `The section of ${name}, a plugin installed but not loaded by this configuration (name it in ` +
          '"backend" or "plugins" to use it): speakerd keeps it without checking it.',
      };
  return {
    $schema: JSON_SCHEMA_DRAFT,
    title: 'speakerrc',
    description:
      "speakerd's configuration: the host's keys and one section per plugin, named after the plugin " +
      '(docs/PROTOCOL.md section 4). Any other key is an error.',
    type: 'object',
    properties,
    ...(host.required === undefined ? {} : { required: host.required }),
    additionalProperties: false,
  };
}

/**
 * The schema of speakerd itself: the host's keys and the built-in plugins' sections, whatever is installed or
 * configured. This is `packages/host/speakerrc.schema.json`.
 */
export async function builtinConfigSchema(): Promise<JsonSchema> {
  const builtins = Object.keys(BUILTIN_PLUGINS);
  return buildConfigSchema(sectionsInOrder(await loadPlugins(builtins[0]!, builtins, process.cwd())));
}

/**
 * The schema for the configuration found (`--config FILE`, else the search from `cwd`): the host's keys, the
 * section of every plugin it loads (the built-ins, its backend, its `plugins`), and the sections of installed
 * plugins it does not load. Without a file: the host's keys, the built-ins and the installed plugins.
 *
 * The rest of the configuration may have mistakes (the schema is there to find them); what must be right is
 * what says which plugins to load: the file parses, `backend` and `plugins` are valid, and each plugin loads.
 */
export async function configSchema(explicit: string | undefined, cwd = process.cwd()): Promise<JsonSchema> {
  const { file, raw } = await findConfigFile(explicit, cwd);
  const dir = file ? dirname(file) : cwd;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(file, [{ path: [], message: `expected an object, got ${JSON.stringify(raw)}` }]);
  const record = raw as Record<string, unknown>;
  const which = hostConfigSchema
    .pick({ backend: true, plugins: true })
    .safeParse({ backend: record.backend, plugins: record.plugins });
  if (!which.success) throw new ConfigError(file, issuesFromZod(which.error));
  const { backend, plugins: extra } = which.data;
  let plugins: PluginSet;
  try {
    plugins = await loadPlugins(backend, extra, dir);
  } catch (err) {
    if (!isSpeakerdError(err)) throw err;
    const where = extra.includes(err.plugin ?? '') ? 'plugins' : 'backend';
    throw new SpeakerdError(err.code, `${file ?? '(no configuration file)'}: ${where}: ${err.message}`, {
      ...(err.plugin === undefined ? {} : { plugin: err.plugin }),
      cause: err,
    });
  }
  // as speakerd matches the keys of sections it keeps unchecked: the package's short name without its scope
  const unloaded = findInstalledPlugins(dir)
    .map((p) => p.name.replace(/^@[^/]+\//, ''))
    .filter((name) => !plugins.byName.has(name) && !plugins.sections.has(name) && !HOST_KEYS.has(name));
  return buildConfigSchema(sectionsInOrder(plugins), [...new Set(unloaded)]);
}

/** A schema as `speakerd schema` prints it. */
export function schemaToText(schema: JsonSchema): string {
  return JSON.stringify(schema, null, 2) + '\n';
}
