// The deployment manifests (deploy/k8s, deploy/kserve; docs/deploy.md): the validator passes on
// them and fails, naming the rule, on broken copies; the Kustomize renderer matches kubectl's output
// for every feature it implements and refuses what it does not; and the server runs as the
// manifests run it: read-only root filesystem, uid 1000, a writable /tmp only, models from a
// read-only volume at /mnt/models.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { KustomizeError, render, sortObjects, type K8sObject } from '../../tools/deploy/kustomize.js';
import { metricNames } from '../../tools/deploy/promql.js';
import { containerEnv, dockerfileEnv, ROOT, validateDeploy, type Problem } from '../../tools/deploy/validate.js';

const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A copy of deploy/k8s and deploy/kserve (and the Dockerfile) to break. */
function copyOfDeploy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowserve-deploy-'));
  temps.push(dir);
  cpSync(join(ROOT, 'deploy/k8s'), join(dir, 'deploy/k8s'), { recursive: true });
  cpSync(join(ROOT, 'deploy/kserve'), join(dir, 'deploy/kserve'), { recursive: true });
  cpSync(join(ROOT, 'Dockerfile'), join(dir, 'Dockerfile'));
  return dir;
}

/** Edit the YAML documents of one file in a copy (comments are lost; the objects are what matter). */
function edit(root: string, file: string, fn: (docs: any[]) => void) {
  const path = join(root, file);
  const docs = parseAllDocuments(readFileSync(path, 'utf8')).map((d) => (Array.isArray(d) ? d : d.toJS()));
  fn(docs);
  writeFileSync(path, docs.map((d) => stringify(d)).join('---\n'));
}

async function problemsAfter(file: string, fn: (docs: any[]) => void, only: string[]): Promise<Problem[]> {
  const root = copyOfDeploy();
  edit(root, file, fn);
  return (await validateDeploy({ root, only })).problems;
}

function assertRule(problems: Problem[], rule: string, text: RegExp) {
  assert.ok(problems.length > 0, 'the validator passed');
  const hit = problems.find((p) => p.rule === rule && text.test(p.message));
  assert.ok(hit, `expected a [${rule}] problem matching ${text}; got:\n${problems.map((p) => `[${p.rule}] ${p.file} ${p.object}: ${p.message}`).join('\n')}`);
  return hit;
}

const DEPLOYMENT = 'deploy/k8s/base/deployment.yaml';
const RUNTIME = 'deploy/kserve/servingruntime.yaml';
const container = (docs: any[]) => docs[0].spec.template.spec.containers[0];

describe('validator on the repository manifests', () => {
  test('every overlay and KServe object validates, with no problem', async () => {
    const report = await validateDeploy();
    assert.deepEqual(report.problems, []);
    const ids = report.checked.map((c) => `${c.set} ${c.object}`);
    for (const overlay of ['cpu', 'cuda', 'cpu-pvc'])
      for (const o of ['Deployment/flowserve', 'Service/flowserve', 'PodDisruptionBudget/flowserve', 'ServiceMonitor/flowserve', 'ScaledObject/flowserve'])
        assert.ok(ids.includes(`deploy/k8s/overlays/${overlay} ${o}`), `${overlay}: ${o} not checked`);
    assert.ok(ids.includes('deploy/kserve ServingRuntime/flowserve'));
    assert.ok(ids.includes('deploy/kserve InferenceService/glow-fashion'));
  });

  test('the overlays differ where they should: models, GPU, image', () => {
    const dep = (o: string) => render(join(ROOT, 'deploy/k8s/overlays', o), { root: ROOT }).find((r) => r.object.kind === 'Deployment')!.object as any;
    const env = (d: any) => Object.fromEntries(d.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    const [cpu, cuda, pvc] = [dep('cpu'), dep('cuda'), dep('cpu-pvc')];
    assert.equal(env(cpu).MODEL_DIR, '/app/models');
    assert.equal(env(pvc).MODEL_DIR, '/mnt/models');
    assert.deepEqual(pvc.spec.template.spec.volumes.find((v: any) => v.name === 'models').persistentVolumeClaim, { claimName: 'flowserve-models', readOnly: true });
    assert.equal(env(cuda).EXECUTION_PROVIDER, 'cuda');
    assert.equal(env(cuda).NVIDIA_TF32_OVERRIDE, '0');
    assert.equal(cuda.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'], 1);
    assert.equal(cpu.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'], undefined);
    assert.match(cuda.spec.template.spec.containers[0].image, /:0\.1\.0-cuda$/);
    assert.match(cpu.spec.template.spec.containers[0].image, /:0\.1\.0$/);
  });
});

describe('validator refusals', () => {
  const cpu = ['k8s/overlays/cpu'];
  const cuda = ['k8s/overlays/cuda'];
  const kserve = ['kserve'];

  test('BAD CALL - a containerPort given as a string fails the schema', async () => {
    const problems = await problemsAfter(DEPLOYMENT, (d) => (container(d).ports[0].containerPort = '8080'), cpu);
    assertRule(problems, 'schema', /containerPort must be integer/);
  });

  test('BAD CALL - a Deployment without a readiness probe', async () => {
    const problems = await problemsAfter(DEPLOYMENT, (d) => delete container(d).readinessProbe, cpu);
    assertRule(problems, 'probe-readiness', /no readinessProbe/);
  });

  test('BAD CALL - a misspelt field (readinesProbe) is an unknown field', async () => {
    const problems = await problemsAfter(
      DEPLOYMENT,
      (d) => {
        container(d).readinesProbe = container(d).readinessProbe;
        delete container(d).readinessProbe;
      },
      cpu,
    );
    assertRule(problems, 'unknown-field', /containers\[0\]\.readinesProbe/);
  });

  test('BAD CALL - a misspelt environment variable', async () => {
    const problems = await problemsAfter(DEPLOYMENT, (d) => container(d).env.push({ name: 'MAX_BATCH_SIZ', value: '32' }), cpu);
    assertRule(problems, 'env-name', /MAX_BATCH_SIZ is neither a flowserve setting.*did you mean MAX_BATCH_SIZE\?/);
  });

  test('BAD CALL - an environment value the config refuses', async () => {
    const problems = await problemsAfter(DEPLOYMENT, (d) => container(d).env.find((e: any) => e.name === 'SHUTDOWN_DELAY_MS').value = '30000', cpu);
    assertRule(problems, 'env-value', /SHUTDOWN_DELAY_MS=30000 must be shorter than SHUTDOWN_TIMEOUT_MS=25000/);
  });

  test('BAD CALL - a grace period shorter than SHUTDOWN_TIMEOUT_MS', async () => {
    const problems = await problemsAfter(DEPLOYMENT, (d) => (d[0].spec.template.spec.terminationGracePeriodSeconds = 20), cpu);
    assertRule(problems, 'drain-grace', /terminationGracePeriodSeconds 20 is shorter than SHUTDOWN_TIMEOUT_MS 25000/);
  });

  test('BAD CALL - a drain delay shorter than the readiness probe takes to notice', async () => {
    const problems = await problemsAfter(DEPLOYMENT, (d) => (container(d).readinessProbe.periodSeconds = 10), cpu);
    assertRule(problems, 'drain-delay', /SHUTDOWN_DELAY_MS 10000 is shorter than the readiness probe's detection/);
  });

  test('BAD CALL - a writable root filesystem', async () => {
    const problems = await problemsAfter(DEPLOYMENT, (d) => (container(d).securityContext.readOnlyRootFilesystem = false), cpu);
    assertRule(problems, 'security-context', /readOnlyRootFilesystem: true/);
  });

  test('BAD CALL - a startup probe too short for the measured warm-up', async () => {
    const problems = await problemsAfter(DEPLOYMENT, (d) => (container(d).startupProbe.failureThreshold = 2), cpu);
    assertRule(problems, 'startup-budget', /startupProbe allows 10 s/);
  });

  test('BAD CALL - a PromQL query on a metric flowserve does not expose', async () => {
    const problems = await problemsAfter(
      'deploy/k8s/components/keda/scaledobject.yaml',
      (d) => (d[0].spec.triggers[1].metadata.query = 'sum(avg_over_time(flowserve_queue_size{job="flowserve"}[1m]))'),
      cpu,
    );
    assertRule(problems, 'promql-metric', /flowserve_queue_size is not a series flowserve exposes.*did you mean flowserve_queue_depth\?/);
  });

  test('BAD CALL - an unsupported kustomization field', async () => {
    const problems = await problemsAfter('deploy/k8s/overlays/cpu/kustomization.yaml', (d) => (d[0].commonLabels = { team: 'a' }), cpu);
    const hit = assertRule(problems, 'kustomize', /field "commonLabels" is deprecated.*use "labels"/);
    assert.equal(hit.file, 'deploy/k8s/overlays/cpu/kustomization.yaml');
  });

  test('BAD CALL - a ServingRuntime container not named kserve-container', async () => {
    const problems = await problemsAfter(RUNTIME, (d) => (d[0].spec.containers[0].name = 'flowserve'), kserve);
    assertRule(problems, 'kserve-container', /one container named kserve-container/);
  });

  test('BAD CALL - a ServingRuntime without --model_dir=/mnt/models', async () => {
    const problems = await problemsAfter(RUNTIME, (d) => (d[0].spec.containers[0].args = ['--http_port=8080']), kserve);
    assertRule(problems, 'kserve-args', /--model_dir=\/mnt\/models/);
  });

  test('BAD CALL - a field KServe does not have (additionalProperties)', async () => {
    const problems = await problemsAfter('deploy/kserve/inferenceservice.yaml', (d) => (d[0].spec.predictor.model.storageURI = 'pvc://x/y'), kserve);
    assertRule(problems, 'schema', /must NOT have additional properties: "storageURI"/);
  });

  test('BAD CALL - a CUDA overlay without NVIDIA_TF32_OVERRIDE=0', async () => {
    const problems = await problemsAfter('deploy/k8s/overlays/cuda/gpu-patch.yaml', (d) => (d[0] = d[0].filter((op: any) => op.value?.name !== 'NVIDIA_TF32_OVERRIDE')), cuda);
    assertRule(problems, 'gpu', /NVIDIA_TF32_OVERRIDE=0/);
  });

  test('BAD CALL - an apiVersion/kind with no schema', async () => {
    const problems = await problemsAfter('deploy/k8s/base/pdb.yaml', (d) => (d[0].apiVersion = 'policy/v1beta1'), cpu);
    assertRule(problems, 'unknown-kind', /apiVersion "policy\/v1beta1", kind "PodDisruptionBudget" has no schema/);
  });
});

describe('Kustomize renderer', () => {
  const FIXTURES = join(ROOT, 'test/deploy/fixtures/kustomize');

  test('renders the feature fixture exactly as kubectl kustomize v5.5.0 did', () => {
    const expected = parseAllDocuments(readFileSync(join(FIXTURES, 'features.expected.yaml'), 'utf8')).map((d) => (Array.isArray(d) ? d : d.toJS()));
    const ours = render(join(FIXTURES, 'features'), { root: ROOT }).map((r) => r.object);
    assert.deepEqual(JSON.parse(JSON.stringify(sortObjects(ours))), sortObjects(expected as K8sObject[]));
  });

  /** Render a kustomization written to a temporary folder next to a copy of the base Service. */
  function refusalRender(kustomization: string) {
    const dir = mkdtempSync(join(tmpdir(), 'flowserve-kustomize-'));
    temps.push(dir);
    cpSync(join(ROOT, 'deploy/k8s/base/service.yaml'), join(dir, 'service.yaml'));
    writeFileSync(join(dir, 'kustomization.yaml'), kustomization);
    return render(dir);
  }

  test('BAD CALL - refuses fields it does not implement, naming them', () => {
    for (const [field, text] of [
      ['patchesStrategicMerge', 'patchesStrategicMerge:\n  - p.yaml\n'],
      ['namePrefix', 'namePrefix: x-\n'],
      ['configMapGenerator', 'configMapGenerator:\n  - name: a\n'],
      ['replicas', 'replicas:\n  - name: flowserve\n    count: 2\n'],
    ])
      assert.throws(() => refusalRender(`resources:\n  - service.yaml\n${text}`), (e: Error) => e instanceof KustomizeError && new RegExp(`field "${field}" is (deprecated|not implemented)`).test(e.message));
  });

  test('BAD CALL - refuses a strategic-merge patch, a patch that matches nothing, a selector it cannot evaluate', () => {
    const target = 'target:\n      kind: Service\n      name: flowserve\n';
    assert.throws(() => refusalRender(`resources:\n  - service.yaml\npatches:\n  - ${target.trimEnd()}\n    patch: |-\n      spec:\n        type: NodePort\n`), /only JSON 6902 patches/);
    assert.throws(() => refusalRender(`resources:\n  - service.yaml\npatches:\n  - target:\n      kind: Deployment\n    patch: '[{"op": "add", "path": "/a", "value": 1}]'\n`), /matches no object/);
    assert.throws(() => refusalRender(`resources:\n  - service.yaml\npatches:\n  - target:\n      labelSelector: "a in (b)"\n    patch: '[]'\n`), /not an equality-based requirement/);
    assert.throws(() => refusalRender(`resources:\n  - service.yaml\nlabels:\n  - pairs: {a: b}\n    includeSelectors: true\n`), /includeSelectors: true is not implemented/);
    assert.throws(() => refusalRender(`resources:\n  - ../../etc/hostname\n`), /outside the kustomization's directory|does not exist/);
  });

  test('PromQL metric names: functions, keywords, label lists, matchers and durations are not metrics', () => {
    assert.deepEqual(metricNames('sum(avg_over_time(flowserve_http_requests_in_flight{job="flowserve"}[1m]) - 1)'), ['flowserve_http_requests_in_flight']);
    assert.deepEqual(metricNames('sum by (model) (rate(a_total[5m] offset 5m)) / ignoring(x) group_left sum(b_count) > 1e3'), ['a_total', 'b_count']);
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum(rate(c_bucket[5m])) by (le))'), ['c_bucket']);
    assert.deepEqual(metricNames('{__name__="d"} or vector(0)'), ['d']);
  });
});

interface ReadOnlyServer {
  base: string;
  /** Stop the server; the namespace's exit code, its output, and what /tmp held. */
  stop(): Promise<{ code: number | null; out: string; err: string; tmpKiB: number; tmpListing: string }>;
}

/**
 * Run the server the way a manifest's container runs it, in a private mount and PID namespace (root
 * and util-linux's unshare and setpriv needed): the image's ENV (Dockerfile) under the container's
 * env, the container's args; /tmp a fresh tmpfs of the emptyDir's size; /mnt/models holding a copy of
 * a shipped package (as a folder of packages, or as the package itself: KServe's layout), then
 * read-only; the whole root read-only; the server as the securityContext's uid. When bash (the
 * namespace's init) exits, every process in it goes too.
 */
async function startReadOnly(opts: { container: any; volumes: any[]; extraEnv: Record<string, string>; args?: string[]; model: string; layout: 'folder' | 'package' }): Promise<ReadOnlyServer> {
  const c = opts.container;
  const uid = c.securityContext.runAsUser;
  assert.equal(uid, 1000);
  const tmpMount = c.volumeMounts.find((m: any) => m.mountPath === '/tmp');
  const tmpSize: string = opts.volumes.find((v: any) => v.name === tmpMount.name).emptyDir.sizeLimit;
  const { env, unresolved } = containerEnv(c);
  assert.deepEqual(unresolved, {});
  const fullEnv: Record<string, string> = { ...dockerfileEnv(), ...env, PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/home/node', ...opts.extraEnv };
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const target = opts.layout === 'folder' ? '/mnt/models/' : '/mnt/models';
  // The checkout is bind-mounted at /mnt/app before the tmpfs covers /tmp: a clone under /tmp (CI's
  // fresh clones) would otherwise vanish under it.
  const script = `
set -eu
mount --make-rprivate /
mount -t tmpfs -o size=16m tmpfs /mnt
mkdir -p /mnt/app
mount --bind ${q(ROOT)} /mnt/app
${opts.layout === 'folder' ? 'mkdir -p /mnt/models' : ''}
cp -r ${q(join(ROOT, 'models', opts.model))} ${target}
chmod -R a+rX /mnt/models
mount -t tmpfs -o size=${tmpSize.replace(/i$/, '').toLowerCase()},mode=1777 tmpfs /tmp
mount -o remount,bind,ro /mnt/app
mount -o remount,ro /mnt
mount -o remount,bind,ro /
cd /mnt/app
if touch /mnt/app/package.json 2>/dev/null; then echo "the root is writable"; exit 3; fi
setpriv --reuid=${uid} --regid=${uid} --clear-groups env -i ${Object.entries(fullEnv)
    .map(([k, v]) => `${k}=${q(v)}`)
    .join(' ')} ${q(process.execPath)} --import tsx src/server.ts ${(opts.args ?? []).map(q).join(' ')} &
pid=$!
read -r _ || true
kill -KILL $pid
wait $pid || true
echo "--- /tmp"
for f in /tmp/* /tmp/.[!.]*; do [ -e "$f" ] && echo "$f $(find "$f" -type f | wc -l) files"; done
du -sk /tmp
`;
  const child = spawn('unshare', ['--mount', '--pid', '--fork', '--mount-proc', 'bash', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((res, rej) => {
    const timer = setInterval(() => {
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearInterval(timer);
        res(Number(m[1]));
      }
    }, 20);
    void exited.then(([code]) => {
      clearInterval(timer);
      rej(new Error(`the namespace exited (${code}) before the server listened (this needs root, unshare and setpriv):\n${err}\n${out.slice(-3000)}`));
    });
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const r = await fetch(`${base}/readyz`).catch(() => null);
    if (r?.status === 200) break;
    assert.ok(i < 600, `not ready after 60 s:\n${out.slice(-3000)}`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return {
    base,
    async stop() {
      child.stdin.end('stop\n');
      const [code] = await exited;
      const tmpListing = out.slice(out.indexOf('--- /tmp'));
      return { code, out, err, tmpListing, tmpKiB: Number(/^(\d+)\s+\/tmp$/m.exec(tmpListing)?.[1]) };
    },
  };
}

/** Log lines at warn or above: a refused write (EROFS) or ONNX Runtime's device-id warning would be one. */
const warnings = (out: string) =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level >= 40);

const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('the server as the manifests run it: read-only root, uid 1000, writable /tmp only, models read-only at /mnt/models', { concurrency: true }, () => {
  test('the cpu-pvc Deployment (a folder of packages): ready, serves, logs no warning', async (t) => {
    const dep = render(join(ROOT, 'deploy/k8s/overlays/cpu-pvc'), { root: ROOT }).find((r) => r.object.kind === 'Deployment')!.object as any;
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(c.volumeMounts.find((m: any) => m.name === 'models').mountPath, '/mnt/models');
    assert.equal(containerEnv(c).env.MODEL_DIR, '/mnt/models');
    const server = await startReadOnly({ container: c, volumes: pod.volumes, extraEnv: { HOST: '127.0.0.1', PORT: '0' }, model: 'realnvp-moons', layout: 'folder' });
    const sample = await post(`${server.base}/sample`, { model: 'realnvp-moons', count: 3, seed: 1 });
    assert.equal(sample.status, 200, await sample.clone().text());
    const body = (await sample.json()) as { outputs: number[][] };
    assert.equal(body.outputs.length, 3);
    assert.equal((await post(`${server.base}/likelihood`, { model: 'realnvp-moons', inputs: body.outputs })).status, 200);
    assert.equal((await fetch(`${server.base}/metrics`)).status, 200);
    assert.equal((await fetch(`${server.base}/ui/app.js`)).status, 200); // the web page's esbuild bundle, built on first request
    const r = await server.stop();
    assert.equal(r.code, 0, `${r.err}\n${r.out.slice(-2000)}`);
    assert.deepEqual(warnings(r.out), []);
    assert.ok(r.tmpKiB > 0 && r.tmpKiB < 64 * 1024, r.tmpListing);
    // What writes there (docs/deploy.md): tsx's cache (tsx-1000), ONNX Runtime's device id (.cache, via
    // XDG_CACHE_HOME), and ONNX Runtime 1.29's .ses file and an empty mat-debug-<pid>.log per worker.
    t.diagnostic(`written to /tmp, ${r.tmpKiB} KiB in all: ${r.tmpListing.split('\n').slice(1, -2).join('; ')}`);
  });

  test('the KServe ServingRuntime with its args, for the InferenceService (one package at /mnt/models): ready, serves v2 under its name', async (t) => {
    const runtime = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kserve/servingruntime.yaml'), 'utf8'))[0].toJS();
    const isvc = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kserve/inferenceservice.yaml'), 'utf8'))[0].toJS();
    const name: string = isvc.metadata.name;
    const model = isvc.spec.predictor.model.storageUri.split('/').pop(); // pvc://flowserve-models/<package>
    const c = runtime.spec.containers[0];
    // KServe's template, and a free port instead of 8080 (the machine's 8080 may be taken)
    const args: string[] = c.args.map((a: string) => a.replace('{{.Name}}', name).replace(/^--http_port=\d+$/, '--http_port=0'));
    assert.ok(args.includes('--model_dir=/mnt/models'));
    const server = await startReadOnly({ container: c, volumes: runtime.spec.volumes, extraEnv: { HOST: '127.0.0.1' }, args, model, layout: 'package' });
    assert.equal((await fetch(`${server.base}/v2/health/ready`)).status, 200);
    const ready = await fetch(`${server.base}/v2/models/${name}/ready`);
    assert.equal(ready.status, 200, await ready.clone().text());
    const infer = await post(`${server.base}/v2/models/${name}.sample/infer`, { inputs: [], parameters: { count: 2, seed: 7 }, outputs: [{ name: 'logLikelihood' }] });
    assert.equal(infer.status, 200, await infer.clone().text());
    assert.equal(((await infer.json()) as { outputs: Array<{ shape: number[] }> }).outputs[0].shape[0], 2);
    const r = await server.stop();
    assert.equal(r.code, 0, `${r.err}\n${r.out.slice(-2000)}`);
    assert.deepEqual(warnings(r.out), []);
    assert.ok(r.tmpKiB > 0 && r.tmpKiB < 64 * 1024, r.tmpListing);
    t.diagnostic(`written to /tmp, ${r.tmpKiB} KiB in all`);
  });
});
