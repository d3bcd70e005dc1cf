// The README's configuration table is generated from the config schema; this fails when it drifts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ConfigSchema, envName } from '../../src/config/config.js';
import { withTable } from '../../tools/gen-config-table.js';

test('README configuration table matches the config schema (run `npm run docs:config` after changing it)', async () => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  assert.equal(readme, withTable(readme));
  for (const key of Object.keys(ConfigSchema.properties)) assert.ok(readme.includes(`| \`${envName(key)}\` |`), `${envName(key)} missing from README`);
});
