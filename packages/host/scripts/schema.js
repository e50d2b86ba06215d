// Writes packages/host/speakerrc.schema.json, the JSON Schema of speakerrc (the host's keys and the built-in
// plugins' sections), from the zod schemas speakerd validates with. Run `npm run schema` at the root (it builds
// first). With --print the schema is printed instead, formatted as committed: test/schema.test.ts compares that
// with the file.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { builtinConfigSchema, schemaToText } from '../dist/schema.js';

const file = fileURLToPath(new URL('../speakerrc.schema.json', import.meta.url));
const options = { ...(await prettier.resolveConfig(file)), filepath: file };
const text = await prettier.format(schemaToText(await builtinConfigSchema()), options);
if (process.argv.includes('--print')) process.stdout.write(text);
else await writeFile(file, text);
