// Writes the JSON Schema of flow.json (ManifestSchema, src/config/manifest-schema.ts) into the Python
// exporter, which validates every manifest against it before writing a package: one schema, so the
// exporter cannot accept a manifest the service refuses at load.
//   npm run schema:manifest            regenerate exporter/flowexport/manifest.schema.json
//   npm run schema:manifest -- --check exit 1 if the committed copy differs (CI, test/config/manifest-schema.test.ts)
//   [--path FILE]                      another target (the test's drift check writes a stale copy there)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ManifestSchema } from '../src/config/manifest-schema.js';

export const SCHEMA_PATH = fileURLToPath(new URL('../exporter/flowexport/manifest.schema.json', import.meta.url));

/** The committed text: TypeBox schemas are JSON Schema (draft 7 keywords) plus symbol keys, which JSON drops. */
export function manifestSchemaText(): string {
  const schema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $comment: 'Generated from src/config/manifest-schema.ts by `npm run schema:manifest`; do not edit.',
    title: 'flowserve flow.json, format version 1 (docs/model-package.md)',
    ...(JSON.parse(JSON.stringify(ManifestSchema)) as object),
  };
  return JSON.stringify(schema, null, 2) + '\n';
}

function main(argv: string[]): number {
  const want = manifestSchemaText();
  const at = argv.indexOf('--path');
  const path = at >= 0 ? argv[at + 1] : SCHEMA_PATH;
  if (argv.includes('--check')) {
    let have = '';
    try {
      have = readFileSync(path, 'utf8');
    } catch {
      /* missing counts as drift */
    }
    if (have === want) return 0;
    console.error(`${path} is out of date with src/config/manifest-schema.ts: run npm run schema:manifest`);
    return 1;
  }
  writeFileSync(path, want);
  console.log(`wrote ${path}`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
