// One-off check, not run by the tests (kubectl is not a dependency): renders every overlay with
// tools/deploy/kustomize.ts and with `kubectl kustomize`, and compares the objects (parsed, sorted by
// kind and name, deep-equal), and reports anything kubectl printed on stderr (deprecation warnings).
// Usage: npx tsx tools/deploy/crosscheck-kubectl.ts [kubectl]   (docs/deploy.md, Validation)
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { render, sortObjects, type K8sObject } from './kustomize.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const kubectl = process.argv[2] ?? 'kubectl';
const dirs = [
  ...readdirSync(join(ROOT, 'deploy/k8s/overlays')).map((d) => join('deploy/k8s/overlays', d)),
  ...readdirSync(join(ROOT, 'test/deploy/fixtures/kustomize')).map((d) => join('test/deploy/fixtures/kustomize', d)).filter((d) => !d.endsWith('.yaml')),
];
console.log(execFileSync(kubectl, ['version', '--client'], { encoding: 'utf8' }).trim().replace(/\n/g, '; '));
let failed = 0;
for (const dir of dirs) {
  const r = spawnSync(kubectl, ['kustomize', join(ROOT, dir)], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.log(`✗ ${dir}: kubectl kustomize failed: ${r.stderr.trim()}`);
    failed++;
    continue;
  }
  const theirs = sortObjects(parseAllDocuments(r.stdout).map((d) => (Array.isArray(d) ? d : d.toJS())).filter(Boolean) as K8sObject[]);
  const ours = sortObjects(render(join(ROOT, dir), { root: ROOT }).map((x) => x.object));
  const same = isDeepStrictEqual(JSON.parse(JSON.stringify(theirs)), JSON.parse(JSON.stringify(ours)));
  const warnings = r.stderr.trim();
  console.log(`${same && !warnings ? '✓' : '✗'} ${dir}: ${ours.length} objects, ${same ? 'identical to' : 'DIFFERENT from'} kubectl kustomize${warnings ? `; kubectl warned: ${warnings}` : ', no warnings'}`);
  if (!same) {
    console.log('--- kubectl\n' + JSON.stringify(theirs, null, 1).slice(0, 4000) + '\n--- ours\n' + JSON.stringify(ours, null, 1).slice(0, 4000));
  }
  if (!same || warnings) failed++;
}
process.exit(failed ? 1 : 0);
