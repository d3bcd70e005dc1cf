// The Python exporter validates manifests against a committed JSON copy of ManifestSchema
// (exporter/flowexport/manifest.schema.json). If the TypeBox schema changes without regenerating
// it, the exporter would accept packages the service refuses (or the reverse): this test fails then.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManifestSchema } from '../../src/config/manifest-schema.js';
import { SCHEMA_PATH, manifestSchemaText } from '../../tools/gen-manifest-schema.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const gen = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'tools/gen-manifest-schema.ts', ...args], { cwd: ROOT, encoding: 'utf8' });

test('the committed manifest JSON Schema is the one generated from src/config/manifest-schema.ts', () => {
  assert.equal(readFileSync(SCHEMA_PATH, 'utf8'), manifestSchemaText(), 'stale exporter/flowexport/manifest.schema.json: run npm run schema:manifest');
});

test('the generated schema is plain JSON Schema: draft 7, TypeBox symbol keys gone, every property of ManifestSchema present', () => {
  const schema = JSON.parse(manifestSchemaText());
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.deepEqual(Object.keys(schema.properties), Object.keys(ManifestSchema.properties));
  assert.deepEqual(schema.required, ManifestSchema.required);
  assert.ok(manifestSchemaText().endsWith('}\n'));
});

test('schema:manifest --check exits 0 on the committed copy and 1 on a stale one', () => {
  const ok = gen('--check');
  assert.equal(ok.status, 0, ok.stderr);
  const stale = join(mkdtempSync(join(tmpdir(), 'manifest-schema-')), 'manifest.schema.json');
  writeFileSync(stale, manifestSchemaText().replace('"maximum": 2', '"maximum": 3'));
  const drift = gen('--check', '--path', stale);
  assert.equal(drift.status, 1, drift.stdout + drift.stderr);
  assert.match(drift.stderr, /out of date/);
});
