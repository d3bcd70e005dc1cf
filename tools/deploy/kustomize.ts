// A renderer for exactly the Kustomize subset deploy/k8s uses, so the manifests can be validated
// with no cluster, no network and no kustomize binary (docs/deploy.md, Validation).
//
// Implemented, with Kustomize v5's semantics: `resources` (files, and directories holding a
// kustomization), `components` (directories holding a `kind: Component`, applied to everything
// accumulated so far), `patches` with JSON 6902 operations (inline `patch:` or a `path:` file) and a
// `target` selected by group, version, kind, name, namespace (regular expressions, anchored) and an
// equality-based labelSelector, `images` (name → newName, newTag, digest), `namespace`, and `labels`
// (pairs, includeTemplates). Transformers run in Kustomize's order: patches, namespace, labels, images.
//
// Everything else is refused with an error naming the field, never skipped: a field this renderer
// does not implement could make its output differ from `kubectl apply -k`. It is also stricter than
// Kustomize in two places, both errors a human would want to know about: a patch whose target
// matches no object, and a patch that renames an object.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

export interface Rendered {
  object: K8sObject;
  /** The file the object was first read from, relative to the root given to render(). */
  source: string;
}

export class KustomizeError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'KustomizeError';
  }
}

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches', 'images', 'namespace', 'labels']);
/** Fields Kustomize v5 deprecates: named in the refusal so the fix is obvious. */
const DEPRECATED: Record<string, string> = {
  bases: 'resources',
  patchesStrategicMerge: 'patches',
  patchesJson6902: 'patches',
  commonLabels: 'labels',
  vars: 'replacements',
  imageTags: 'images',
};
const API_VERSION = { Kustomization: 'kustomize.config.k8s.io/v1beta1', Component: 'kustomize.config.k8s.io/v1alpha1' } as const;
const PATCH_FIELDS = new Set(['path', 'patch', 'target']);
const TARGET_FIELDS = new Set(['group', 'version', 'kind', 'name', 'namespace', 'labelSelector']);
const IMAGE_FIELDS = new Set(['name', 'newName', 'newTag', 'digest']);
const LABEL_FIELDS = new Set(['pairs', 'includeSelectors', 'includeTemplates']);
/** Kinds the namespace transformer is implemented for: namespaced, and with no namespace references inside. */
const NAMESPACED = new Set([
  'Deployment',
  'Service',
  'PodDisruptionBudget',
  'ServiceAccount',
  'ConfigMap',
  'Secret',
  'PersistentVolumeClaim',
  'HorizontalPodAutoscaler',
  'ScaledObject',
  'ServiceMonitor',
  'PodMonitor',
  'ServingRuntime',
  'InferenceService',
]);

type Kustomization = Record<string, unknown>;

export interface RenderOptions {
  /** Paths in messages and in `source` are relative to this (default: the working directory). */
  root?: string;
}

/** Render the kustomization in `dir` the way `kubectl kustomize dir` would (for the subset above). */
export function render(dir: string, opts: RenderOptions = {}): Rendered[] {
  const root = resolve(opts.root ?? process.cwd());
  return build(resolve(dir), null, root, []);
}

function rel(root: string, p: string): string {
  const r = relative(root, p);
  return r === '' ? '.' : r;
}

function loadKustomization(dir: string, root: string): { file: string; k: Kustomization } {
  const found = KUSTOMIZATION_FILES.filter((f) => existsSync(join(dir, f)));
  if (found.length === 0) throw new KustomizeError(rel(root, dir), `no kustomization file (${KUSTOMIZATION_FILES.join(', ')})`);
  if (found.length > 1) throw new KustomizeError(rel(root, dir), `more than one kustomization file: ${found.join(', ')}`);
  const file = join(dir, found[0]);
  const docs = parseYaml(readFileSync(file, 'utf8'), rel(root, file));
  if (docs.length !== 1 || !isObject(docs[0])) throw new KustomizeError(rel(root, file), 'must hold exactly one YAML mapping');
  return { file, k: docs[0] };
}

function build(dir: string, accumulated: Rendered[] | null, root: string, stack: string[]): Rendered[] {
  if (stack.includes(dir)) throw new KustomizeError(rel(root, dir), `cycle: ${[...stack, dir].map((d) => rel(root, d)).join(' → ')}`);
  const { file, k } = loadKustomization(dir, root);
  const where = rel(root, file);
  const isComponent = accumulated !== null;
  const kind = (k.kind as string | undefined) ?? 'Kustomization';
  for (const field of Object.keys(k)) {
    if (FIELDS.has(field)) continue;
    if (field in DEPRECATED) throw new KustomizeError(where, `field "${field}" is deprecated in Kustomize v5 (use "${DEPRECATED[field]}") and not implemented by tools/deploy/kustomize.ts`);
    throw new KustomizeError(where, `field "${field}" is not implemented by tools/deploy/kustomize.ts (it renders only: ${[...FIELDS].join(', ')})`);
  }
  if (kind !== 'Kustomization' && kind !== 'Component') throw new KustomizeError(where, `kind "${kind}" is not a kustomization`);
  if (isComponent && kind !== 'Component') throw new KustomizeError(where, `listed under "components" but its kind is ${kind}, not Component`);
  if (!isComponent && kind !== 'Kustomization') throw new KustomizeError(where, `a Component can only be listed under "components", not built or listed under "resources"`);
  if (k.apiVersion !== undefined && k.apiVersion !== API_VERSION[kind]) throw new KustomizeError(where, `apiVersion "${String(k.apiVersion)}" for kind ${kind}: expected ${API_VERSION[kind]}`);

  const objects: Rendered[] = accumulated ?? [];
  const add = (r: Rendered) => {
    const dup = objects.find((o) => sameId(o.object, r.object));
    if (dup) throw new KustomizeError(where, `${idOf(r.object)} from ${r.source} is already defined (${dup.source})`);
    objects.push(r);
  };

  for (const entry of list(k.resources, 'resources', where)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry) || entry.startsWith('git@')) throw new KustomizeError(where, `resources: remote resource "${entry}" is not implemented`);
    const p = resolve(dir, entry);
    if (!existsSync(p)) throw new KustomizeError(where, `resources: "${entry}" does not exist`);
    if (statSync(p).isDirectory()) {
      for (const r of build(p, null, root, [...stack, dir])) add(r);
    } else {
      insideRoot(dir, p, where, 'resources');
      for (const doc of parseYaml(readFileSync(p, 'utf8'), rel(root, p))) {
        if (doc === null) continue;
        add({ object: checkObject(doc, rel(root, p)), source: rel(root, p) });
      }
    }
  }
  let acc = objects;
  for (const entry of list(k.components, 'components', where)) {
    const p = resolve(dir, entry);
    if (!existsSync(p) || !statSync(p).isDirectory()) throw new KustomizeError(where, `components: "${entry}" is not a directory`);
    acc = build(p, acc, root, [...stack, dir]);
  }

  // Kustomize's order: patches, namespace, (prefix/suffix), labels, (annotations), images.
  const patches = k.patches === undefined ? [] : k.patches;
  if (!Array.isArray(patches)) throw new KustomizeError(where, 'patches: must be a list');
  patches.forEach((p, i) => applyPatch(acc, p, `${where}: patches[${i}]`, dir, root));

  if (k.namespace !== undefined) {
    if (typeof k.namespace !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(k.namespace)) throw new KustomizeError(where, 'namespace: must be a DNS label');
    for (const r of acc) {
      if (!NAMESPACED.has(r.object.kind)) throw new KustomizeError(where, `namespace: not implemented for kind ${r.object.kind} (${idOf(r.object)}); it is implemented for ${[...NAMESPACED].join(', ')}`);
      r.object.metadata.namespace = k.namespace;
    }
  }

  const labels = k.labels === undefined ? [] : k.labels;
  if (!Array.isArray(labels)) throw new KustomizeError(where, 'labels: must be a list');
  labels.forEach((l, i) => applyLabels(acc, l, `${where}: labels[${i}]`));

  const images = k.images === undefined ? [] : k.images;
  if (!Array.isArray(images)) throw new KustomizeError(where, 'images: must be a list');
  images.forEach((img, i) => applyImage(acc, img, `${where}: images[${i}]`));
  return acc;
}

function list(value: unknown, field: string, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new KustomizeError(where, `${field}: must be a list of paths`);
  return value as string[];
}

/** Kustomize's load restrictor (LoadRestrictionsRootOnly): files must lie under the kustomization's directory. */
function insideRoot(dir: string, p: string, where: string, field: string) {
  const r = relative(dir, p);
  if (r.startsWith('..') || isAbsolute(r) || r.split(sep).includes('..')) throw new KustomizeError(where, `${field}: file "${relative(dir, p)}" is outside the kustomization's directory (Kustomize refuses it)`);
}

function parseYaml(text: string, where: string): unknown[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new KustomizeError(where, 'not YAML');
  return docs.map((d, i) => {
    if (d.errors.length > 0) throw new KustomizeError(where, `YAML document ${i + 1}: ${d.errors[0].message}`);
    return d.toJS({ maxAliasCount: 0 });
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkObject(doc: unknown, where: string): K8sObject {
  if (!isObject(doc)) throw new KustomizeError(where, 'a document is not a mapping');
  if (typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') throw new KustomizeError(where, 'a document lacks apiVersion or kind');
  if (doc.kind === 'List' || doc.kind.endsWith('List')) throw new KustomizeError(where, `kind ${doc.kind}: lists are not implemented`);
  if (!isObject(doc.metadata) || typeof doc.metadata.name !== 'string' || doc.metadata.name === '') throw new KustomizeError(where, `${doc.kind}: metadata.name is missing`);
  return doc as K8sObject;
}

const groupOf = (o: { apiVersion: string }) => (o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '');
const versionOf = (o: { apiVersion: string }) => o.apiVersion.split('/').pop()!;
export const idOf = (o: K8sObject) => `${o.kind}/${o.metadata.name}${o.metadata.namespace ? ` (namespace ${o.metadata.namespace})` : ''}`;
const sameId = (a: K8sObject, b: K8sObject) =>
  groupOf(a) === groupOf(b) && a.kind === b.kind && a.metadata.name === b.metadata.name && (a.metadata.namespace ?? '') === (b.metadata.namespace ?? '');

function anchored(pattern: string, value: string): boolean {
  return new RegExp(`^(?:${pattern})$`).test(value);
}

/** Equality-based label selectors (`a=b,c==d,e!=f`): set-based ones are refused. */
function matchesLabelSelector(selector: string, labels: Record<string, string>, where: string): boolean {
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .every((term) => {
      const m = /^([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(term);
      if (!m) throw new KustomizeError(where, `target.labelSelector: "${term}" is not an equality-based requirement (the only kind implemented)`);
      return m[2] === '!=' ? labels[m[1]] !== m[3] : labels[m[1]] === m[3];
    });
}

function applyPatch(objects: Rendered[], p: unknown, where: string, dir: string, root: string) {
  if (!isObject(p)) throw new KustomizeError(where, 'must be a mapping');
  for (const f of Object.keys(p)) if (!PATCH_FIELDS.has(f)) throw new KustomizeError(where, `field "${f}" is not implemented (only ${[...PATCH_FIELDS].join(', ')})`);
  if ((p.path === undefined) === (p.patch === undefined)) throw new KustomizeError(where, 'needs exactly one of "path" and "patch"');
  let text: string;
  if (p.path !== undefined) {
    const file = resolve(dir, String(p.path));
    insideRoot(dir, file, where, 'path');
    if (!existsSync(file)) throw new KustomizeError(where, `path: "${String(p.path)}" does not exist`);
    text = readFileSync(file, 'utf8');
  } else text = String(p.patch);
  const docs = parseYaml(text, where);
  if (docs.length !== 1 || !Array.isArray(docs[0])) throw new KustomizeError(where, 'only JSON 6902 patches (a list of operations) are implemented; strategic-merge patches are not');
  const ops = docs[0] as jsonpatch.Operation[];
  if (!isObject(p.target)) throw new KustomizeError(where, 'a JSON 6902 patch needs a "target"');
  const t = p.target;
  for (const f of Object.keys(t)) if (!TARGET_FIELDS.has(f)) throw new KustomizeError(where, `target.${f} is not implemented (only ${[...TARGET_FIELDS].join(', ')})`);
  const matches = objects.filter(({ object: o }) => {
    if (t.group !== undefined && !anchored(String(t.group), groupOf(o))) return false;
    if (t.version !== undefined && !anchored(String(t.version), versionOf(o))) return false;
    if (t.kind !== undefined && !anchored(String(t.kind), o.kind)) return false;
    if (t.name !== undefined && !anchored(String(t.name), o.metadata.name)) return false;
    if (t.namespace !== undefined && !anchored(String(t.namespace), o.metadata.namespace ?? '')) return false;
    if (t.labelSelector !== undefined && !matchesLabelSelector(String(t.labelSelector), o.metadata.labels ?? {}, where)) return false;
    return true;
  });
  if (matches.length === 0) throw new KustomizeError(where, `target ${JSON.stringify(t)} matches no object (Kustomize would silently do nothing)`);
  for (const r of matches) {
    const error = jsonpatch.validate(ops, r.object);
    if (error) throw new KustomizeError(where, `on ${idOf(r.object)}: ${error.name} at operation ${Number(error.index) + 1} (${JSON.stringify(ops[error.index ?? 0])}): ${error.message.split('\n')[0]}`);
    const patched = jsonpatch.applyPatch(structuredClone(r.object), ops, true, true).newDocument as K8sObject;
    if (patched.kind !== r.object.kind || patched.metadata?.name !== r.object.metadata.name) throw new KustomizeError(where, `on ${idOf(r.object)}: a patch may not change kind or metadata.name`);
    // Kustomize drops labels and annotations that a patch left empty.
    for (const f of ['labels', 'annotations'] as const) if (isObject(patched.metadata[f]) && Object.keys(patched.metadata[f]!).length === 0) delete patched.metadata[f];
    r.object = patched;
  }
}

function applyLabels(objects: Rendered[], l: unknown, where: string) {
  if (!isObject(l)) throw new KustomizeError(where, 'must be a mapping');
  for (const f of Object.keys(l)) if (!LABEL_FIELDS.has(f)) throw new KustomizeError(where, `field "${f}" is not implemented (only ${[...LABEL_FIELDS].join(', ')})`);
  if (l.includeSelectors === true) throw new KustomizeError(where, 'includeSelectors: true is not implemented (it rewrites selectors: leave it false)');
  if (!isObject(l.pairs) || Object.values(l.pairs).some((v) => typeof v !== 'string')) throw new KustomizeError(where, 'pairs: must map label names to strings');
  const pairs = l.pairs as Record<string, string>;
  for (const r of objects) {
    r.object.metadata.labels = { ...(r.object.metadata.labels ?? {}), ...pairs };
    if (l.includeTemplates !== true) continue;
    if (['ReplicationController', 'ReplicaSet', 'DaemonSet', 'StatefulSet', 'Job', 'CronJob'].includes(r.object.kind))
      throw new KustomizeError(where, `includeTemplates is implemented for Deployments only, not ${idOf(r.object)}`);
    if (r.object.kind === 'Deployment') {
      const spec = (r.object.spec ??= {}) as Record<string, any>;
      const template = (spec.template ??= {});
      const meta = (template.metadata ??= {});
      meta.labels = { ...(meta.labels ?? {}), ...pairs };
    }
  }
}

/** Kustomize's image.Split: name, tag, digest of an image reference (a registry port is not a tag). */
export function splitImage(ref: string): { name: string; tag: string; digest: string } {
  const slash = ref.indexOf('/');
  const offset = slash > 0 ? slash : 0;
  const search = ref.slice(offset);
  let at = search.indexOf('@');
  let colon = search.indexOf(':');
  if (colon < 0 && at < 0) return { name: ref, tag: '', digest: '' };
  if (at >= 0 && (at < colon || colon < 0)) {
    at += offset;
    return { name: ref.slice(0, at), tag: '', digest: ref.slice(at + 1) };
  }
  if (at >= 0 && colon >= 0) {
    at += offset;
    colon += offset;
    return { name: ref.slice(0, colon), tag: ref.slice(colon + 1, at), digest: ref.slice(at + 1) };
  }
  colon += offset;
  return { name: ref.slice(0, colon), tag: ref.slice(colon + 1), digest: '' };
}

function applyImage(objects: Rendered[], img: unknown, where: string) {
  if (!isObject(img)) throw new KustomizeError(where, 'must be a mapping');
  for (const f of Object.keys(img)) if (!IMAGE_FIELDS.has(f)) throw new KustomizeError(where, `field "${f}" is not implemented (only ${[...IMAGE_FIELDS].join(', ')})`);
  if (typeof img.name !== 'string' || img.name === '') throw new KustomizeError(where, 'name: required');
  const name = img.name;
  const rewrite = (ref: string): string => {
    let { name: n, tag, digest } = splitImage(ref);
    if (n !== name) return ref; // matched on the name alone: a tag or digest in the reference is replaced
    if (typeof img.newName === 'string' && img.newName !== '') n = img.newName;
    const newTag = typeof img.newTag === 'string' ? img.newTag : img.newTag === undefined ? '' : String(img.newTag);
    const newDigest = typeof img.digest === 'string' ? img.digest : '';
    if (newTag && newDigest) [tag, digest] = [newTag, newDigest];
    else if (newTag) [tag, digest] = [newTag, ''];
    else if (newDigest) [tag, digest] = ['', newDigest];
    return `${n}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  };
  // Kustomize's legacy image filter: every `containers` and `initContainers` list, anywhere in an object.
  const walk = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if ((key === 'containers' || key === 'initContainers') && Array.isArray(value))
        for (const c of value) if (isObject(c) && typeof c.image === 'string') c.image = rewrite(c.image);
      walk(value);
    }
  };
  for (const r of objects) walk(r.object);
}

/** Objects sorted by kind, namespace and name: for comparing two renderings. */
export function sortObjects<T extends { kind: string; metadata: { name: string; namespace?: string } }>(objects: T[]): T[] {
  const key = (o: T) => `${o.kind}\u0000${o.metadata.namespace ?? ''}\u0000${o.metadata.name}`;
  return [...objects].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
