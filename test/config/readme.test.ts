// The README's configuration table must list every variable the config schema reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ConfigSchema, envName } from '../../src/config/config.js';

test('README documents every configuration variable', async () => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  for (const key of Object.keys(ConfigSchema.properties)) assert.ok(readme.includes(`| \`${envName(key)}\` |`), `${envName(key)} missing from README`);
});
