// Writes openapi.yaml from the route schemas (the single source of truth).
// Usage: npm run openapi  (test/http/openapi.test.ts fails when the committed file drifts)
import { writeFile } from 'node:fs/promises';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';

export async function renderOpenApi(): Promise<string> {
  const app = await buildApp(loadConfig({}), { logger: false, skipModels: true });
  await app.ready();
  const yaml = app.swagger({ yaml: true });
  await app.close();
  return yaml;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(new URL('../openapi.yaml', import.meta.url), await renderOpenApi());
  console.log('wrote openapi.yaml');
}
