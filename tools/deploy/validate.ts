// Validates the deployment manifests with no cluster and no network (docs/deploy.md, Validation):
// renders every Kustomize overlay in deploy/k8s/overlays (tools/deploy/kustomize.ts) and loads every
// YAML file under deploy/kserve, then checks each object
//   1. against its schema: kubernetes-models (core, apps, policy, autoscaling), @kubernetes-models/keda
//      (ScaledObject), @kubernetes-models/prometheus-operator (ServiceMonitor, PodMonitor), and the
//      hand-written KServe schemas (tools/deploy/kserve-schema.ts) with the Kubernetes types they
//      embed (containers, volumes, …) checked by kubernetes-models; an unknown apiVersion/kind is an error;
//   2. for unknown fields (tools/deploy/fields.ts), as the API server's strict validation does;
//   3. against the policy rules below, which make the manifests fit this service: every rule has a
//      name, and every problem names its rule, file and object.
// Usage: npx tsx tools/deploy/validate.ts   (exit 1 with every problem listed)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import AjvModule from 'ajv';
import { parseAllDocuments } from 'yaml';
import { ConfigSchema, envFromArgs, envName, loadConfig, type Config } from '../../src/config/config.js';
import { CLOSE_GRACE_MS, FLUSH_MS } from '../../src/http/lifecycle.js';
import { prepare, unknownFields, type TypeRef } from './fields.js';
import { inferenceServiceSchema, servingRuntimeSchema } from './kserve-schema.js';
import { idOf, KustomizeError, render, type K8sObject } from './kustomize.js';
import { exposedSeries, metricNames } from './promql.js';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);

// ---------------------------------------------------------------------------------------------
// Figures the rules use. Measured on the 2-core development VM (docs/deploy.md, "Measurements").
// ---------------------------------------------------------------------------------------------
export const MEASURED = {
  /** Slowest `npm start` → /readyz 200 with every shipped model, machine otherwise idle (s). */
  warmupS: 6.3,
  /** The same with other processes loading the 2 cores (load average 5–10) (s). */
  warmupLoadedS: 21.1,
  /** Peak RSS of the server's process tree, every shipped model, 64 clients past saturation (MiB). */
  peakRssMiB: 741,
};
/** A startup probe must allow at least 3× the slowest warm-up measured (on a loaded machine; ~10× an idle one); CUDA (not measured) twice that. */
export const STARTUP_BUDGET_MIN_S = { cpu: Math.ceil(3 * MEASURED.warmupLoadedS), cuda: 2 * Math.ceil(3 * MEASURED.warmupLoadedS) };
/** Memory limit at least the measured peak plus a little. */
export const MIN_MEMORY_LIMIT_MIB = 768;
/** Time for the endpoint removal to reach kube-proxy, ingress controllers and load balancers. */
export const ENDPOINT_PROPAGATION_MS = 5000;
/** After SHUTDOWN_TIMEOUT_MS the server takes up to FLUSH_MS to flush 503s and CLOSE_GRACE_MS to close (src/server.ts). */
export const EXIT_ALLOWANCE_MS = FLUSH_MS + CLOSE_GRACE_MS;
/** Kubernetes' default terminationGracePeriodSeconds (and the only one a KServe ServingRuntime gets). */
export const DEFAULT_GRACE_S = 30;
/** The image's `node` user (node:20-bookworm-slim). */
export const IMAGE_UID = 1000;
export const SERVICE_PORT = 8080;
/** Where KServe mounts the model (storageUri) and where components/models-pvc mounts the claim. */
export const KSERVE_MODEL_DIR = '/mnt/models';
/** The models baked into the image (Dockerfile). */
export const IMAGE_MODEL_DIR = '/app/models';

/** Every flowserve setting, as an environment variable: the config schema's keys in SCREAMING_SNAKE. */
export const CONFIG_ENV: readonly string[] = Object.keys(ConfigSchema.properties).map(envName);
/** Variables that are not flowserve settings but are read by what runs in the container. */
export const RUNTIME_ENV: Record<string, string> = {
  NODE_ENV: 'Node.js (the Dockerfile sets production)',
  MALLOC_ARENA_MAX: 'glibc malloc (the Dockerfile sets 2; docs/reliability.md)',
  NVIDIA_TF32_OVERRIDE: 'CUDA: 0 keeps float32 matrix products exact (README, GPU)',
  XDG_CACHE_HOME: "ONNX Runtime's device id file",
  TMPDIR: "tsx's transform cache",
  UV_THREADPOOL_SIZE: "libuv's thread pool",
};

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------
export interface Problem {
  rule: string;
  /** The file the object came from (or the kustomization that failed), relative to the root. */
  file: string;
  /** What was validated: an overlay directory or deploy/kserve. */
  set: string;
  object: string;
  message: string;
}
export interface Checked {
  set: string;
  object: string;
  apiVersion: string;
  file: string;
}
export interface Report {
  checked: Checked[];
  problems: Problem[];
  notes: string[];
}

interface Item {
  object: K8sObject;
  file: string;
  set: string;
}

class Findings {
  problems: Problem[] = [];
  notes: string[] = [];
  add(rule: string, item: Item, message: string) {
    this.problems.push({ rule, file: item.file, set: item.set, object: idOf(item.object), message });
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------
interface KindDef {
  module?: string;
  iface?: string;
  schema?: object;
}
const K = (module: string, kind: string): KindDef => ({ module, iface: `I${kind}` });
/** apiVersion + kind → schema. Anything else is refused (rule unknown-kind). */
export const KINDS: Record<string, KindDef> = {
  'apps/v1 Deployment': K('kubernetes-models/apps/v1/Deployment', 'Deployment'),
  'v1 Service': K('kubernetes-models/v1/Service', 'Service'),
  'v1 ConfigMap': K('kubernetes-models/v1/ConfigMap', 'ConfigMap'),
  'v1 Secret': K('kubernetes-models/v1/Secret', 'Secret'),
  'v1 ServiceAccount': K('kubernetes-models/v1/ServiceAccount', 'ServiceAccount'),
  'v1 PersistentVolumeClaim': K('kubernetes-models/v1/PersistentVolumeClaim', 'PersistentVolumeClaim'),
  'policy/v1 PodDisruptionBudget': K('kubernetes-models/policy/v1/PodDisruptionBudget', 'PodDisruptionBudget'),
  'autoscaling/v2 HorizontalPodAutoscaler': K('kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'HorizontalPodAutoscaler'),
  'keda.sh/v1alpha1 ScaledObject': K('@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', 'ScaledObject'),
  'keda.sh/v1alpha1 TriggerAuthentication': K('@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication', 'TriggerAuthentication'),
  'monitoring.coreos.com/v1 ServiceMonitor': K('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'ServiceMonitor'),
  'monitoring.coreos.com/v1 PodMonitor': K('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor', 'PodMonitor'),
  'serving.kserve.io/v1alpha1 ServingRuntime': { schema: servingRuntimeSchema },
  'serving.kserve.io/v1beta1 InferenceService': { schema: inferenceServiceSchema },
};
/** Kubernetes types embedded in the KServe objects, checked with kubernetes-models. */
const EMBEDDED = {
  Container: K('kubernetes-models/v1/Container', 'Container'),
  Volume: K('kubernetes-models/v1/Volume', 'Volume'),
  Toleration: K('kubernetes-models/v1/Toleration', 'Toleration'),
  Affinity: K('kubernetes-models/v1/Affinity', 'Affinity'),
  EnvVar: K('kubernetes-models/v1/EnvVar', 'EnvVar'),
  ResourceRequirements: K('kubernetes-models/v1/ResourceRequirements', 'ResourceRequirements'),
  LocalObjectReference: K('kubernetes-models/v1/LocalObjectReference', 'LocalObjectReference'),
  DeploymentStrategy: K('kubernetes-models/apps/v1/DeploymentStrategy', 'DeploymentStrategy'),
} satisfies Record<string, KindDef>;

// ajv is CommonJS: under NodeNext its default import is module.exports, whose .default is the class
const ajv = new AjvModule.default({ allErrors: true, strict: true });
const ajvValidators = new Map<object, ReturnType<typeof ajv.compile>>();

function formatErrors(errors: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>, prefix = ''): string {
  return errors
    .slice(0, 6)
    .map((e) => {
      const extra = e.params?.allowedValues ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : e.params?.additionalProperty ? `: "${String(e.params.additionalProperty)}"` : '';
      return `${prefix}${(e.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || '(object)'} ${e.message ?? 'is invalid'}${extra}`;
    })
    .join('; ');
}

async function modelCheck(def: KindDef, value: unknown): Promise<string | null> {
  const mod = (await import(def.module!)) as Record<string, new (data: unknown) => { validate(): void }>;
  const cls = mod[def.iface!.slice(1)];
  try {
    new cls(value).validate();
    return null;
  } catch (err) {
    const e = err as { errors?: unknown[]; message: string };
    return e.errors ? formatErrors(e.errors as never) : e.message;
  }
}

/** Schema and unknown-field checks of one object; embedded Kubernetes types of the KServe objects too. */
async function checkSchema(item: Item, f: Findings): Promise<boolean> {
  const o = item.object;
  const def = KINDS[`${o.apiVersion} ${o.kind}`];
  if (!def) {
    f.add('unknown-kind', item, `apiVersion "${o.apiVersion}", kind "${o.kind}" has no schema here (known: ${Object.keys(KINDS).join(', ')})`);
    return false;
  }
  let ok = true;
  if (def.schema) {
    let v = ajvValidators.get(def.schema);
    if (!v) ajvValidators.set(def.schema, (v = ajv.compile(def.schema)));
    if (!v(o)) {
      f.add('schema', item, formatErrors(v.errors ?? []));
      ok = false;
    }
    const embedded: Array<[KindDef, unknown, string]> = [];
    const spec = (o as any).spec ?? {};
    if (o.kind === 'ServingRuntime') {
      (spec.containers ?? []).forEach((c: unknown, i: number) => embedded.push([EMBEDDED.Container, c, `spec.containers[${i}]`]));
      (spec.volumes ?? []).forEach((c: unknown, i: number) => embedded.push([EMBEDDED.Volume, c, `spec.volumes[${i}]`]));
      (spec.tolerations ?? []).forEach((c: unknown, i: number) => embedded.push([EMBEDDED.Toleration, c, `spec.tolerations[${i}]`]));
      (spec.imagePullSecrets ?? []).forEach((c: unknown, i: number) => embedded.push([EMBEDDED.LocalObjectReference, c, `spec.imagePullSecrets[${i}]`]));
      if (spec.affinity) embedded.push([EMBEDDED.Affinity, spec.affinity, 'spec.affinity']);
    } else if (o.kind === 'InferenceService') {
      const p = spec.predictor ?? {};
      (p.tolerations ?? []).forEach((c: unknown, i: number) => embedded.push([EMBEDDED.Toleration, c, `spec.predictor.tolerations[${i}]`]));
      if (p.deploymentStrategy) embedded.push([EMBEDDED.DeploymentStrategy, p.deploymentStrategy, 'spec.predictor.deploymentStrategy']);
      (p.model?.env ?? []).forEach((c: unknown, i: number) => embedded.push([EMBEDDED.EnvVar, c, `spec.predictor.model.env[${i}]`]));
      if (p.model?.resources) embedded.push([EMBEDDED.ResourceRequirements, p.model.resources, 'spec.predictor.model.resources']);
    }
    for (const [kind, value, path] of embedded) {
      const err = await modelCheck(kind, value);
      if (err) {
        f.add('schema', item, `${path} (${kind.iface!.slice(1)}): ${err}`);
        ok = false;
      }
      const unknown = unknownFields(value, kind as TypeRef, path);
      if (unknown.length) {
        f.add('unknown-field', item, `${unknown.join(', ')}: not a field of ${kind.iface!.slice(1)}`);
        ok = false;
      }
    }
    return ok;
  }
  const err = await modelCheck(def, o);
  if (err) {
    f.add('schema', item, err);
    ok = false;
  }
  const unknown = unknownFields(o, def as TypeRef);
  if (unknown.length) {
    f.add('unknown-field', item, `${unknown.join(', ')}: not in the ${o.apiVersion} ${o.kind} schema (the API server's strict validation refuses unknown fields)`);
    ok = false;
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------
/** A Kubernetes quantity in base units (cores, bytes). */
export function parseQuantity(q: unknown): number {
  if (typeof q === 'number') return q;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(String(q ?? '').trim());
  if (!m) return NaN;
  const mult: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  return Number(m[1]) * (m[2] ? mult[m[2]] : 1);
}

/** ENV of the Dockerfile's last stage: what the container starts with before the manifest's env. */
export function dockerfileEnv(root = ROOT): Record<string, string> {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const stages = text.split(/^FROM\s/m);
  const env: Record<string, string> = {};
  for (const line of stages[stages.length - 1].split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const kv of m[1].split(/\s+/)) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return env;
}

/** The container's env as the kubelet sets it: literal values and resourceFieldRef resolved. */
export function containerEnv(c: any): { env: Record<string, string>; unresolved: Record<string, string> } {
  const env: Record<string, string> = {};
  const unresolved: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.valueFrom?.resourceFieldRef) {
      const ref = e.valueFrom.resourceFieldRef;
      const [kind, res] = String(ref.resource).split('.');
      const q = c.resources?.[kind]?.[res];
      if (q === undefined) unresolved[e.name] = `${ref.resource} is not set (the kubelet would use the node's allocatable)`;
      else env[e.name] = String(Math.ceil(parseQuantity(q) / parseQuantity(ref.divisor ?? '1')));
    } else if (e.valueFrom) unresolved[e.name] = `from ${Object.keys(e.valueFrom)[0]}`;
    else env[e.name] = e.value === undefined ? '' : String(e.value);
  }
  return { env, unresolved };
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function closest(name: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(name, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 4)) ? best : null;
}

const matchesSelector = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

// ---------------------------------------------------------------------------------------------
// Policy: the flowserve container (a Deployment's, or a ServingRuntime's kserve-container)
// ---------------------------------------------------------------------------------------------
interface Workload {
  item: Item;
  kind: 'Deployment' | 'ServingRuntime';
  pod: any;
  podAnnotations: Record<string, string>;
  podLabels: Record<string, string>;
  container: any;
  /** KServe template values to substitute in args ({{.Name}}): one config per InferenceService. */
  names: string[];
}

function probeTarget(probe: any, container: any): { path?: string; portOk: boolean } {
  const get = probe?.httpGet;
  if (!get) return { portOk: false };
  const port = get.port;
  const portOk = port === SERVICE_PORT || port === String(SERVICE_PORT) || (typeof port === 'string' && (container.ports ?? []).some((p: any) => p.name === port && p.containerPort === SERVICE_PORT));
  return { path: get.path, portOk };
}

function checkWorkload(w: Workload, f: Findings, imageEnv: Record<string, string>): Config | null {
  const { item, container: c, pod } = w;
  const isDeployment = w.kind === 'Deployment';

  // container-image
  const image = typeof c.image === 'string' ? c.image : '';
  const tagged = /@sha256:[0-9a-f]{64}$/.test(image) || /:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(image.slice(image.lastIndexOf('/') + 1));
  if (!image) f.add('container-image', item, `container ${c.name}: no image`);
  else if (!tagged || /:latest$/.test(image)) f.add('container-image', item, `container ${c.name}: image "${image}" needs an explicit tag or digest (not latest), so every replica runs the same build`);

  // container-port
  const ports: any[] = c.ports ?? [];
  const port = ports.find((p) => p.containerPort === SERVICE_PORT);
  if (!port) f.add('container-port', item, `container ${c.name}: no containerPort ${SERVICE_PORT} (the service listens on PORT, default ${SERVICE_PORT})`);
  else if (isDeployment && port.name !== 'http') f.add('container-port', item, `container ${c.name}: port ${SERVICE_PORT} must be named "http" (the Service, probes and ServiceMonitor refer to it by name), not ${JSON.stringify(port.name)}`);
  else if (!isDeployment && port.name !== undefined && port.name !== 'http1' && port.name !== 'h2c') f.add('container-port', item, `container ${c.name}: a KServe port is unnamed, http1 or h2c (Knative accepts nothing else), not "${port.name}"`);
  if (port && port.protocol !== undefined && port.protocol !== 'TCP') f.add('container-port', item, `container ${c.name}: port ${SERVICE_PORT} protocol must be TCP`);

  // probes
  const probes: Array<[string, string, string[]]> = [
    ['livenessProbe', 'probe-liveness', ['/healthz']],
    ['readinessProbe', 'probe-readiness', ['/readyz']],
    ['startupProbe', 'probe-startup', ['/readyz', '/healthz']],
  ];
  for (const [field, rule, paths] of probes) {
    const probe = c[field];
    if (!probe) {
      f.add(rule, item, `container ${c.name}: no ${field} (an httpGet on ${paths.join(' or ')})`);
      continue;
    }
    const t = probeTarget(probe, c);
    if (!t.path || !paths.includes(t.path)) f.add(rule, item, `container ${c.name}: ${field} must be an httpGet on ${paths.join(' or ')}, not ${t.path ?? JSON.stringify(probe)}`);
    else if (!t.portOk) f.add(rule, item, `container ${c.name}: ${field} must probe port ${SERVICE_PORT}${isDeployment ? ' (or its name, http)' : ''}`);
  }

  // env names and values
  const { env, unresolved } = containerEnv(c);
  if (c.envFrom?.length) f.add('env-name', item, `container ${c.name}: envFrom hides variable names from this check; list them under env`);
  for (const e of c.env ?? []) {
    if (CONFIG_ENV.includes(e.name) || e.name in RUNTIME_ENV) continue;
    const guess = closest(e.name, [...CONFIG_ENV, ...Object.keys(RUNTIME_ENV)]);
    f.add('env-name', item, `container ${c.name}: env ${e.name} is neither a flowserve setting (src/config/config.ts) nor one of ${Object.keys(RUNTIME_ENV).join(', ')}${guess ? `; did you mean ${guess}?` : ''}`);
  }
  const names = new Set((c.env ?? []).map((e: any) => e.name));
  if (names.size !== (c.env ?? []).length) f.add('env-name', item, `container ${c.name}: a variable is listed twice in env`);

  // args (KServe passes them; envFromArgs maps the ones that mean a setting)
  const configs: Config[] = [];
  for (const name of w.names.length ? w.names : ['example']) {
    const args: string[] = (c.args ?? []).map((a: string) =>
      a.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (whole, key: string) => {
        if (key === 'Name') return name;
        if (key === 'Namespace') return 'default';
        f.add('kserve-args', item, `container ${c.name}: template ${whole} is not one this validator substitutes ({{.Name}}, {{.Namespace}})`);
        return 'x';
      }),
    );
    if (c.command?.length) f.add('container-command', item, `container ${c.name}: command replaces the image's ENTRYPOINT (node --import tsx src/server.ts); pass args only`);
    const flags = envFromArgs(args);
    if (!isDeployment) {
      if (flags.env.MODEL_DIR !== KSERVE_MODEL_DIR) f.add('kserve-args', item, `container ${c.name}: args must include --model_dir=${KSERVE_MODEL_DIR} (where KServe puts the model), got ${flags.env.MODEL_DIR ?? 'none'}`);
      if (flags.env.PORT !== String(SERVICE_PORT)) f.add('kserve-args', item, `container ${c.name}: args must include --http_port=${SERVICE_PORT}, got ${flags.env.PORT ?? 'none'}`);
      if (flags.ignored.length) f.notes.push(`${item.file}: ${idOf(item.object)}: flags the server logs and ignores: ${flags.ignored.join(' ')}`);
    } else if (args.length) f.add('container-command', item, `container ${c.name}: the Deployment configures flowserve through env, not args (${args.join(' ')})`);
    const overlap = Object.keys(flags.env).filter((k) => k in env);
    if (overlap.length) f.add('env-value', item, `container ${c.name}: ${overlap.join(', ')} set both in env and by args (the args win); set it once`);
    try {
      configs.push(loadConfig({ ...imageEnv, ...env, ...flags.env }));
    } catch (err) {
      f.add('env-value', item, `container ${c.name}${w.names.length ? ` (as ${name})` : ''}: ${(err as Error).message}`);
    }
  }
  const config = configs[0] ?? null;

  // resources
  const res = c.resources ?? {};
  for (const kind of ['requests', 'limits'])
    for (const r of ['cpu', 'memory'])
      if (res[kind]?.[r] === undefined) f.add('resources', item, `container ${c.name}: resources.${kind}.${r} is not set`);
  for (const r of ['cpu', 'memory']) {
    const [req, lim] = [parseQuantity(res.requests?.[r]), parseQuantity(res.limits?.[r])];
    if (req > lim) f.add('resources', item, `container ${c.name}: requests.${r} (${res.requests[r]}) is above limits.${r} (${res.limits[r]})`);
  }
  const memLimit = parseQuantity(res.limits?.memory);
  if (memLimit < MIN_MEMORY_LIMIT_MIB * 2 ** 20) f.add('resources', item, `container ${c.name}: limits.memory ${res.limits.memory} is below ${MIN_MEMORY_LIMIT_MIB}Mi (measured peak ${MEASURED.peakRssMiB} MiB: docs/deploy.md)`);

  // cpu-threads: ONNX Runtime's pool must follow the CPU limit, not the node's core count
  const cpuLimit = parseQuantity(res.limits?.cpu);
  if (unresolved.INTRA_OP_THREADS) f.add('cpu-threads', item, `container ${c.name}: INTRA_OP_THREADS ${unresolved.INTRA_OP_THREADS}`);
  else if (config && Number.isFinite(cpuLimit)) {
    if (config.intraOpThreads === 0) f.add('cpu-threads', item, `container ${c.name}: INTRA_OP_THREADS is 0 (cores divided among workers): in a container that is the node's cores, not limits.cpu ${res.limits.cpu}; set it (valueFrom.resourceFieldRef limits.cpu)`);
    else if (config.intraOpThreads * config.workerThreads > Math.ceil(cpuLimit)) f.add('cpu-threads', item, `container ${c.name}: INTRA_OP_THREADS ${config.intraOpThreads} × WORKER_THREADS ${config.workerThreads} threads exceed limits.cpu ${res.limits.cpu}`);
  }

  // security-context: container settings over the pod's
  const sc = { ...(pod.securityContext ?? {}), ...(c.securityContext ?? {}) };
  const want: Array<[string, boolean]> = [
    ['runAsNonRoot: true', sc.runAsNonRoot === true],
    [`runAsUser: ${IMAGE_UID} (the image's node user; a named USER cannot be verified as non-root)`, sc.runAsUser === IMAGE_UID],
    ['readOnlyRootFilesystem: true', c.securityContext?.readOnlyRootFilesystem === true],
    ['allowPrivilegeEscalation: false', c.securityContext?.allowPrivilegeEscalation === false],
    ['capabilities.drop: [ALL]', (c.securityContext?.capabilities?.drop ?? []).includes('ALL')],
    ['seccompProfile.type: RuntimeDefault', sc.seccompProfile?.type === 'RuntimeDefault'],
  ];
  const missing = want.filter(([, ok]) => !ok).map(([what]) => what);
  if (missing.length) f.add('security-context', item, `container ${c.name}: securityContext needs ${missing.join('; ')}`);
  if (c.securityContext?.privileged === true || (c.securityContext?.capabilities?.add ?? []).length) f.add('security-context', item, `container ${c.name}: no privileged mode or added capabilities`);

  // tmp-volume: the only writable path with a read-only root
  const volumes: any[] = pod.volumes ?? [];
  const mounts: any[] = c.volumeMounts ?? [];
  const tmp = mounts.find((m) => m.mountPath === '/tmp');
  const tmpVolume = tmp && volumes.find((v) => v.name === tmp.name);
  if (!tmp || !tmpVolume?.emptyDir || tmp.readOnly) f.add('tmp-volume', item, `container ${c.name}: needs a writable emptyDir at /tmp (tsx's transform cache, ONNX Runtime's device id) with readOnlyRootFilesystem`);

  if (!config) return null;

  // model-dir
  if (!isDeployment) {
    if (config.modelDir !== KSERVE_MODEL_DIR) f.add('model-dir', item, `container ${c.name}: MODEL_DIR is ${config.modelDir}; KServe puts the model at ${KSERVE_MODEL_DIR}`);
  } else if (config.modelDir !== IMAGE_MODEL_DIR) {
    const mount = mounts.find((m) => config.modelDir === m.mountPath || config.modelDir.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`));
    const volume = mount && volumes.find((v) => v.name === mount.name);
    if (!mount) f.add('model-dir', item, `container ${c.name}: MODEL_DIR ${config.modelDir} is neither the image's ${IMAGE_MODEL_DIR} nor under a mounted volume`);
    else if (mount.readOnly !== true || (volume?.persistentVolumeClaim && volume.persistentVolumeClaim.readOnly !== true)) f.add('model-dir', item, `container ${c.name}: the models' volume ${mount.name} at ${mount.mountPath} must be mounted read-only`);
  }

  // drain: readiness detection + propagation ≤ delay; delay + request deadline ≤ timeout; timeout + exit ≤ grace
  const readiness = c.readinessProbe ?? {};
  const detectMs = (readiness.periodSeconds ?? 10) * (readiness.failureThreshold ?? 3) * 1000;
  if (config.shutdownDelayMs < detectMs + ENDPOINT_PROPAGATION_MS)
    f.add('drain-delay', item, `SHUTDOWN_DELAY_MS ${config.shutdownDelayMs} is shorter than the readiness probe's detection (periodSeconds ${readiness.periodSeconds ?? 10} × failureThreshold ${readiness.failureThreshold ?? 3} = ${detectMs} ms) + ${ENDPOINT_PROPAGATION_MS} ms for the endpoint change to propagate: requests would still arrive after the server stops accepting them`);
  if (config.shutdownTimeoutMs < config.shutdownDelayMs + config.requestTimeoutMs)
    f.add('drain-request-timeout', item, `SHUTDOWN_TIMEOUT_MS ${config.shutdownTimeoutMs} < SHUTDOWN_DELAY_MS ${config.shutdownDelayMs} + REQUEST_TIMEOUT_MS ${config.requestTimeoutMs}: a request admitted at the end of the delay could be cut off before its own deadline`);
  const grace = isDeployment ? (pod.terminationGracePeriodSeconds ?? DEFAULT_GRACE_S) : DEFAULT_GRACE_S;
  const preStop = c.lifecycle?.preStop;
  let preStopMs = 0;
  if (preStop?.sleep?.seconds) preStopMs = preStop.sleep.seconds * 1000;
  else if (preStop?.exec) {
    const m = /\bsleep\s+(\d+(?:\.\d+)?)/.exec((preStop.exec.command ?? []).join(' '));
    preStopMs = m ? Number(m[1]) * 1000 : NaN;
  } else if (preStop) preStopMs = NaN;
  if (Number.isNaN(preStopMs)) f.add('drain-grace', item, `container ${c.name}: a preStop hook whose length cannot be read (the server drains itself on SIGTERM: docs/deploy.md; none is needed)`);
  else if (grace * 1000 < config.shutdownTimeoutMs + EXIT_ALLOWANCE_MS + preStopMs)
    f.add('drain-grace', item, `terminationGracePeriodSeconds ${grace}${isDeployment ? '' : ' (a ServingRuntime gets the default)'} is shorter than ${preStopMs ? `preStop ${preStopMs / 1000} s + ` : ''}SHUTDOWN_TIMEOUT_MS ${config.shutdownTimeoutMs} + ${EXIT_ALLOWANCE_MS} ms to flush and close: the kubelet would SIGKILL a draining server`);

  // startup budget
  const startup = c.startupProbe ?? {};
  const budgetS = (startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3);
  const minBudget = config.executionProvider === 'cuda' ? STARTUP_BUDGET_MIN_S.cuda : STARTUP_BUDGET_MIN_S.cpu;
  if (c.startupProbe && budgetS < minBudget)
    f.add('startup-budget', item, `startupProbe allows ${budgetS} s (periodSeconds × failureThreshold); warm-up needs at least ${minBudget} s with EXECUTION_PROVIDER=${config.executionProvider} (measured ${MEASURED.warmupS} s idle, ${MEASURED.warmupLoadedS} s on a loaded machine: docs/deploy.md)`);

  // gpu
  const gpus = parseQuantity(res.limits?.['nvidia.com/gpu'] ?? 0);
  if (config.executionProvider === 'cuda') {
    if (!(gpus >= 1)) f.add('gpu', item, `EXECUTION_PROVIDER=cuda without resources.limits["nvidia.com/gpu"] (the NVIDIA device plugin's resource): the pod gets no GPU`);
    if (env.NVIDIA_TF32_OVERRIDE !== '0') f.add('gpu', item, 'EXECUTION_PROVIDER=cuda needs NVIDIA_TF32_OVERRIDE=0: TF32 matrix products cost ~1e-3 relative accuracy (README, GPU)');
    if (!(pod.tolerations ?? []).some((t: any) => t.key === 'nvidia.com/gpu')) f.add('gpu', item, 'EXECUTION_PROVIDER=cuda: no toleration for the nvidia.com/gpu taint GPU nodes usually carry');
  } else if (gpus > 0) f.add('gpu', item, `a GPU is requested but EXECUTION_PROVIDER=${config.executionProvider}: set cuda (auto would fall back to CPU silently when the CUDA libraries are missing)`);

  // pod-level
  if (isDeployment) {
    if (pod.automountServiceAccountToken !== false) f.add('service-account-token', item, 'automountServiceAccountToken must be false: the service never calls the Kubernetes API');
    const spread = (pod.topologySpreadConstraints ?? []).some((t: any) => t.topologyKey === 'kubernetes.io/hostname' && matchesSelector(t.labelSelector?.matchLabels, w.podLabels));
    const anti = [...(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p: any) => p.podAffinityTerm), ...(pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [])].some(
      (t: any) => t?.topologyKey === 'kubernetes.io/hostname' && matchesSelector(t.labelSelector?.matchLabels, w.podLabels),
    );
    if (!spread && !anti) f.add('spread', item, 'no topologySpreadConstraints or podAntiAffinity on kubernetes.io/hostname selecting these pods: all replicas could land on one node');
  }
  const a = w.podAnnotations;
  if (a['prometheus.io/scrape'] !== 'true' || a['prometheus.io/port'] !== String(config.port) || a['prometheus.io/path'] !== '/metrics')
    f.add('scrape-annotations', item, `pod annotations prometheus.io/scrape "true", prometheus.io/port "${config.port}", prometheus.io/path "/metrics" are needed for annotation-based Prometheus setups (got ${JSON.stringify(Object.fromEntries(Object.entries(a).filter(([k]) => k.startsWith('prometheus.io/'))))})`);
  if (config.port !== SERVICE_PORT) f.add('container-port', item, `PORT is ${config.port}, the manifests expect ${SERVICE_PORT}`);
  return config;
}

// ---------------------------------------------------------------------------------------------
// Policy: a Kubernetes overlay (Deployment with its Service, PDB, scrape and autoscaling)
// ---------------------------------------------------------------------------------------------
async function checkOverlay(items: Item[], f: Findings, imageEnv: Record<string, string>) {
  const of = (kind: string) => items.filter((i) => i.object.kind === kind);
  const deployments = of('Deployment');
  if (deployments.length !== 1) {
    if (items[0]) f.add('workload', items[0], `expected one Deployment in the overlay, found ${deployments.length}`);
    return;
  }
  const d = deployments[0];
  const dep: any = d.object;
  const pod = dep.spec?.template?.spec ?? {};
  const podLabels = dep.spec?.template?.metadata?.labels ?? {};
  const container = (pod.containers ?? []).find((c: any) => c.name === 'flowserve');
  if (!container) {
    f.add('workload', d, 'no container named flowserve');
    return;
  }
  checkWorkload({ item: d, kind: 'Deployment', pod, podLabels, podAnnotations: dep.spec?.template?.metadata?.annotations ?? {}, container, names: [] }, f, imageEnv);

  // rolling-update
  const ru = dep.spec?.strategy;
  if (ru?.type !== 'RollingUpdate' || String(ru?.rollingUpdate?.maxUnavailable) !== '0' || String(ru?.rollingUpdate?.maxSurge) !== '1')
    f.add('rolling-update', d, `strategy must be RollingUpdate with maxUnavailable: 0 and maxSurge: 1 (a new pod is ready before an old one drains), got ${JSON.stringify(ru ?? null)}`);
  if (!matchesSelector(dep.spec?.selector?.matchLabels, podLabels)) f.add('workload', d, 'spec.selector.matchLabels does not match the pod template labels');

  // service
  const services = of('Service').filter((s) => matchesSelector((s.object as any).spec?.selector, podLabels));
  const svc = services.find((s) => ((s.object as any).spec?.ports ?? []).some((p: any) => p.targetPort === 'http' || p.targetPort === SERVICE_PORT));
  if (!svc) f.add('service', d, `no Service selects these pods with a port whose targetPort is http (or ${SERVICE_PORT})`);

  // pdb
  const pdbs = of('PodDisruptionBudget').filter((p) => matchesSelector((p.object as any).spec?.selector?.matchLabels, podLabels));
  if (!pdbs.length) f.add('pdb', d, 'no PodDisruptionBudget selects these pods');
  for (const p of pdbs) {
    const s = (p.object as any).spec;
    if (s.maxUnavailable === undefined && s.minAvailable === undefined) f.add('pdb', p, 'set maxUnavailable (1) or minAvailable');
    if (s.maxUnavailable !== undefined && String(s.maxUnavailable) !== '1') f.add('pdb', p, `maxUnavailable ${s.maxUnavailable}: use 1 (one replica at a time)`);
  }

  // scrape-servicemonitor
  const monitors = [...of('ServiceMonitor'), ...of('PodMonitor')];
  if (!monitors.length) f.add('scrape-servicemonitor', d, 'no ServiceMonitor or PodMonitor scrapes these pods (components/prometheus)');
  let job: string | null = null;
  for (const m of monitors) {
    const s = (m.object as any).spec ?? {};
    if (m.object.kind === 'ServiceMonitor') {
      const target = of('Service').find((x) => matchesSelector(s.selector?.matchLabels, x.object.metadata.labels));
      if (!target) {
        f.add('scrape-servicemonitor', m, 'its selector matches no Service in the overlay');
        continue;
      }
      const portNames = ((target.object as any).spec?.ports ?? []).map((p: any) => p.name);
      for (const e of s.endpoints ?? []) {
        if (!portNames.includes(e.port)) f.add('scrape-servicemonitor', m, `endpoint port "${e.port}" is not a port name of Service ${target.object.metadata.name} (${portNames.join(', ')})`);
        if ((e.path ?? '/metrics') !== '/metrics') f.add('scrape-servicemonitor', m, `endpoint path ${e.path}: flowserve serves /metrics`);
      }
      job = s.jobLabel ? null : target.object.metadata.name; // Prometheus Operator: job = the Service's name
    } else if (!matchesSelector(s.selector?.matchLabels, podLabels)) f.add('scrape-servicemonitor', m, 'its selector does not match the pod labels');
  }

  // autoscaling
  const scalers = [...of('ScaledObject'), ...of('HorizontalPodAutoscaler')].filter((s) => (s.object as any).spec?.scaleTargetRef?.name === dep.metadata.name);
  if (!scalers.length) f.add('autoscaling', d, 'no ScaledObject (components/keda) or HorizontalPodAutoscaler targets this Deployment');
  if (scalers.length && dep.spec?.replicas !== undefined) f.add('autoscaling', d, `spec.replicas is set (${dep.spec.replicas}) while an autoscaler owns the count: every kubectl apply would reset it`);
  if (scalers.length > 1) f.add('autoscaling', d, `${scalers.length} autoscalers target this Deployment; they would fight`);
  const series = await exposedSeries();
  for (const s of of('ScaledObject')) {
    const spec = (s.object as any).spec ?? {};
    const ref = spec.scaleTargetRef ?? {};
    if (ref.name !== dep.metadata.name || (ref.kind ?? 'Deployment') !== 'Deployment') f.add('autoscaling', s, `scaleTargetRef ${JSON.stringify(ref)} is not Deployment ${dep.metadata.name}`);
    const [min, max] = [spec.minReplicaCount ?? 0, spec.maxReplicaCount ?? 100];
    if (min < 2) f.add('autoscaling', s, `minReplicaCount ${min}: keep at least 2 so one replica can drain or move while another serves`);
    if (min > max) f.add('autoscaling', s, `minReplicaCount ${min} > maxReplicaCount ${max}`);
    const triggers: any[] = spec.triggers ?? [];
    if (!triggers.some((t) => t.type === 'prometheus')) f.add('autoscaling', s, "no prometheus trigger on the service's own load signal (flowserve_http_requests_in_flight, flowserve_queue_depth)");
    for (const t of triggers.filter((x) => x.type === 'prometheus')) {
      const md = t.metadata ?? {};
      const label = `trigger ${t.name ?? '(unnamed)'}`;
      if (!(Number(md.threshold) > 0)) f.add('autoscaling', s, `${label}: threshold "${md.threshold}" is not a positive number`);
      if ((t.metricType ?? 'AverageValue') !== 'AverageValue') f.add('autoscaling', s, `${label}: metricType ${t.metricType}: the thresholds are per replica (AverageValue)`);
      if (!md.serverAddress) f.add('autoscaling', s, `${label}: no serverAddress`);
      if (!md.query) {
        f.add('autoscaling', s, `${label}: no query`);
        continue;
      }
      const names = metricNames(md.query);
      if (!names.length) f.add('promql-metric', s, `${label}: the query names no metric: ${md.query}`);
      for (const n of names)
        if (!series.has(n)) {
          const guess = closest(n, [...series]);
          f.add('promql-metric', s, `${label}: ${n} is not a series flowserve exposes (src/service/metrics.ts)${guess ? `; did you mean ${guess}?` : ''}`);
        }
      for (const m of md.query.matchAll(/\bjob\s*=~?\s*"([^"]*)"/g))
        if (job !== null && m[1] !== job) f.add('promql-job', s, `${label}: the query selects job="${m[1]}" but the ServiceMonitor's series carry job="${job}"`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Policy: KServe objects
// ---------------------------------------------------------------------------------------------
function checkKServe(items: Item[], f: Findings, imageEnv: Record<string, string>) {
  const runtimes = items.filter((i) => i.object.kind === 'ServingRuntime');
  const services = items.filter((i) => i.object.kind === 'InferenceService');
  for (const r of runtimes) {
    const spec: any = (r.object as any).spec ?? {};
    const containers: any[] = spec.containers ?? [];
    if (containers.length !== 1 || containers[0]?.name !== 'kserve-container') {
      f.add('kserve-container', r, `a ServingRuntime has one container named kserve-container (KServe's predictor container), got ${JSON.stringify(containers.map((c) => c.name))}`);
      continue;
    }
    const formats: any[] = spec.supportedModelFormats ?? [];
    if (!formats.some((m) => m.name === 'flowserve')) f.add('kserve-runtime', r, 'supportedModelFormats must include { name: flowserve }');
    const protocols: string[] = spec.protocolVersions ?? [];
    if (!protocols.length || protocols.some((p) => p !== 'v2')) f.add('kserve-runtime', r, `protocolVersions ${JSON.stringify(protocols)}: flowserve speaks the Open Inference Protocol over HTTP (v2) only`);
    if (spec.multiModel === true) f.add('kserve-runtime', r, 'multiModel: flowserve is a single-model (per InferenceService) runtime here');
    const users = services.filter((s) => (s.object as any).spec?.predictor?.model?.runtime === r.object.metadata.name);
    checkWorkload(
      { item: r, kind: 'ServingRuntime', pod: spec, podLabels: spec.labels ?? {}, podAnnotations: spec.annotations ?? {}, container: containers[0], names: users.map((u) => u.object.metadata.name) },
      f,
      imageEnv,
    );
  }
  for (const s of services) {
    const p: any = (s.object as any).spec?.predictor ?? {};
    const model = p.model ?? {};
    const runtime = runtimes.find((r) => r.object.metadata.name === model.runtime);
    if (!model.runtime) f.add('kserve-isvc', s, 'predictor.model.runtime is not set: name the flowserve ServingRuntime');
    else if (!runtime) f.add('kserve-isvc', s, `predictor.model.runtime "${model.runtime}" is not a ServingRuntime in deploy/kserve`);
    if (runtime) {
      const formats: any[] = (runtime.object as any).spec?.supportedModelFormats ?? [];
      const fmt = formats.find((x) => x.name === model.modelFormat?.name);
      if (!fmt) f.add('kserve-isvc', s, `modelFormat "${model.modelFormat?.name}" is not supported by ServingRuntime ${runtime.object.metadata.name}`);
      else if (model.modelFormat?.version && fmt.version && !String(model.modelFormat.version).startsWith(String(fmt.version))) f.add('kserve-isvc', s, `modelFormat version ${model.modelFormat.version} is not the runtime's ${fmt.version}`);
      const protocols: string[] = (runtime.object as any).spec?.protocolVersions ?? [];
      if (model.protocolVersion && !protocols.includes(model.protocolVersion)) f.add('kserve-isvc', s, `protocolVersion ${model.protocolVersion} is not among the runtime's ${protocols.join(', ')}`);
    }
    if (!model.storageUri) f.add('kserve-isvc', s, `no storageUri: ${KSERVE_MODEL_DIR} would be empty and the server would refuse to start`);
    if (p.minReplicas !== undefined && p.maxReplicas !== undefined && p.maxReplicas !== 0 && p.minReplicas > p.maxReplicas) f.add('kserve-isvc', s, `minReplicas ${p.minReplicas} > maxReplicas ${p.maxReplicas}`);
    const ru = p.deploymentStrategy?.rollingUpdate;
    if (p.deploymentStrategy && String(ru?.maxUnavailable) !== '0') f.add('rolling-update', s, 'deploymentStrategy.rollingUpdate.maxUnavailable must be 0');
  }
}

// ---------------------------------------------------------------------------------------------
// Loading and the run
// ---------------------------------------------------------------------------------------------
function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return yamlFiles(p);
      return /\.ya?ml$/.test(name) ? [p] : [];
    });
}

export interface ValidateOptions {
  /** Repository root: Dockerfile, and paths in messages are relative to it (default: this checkout). */
  root?: string;
  /** The deploy/ folder to validate (default: <root>/deploy). */
  deployDir?: string;
  /** Validate only these sets, relative to deployDir (`k8s/overlays/cpu`, `kserve`); default all. */
  only?: string[];
}

export async function validateDeploy(opts: ValidateOptions = {}): Promise<Report> {
  const root = resolve(opts.root ?? ROOT);
  const deployDir = resolve(opts.deployDir ?? join(root, 'deploy'));
  const f = new Findings();
  const checked: Checked[] = [];
  const imageEnv = dockerfileEnv(root);
  prepare([...Object.values(KINDS), ...Object.values(EMBEDDED)].filter((k): k is TypeRef => !!k.module));

  const sets: Array<{ set: string; items: Item[]; type: 'overlay' | 'kserve' }> = [];
  const overlaysDir = join(deployDir, 'k8s', 'overlays');
  const overlays = existsSync(overlaysDir) ? readdirSync(overlaysDir).filter((d) => statSync(join(overlaysDir, d)).isDirectory()).sort() : [];
  if (!overlays.length) f.problems.push({ rule: 'kustomize', file: relative(root, overlaysDir), set: relative(root, overlaysDir), object: '-', message: 'no overlays to validate' });
  const wanted = (rel: string) => !opts.only || opts.only.includes(rel);
  for (const name of overlays.filter((n) => wanted(`k8s/overlays/${n}`))) {
    const dir = join(overlaysDir, name);
    const set = relative(root, dir);
    try {
      sets.push({ set, type: 'overlay', items: render(dir, { root }).map((r) => ({ object: r.object, file: r.source, set })) });
    } catch (err) {
      if (!(err instanceof KustomizeError)) throw err;
      f.problems.push({ rule: 'kustomize', file: err.file, set, object: '-', message: err.message.slice(err.file.length + 2) });
    }
  }
  const kserveDir = join(deployDir, 'kserve');
  const kserveItems: Item[] = [];
  for (const file of wanted('kserve') ? yamlFiles(kserveDir) : []) {
    const rel = relative(root, file);
    parseAllDocuments(readFileSync(file, 'utf8')).forEach((doc, i) => {
      if (doc.errors.length) {
        f.problems.push({ rule: 'yaml', file: rel, set: relative(root, kserveDir), object: `document ${i + 1}`, message: doc.errors[0].message });
        return;
      }
      const o = doc.toJS({ maxAliasCount: 0 });
      if (o === null) return;
      if (typeof o?.apiVersion !== 'string' || typeof o?.kind !== 'string' || typeof o?.metadata?.name !== 'string')
        f.problems.push({ rule: 'yaml', file: rel, set: relative(root, kserveDir), object: `document ${i + 1}`, message: 'not a Kubernetes object (apiVersion, kind, metadata.name)' });
      else kserveItems.push({ object: o, file: rel, set: relative(root, kserveDir) });
    });
  }
  if (existsSync(kserveDir) && wanted('kserve')) sets.push({ set: relative(root, kserveDir), type: 'kserve', items: kserveItems });

  for (const s of sets) {
    for (const item of s.items) {
      await checkSchema(item, f);
      checked.push({ set: s.set, object: idOf(item.object), apiVersion: item.object.apiVersion, file: item.file });
    }
    if (s.type === 'overlay') await checkOverlay(s.items, f, imageEnv);
    else checkKServe(s.items, f, imageEnv);
  }
  return { checked, problems: f.problems, notes: [...new Set(f.notes)] };
}

export function formatReport(r: Report): string {
  const lines: string[] = [];
  for (const c of r.checked) {
    const n = r.problems.filter((p) => p.set === c.set && p.object === c.object && p.file === c.file).length;
    lines.push(`${n ? '✗' : '✓'} ${c.set}: ${c.apiVersion} ${c.object} (${c.file})${n ? `: ${n} problem${n > 1 ? 's' : ''}` : ''}`);
  }
  for (const note of r.notes) lines.push(`  note: ${note}`);
  if (r.problems.length) {
    lines.push('', 'Problems:');
    for (const p of r.problems) lines.push(`✗ [${p.rule}] ${p.file} (${p.set}) ${p.object}: ${p.message}`);
  }
  const sets = [...new Set(r.checked.map((c) => c.set))];
  const unrendered = [...new Set(r.problems.filter((p) => p.rule === 'kustomize').map((p) => p.set))];
  lines.push(
    '',
    `${r.checked.length} objects in ${sets.length} sets (${sets.join(', ')})${unrendered.length ? `; not rendered: ${unrendered.join(', ')}` : ''}: ${r.problems.length ? `${r.problems.length} problem${r.problems.length > 1 ? 's' : ''}` : 'no problems'}`,
  );
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('tools/deploy/validate.ts')) {
  const report = await validateDeploy();
  console.log(formatReport(report));
  process.exitCode = report.problems.length ? 1 : 0;
}
