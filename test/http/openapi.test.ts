// openapi.yaml is generated from the route schemas; this fails when the committed file drifts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { renderOpenApi } from '../../tools/gen-openapi.js';

test('committed openapi.yaml matches the route schemas (run `npm run openapi` after changing them)', async () => {
  const committed = await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8');
  const generated = await renderOpenApi();
  assert.equal(committed, generated);
  for (const path of ['/encode', '/decode', '/sample', '/likelihood', '/models', '/healthz', '/readyz', '/metrics']) assert.ok(generated.includes(`  ${path}:`), path);
});
