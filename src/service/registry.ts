// Model packages on disk → validated, checksummed packages with their LU matrices built.
// A package that fails any check is refused with the reason; the others still load.
// Every file is read once: its sha256 is computed on the bytes held in memory, and those same bytes
// are what the inference workers (and their replacements) load, so a file changed on disk after
// the check is never used. Reasons name files relative to the package, never an absolute path.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Dirent } from 'node:fs';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { LuFileSchema, ManifestSchema, type Manifest } from '../config/manifest-schema.js';
import { availableScores, type ScoreName } from '../flow/anomaly.js';
import { buildLuConv, validateLuFactors, type LuConv } from '../flow/lu.js';
import { product } from '../flow/layout.js';

export const LU_RESIDUAL_TOLERANCE = 1e-5;

export interface LuLayer extends LuConv {
  name: string;
  forwardInput: string;
  inverseInput: string;
}

/** The reserved graph name of the external-data file the graphs share. */
export const WEIGHTS = 'weights';

/** The verified bytes the sessions are created from (one buffer per file, shared by the graphs). */
export interface PackageBytes {
  /** Every graph the manifest declares, by name (manifest.graphs without `weights`). */
  graphs: Record<string, Uint8Array>;
  /** manifest.graphs.weights: the external-data file the graphs name, when the package has one. */
  weights?: Uint8Array;
  /** Every file of `files`, verified (side files a family's program reads, e.g. planar.json). */
  files: Map<string, Uint8Array>;
}

export interface ModelPackage {
  name: string;
  /** Where it was read from: for the log only (reasons and responses carry no paths). */
  dir: string;
  manifest: Manifest;
  lu: LuLayer[];
  /** The per-input anomaly scores this package can compute (fixed by its data kind and calibration). */
  scores: ScoreName[];
  bytes: PackageBytes;
}

export interface RefusedPackage {
  name: string;
  dir: string;
  /** Public: relative file names at most. */
  reason: string;
  /** For the log: what went wrong beyond the reason (may hold paths). */
  detail?: string;
}

export class PackageError extends Error {}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function firstSchemaError(schema: Parameters<typeof Value.Errors>[0], value: unknown): string | null {
  const e = Value.Errors(schema, value).First();
  return e ? `${e.path || '/'}: ${e.message}` : null;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new PackageError(`${what} is missing`);
  }
  return parseJson(text, what);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PackageError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * One package folder. `name` is the folder's name, which flow.json must repeat; null for a MODEL_DIR
 * that is itself the package (KServe), whose flow.json names it, or `servedAs` (MODEL_NAME) does.
 */
export async function loadPackage(dir: string, name: string | null, servedAs?: string): Promise<ModelPackage> {
  const manifestJson = await readJson(join(dir, 'flow.json'), 'flow.json');
  const schemaError = firstSchemaError(ManifestSchema, manifestJson);
  if (schemaError) throw new PackageError(`flow.json does not match the manifest schema: ${schemaError}`);
  const manifest = manifestJson as Manifest;
  if (name !== null && manifest.name !== name) throw new PackageError(`flow.json names '${manifest.name}' but the folder is '${name}'`);
  // A default the package's own measurement calls unusable would make every plain /sample request degenerate.
  const maxT = manifest.sampling?.maxTemperature;
  if (maxT !== undefined && manifest.defaultTemperature > maxT)
    throw new PackageError(`defaultTemperature ${manifest.defaultTemperature} is above the measured maximum ${maxT} (sampling.maxTemperature)`);

  const referenced = [...Object.values(manifest.graphs), manifest.lu?.file].filter((f): f is string => !!f);
  for (const f of referenced) if (!(f in manifest.files)) throw new PackageError(`flow.json files has no sha256 for '${f}'`);
  const verified = new Map<string, Buffer>();
  for (const [file, expected] of Object.entries(manifest.files)) {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, file));
    } catch {
      throw new PackageError(`${file} is missing`);
    }
    const actual = sha256(bytes);
    if (actual !== expected) throw new PackageError(`${file} sha256 mismatch: manifest ${expected.slice(0, 12)}…, file ${actual.slice(0, 12)}… (tampered or truncated)`);
    verified.set(file, bytes);
  }
  const bytes: PackageBytes = {
    graphs: Object.fromEntries(Object.entries(manifest.graphs).filter(([g]) => g !== WEIGHTS).map(([g, file]) => [g, verified.get(file)!])),
    ...(manifest.graphs.weights ? { weights: verified.get(manifest.graphs.weights)! } : {}),
    files: verified,
  };

  const dataDim = product(manifest.data.shape);
  const latentDim = manifest.latent.parts.reduce((s, p) => s + product(p.shape), 0);
  if (latentDim !== manifest.latent.size || dataDim !== manifest.latent.size)
    throw new PackageError(`latent.size ${manifest.latent.size}, latent parts ${latentDim} and data shape ${dataDim} must agree`);
  if (manifest.data.kind === 'image' && (manifest.data.shape.length !== 3 || manifest.data.range === null || manifest.data.bitDepth === null))
    throw new PackageError('image models need data.shape [C, H, W], a range and a bit depth');

  const cal = manifest.calibration;
  const scores = availableScores(manifest.data, !!cal?.scores.nll);
  if (cal) {
    if (!scores.includes(cal.defaultScore as ScoreName)) throw new PackageError(`calibration.defaultScore '${cal.defaultScore}' is not a score this model can compute (${scores.join(', ')})`);
    if (!cal.scores[cal.defaultScore]) throw new PackageError(`calibration.defaultScore '${cal.defaultScore}' has no statistics in calibration.scores`);
  }

  const lu: LuLayer[] = [];
  if (manifest.lu) {
    const luJson = parseJson(verified.get(manifest.lu.file)!.toString('utf8'), manifest.lu.file);
    const luError = firstSchemaError(LuFileSchema, luJson);
    if (luError) throw new PackageError(`${manifest.lu.file}: ${luError}`);
    const layers = Value.Cast(LuFileSchema, luJson).layers;
    if (layers.length !== manifest.lu.layers) throw new PackageError(`${manifest.lu.file} has ${layers.length} layers, flow.json says ${manifest.lu.layers}`);
    for (const layer of layers) {
      const bad = validateLuFactors(layer);
      if (bad) throw new PackageError(`${manifest.lu.file} layer '${layer.name}': ${bad}`);
      const conv = buildLuConv(layer);
      if (!(conv.residual <= LU_RESIDUAL_TOLERANCE))
        throw new PackageError(`${manifest.lu.file} layer '${layer.name}': ‖W·W⁻¹ − I‖∞ = ${conv.residual.toExponential(2)} > ${LU_RESIDUAL_TOLERANCE}`);
      lu.push({ ...conv, name: layer.name, forwardInput: layer.forwardInput, inverseInput: layer.inverseInput });
    }
  }
  return { name: servedAs || (name ?? manifest.name), dir, manifest, lu, scores, bytes };
}

/** An entry of MODEL_DIR that is not a package (no flow.json): not an error, but worth a log line. */
export interface SkippedEntry {
  name: string;
  dir: string;
  reason: string;
}

/**
 * What an entry of MODEL_DIR is, following symbolic links (a MODEL_DIR of links to package folders
 * elsewhere is a common deployment). A link that leads nowhere usable is refused by name, so the
 * operator sees it; a plain file is not a package candidate and is ignored.
 */
async function classify(dir: string, entry: Dirent): Promise<'folder' | 'other' | Omit<RefusedPackage, 'name' | 'dir'>> {
  if (entry.isDirectory()) return 'folder';
  if (!entry.isSymbolicLink()) return 'other';
  const target = await readlink(dir).catch(() => '?');
  try {
    if ((await stat(dir)).isDirectory()) return 'folder';
    return { reason: 'symbolic link to something that is not a folder (a package is a folder holding flow.json)', detail: `links to ${target}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { reason: 'symbolic link whose target does not exist (dangling link)', detail: `links to ${target}` };
    return { reason: `symbolic link whose target cannot be read (${code ?? 'error'})`, detail: `links to ${target}: ${String(err)}` };
  }
}

/**
 * Every sub-folder of modelDir (or symbolic link to one) that holds a flow.json is a package.
 * Folders without one are returned as `skipped`, for the log.
 */
export async function loadPackages(modelDir: string, modelName = ''): Promise<{ loaded: ModelPackage[]; refused: RefusedPackage[]; skipped: SkippedEntry[]; single: boolean }> {
  // KServe's storage initializer copies a storageUri naming one package to /mnt/models itself: a
  // MODEL_DIR holding flow.json is that one package, served as MODEL_NAME (--model_name) when set.
  if (await stat(join(modelDir, 'flow.json')).then(() => true, () => false)) {
    try {
      return { loaded: [await loadPackage(modelDir, null, modelName)], refused: [], skipped: [], single: true };
    } catch (err) {
      const name = modelName || 'model';
      const reason = err instanceof PackageError ? err.message : 'the package could not be read';
      return { loaded: [], refused: [{ name, dir: modelDir, reason, ...(err instanceof PackageError ? {} : { detail: String(err) }) }], skipped: [], single: true };
    }
  }
  const entries = await readdir(modelDir, { withFileTypes: true });
  const loaded: ModelPackage[] = [];
  const refused: RefusedPackage[] = [];
  const skipped: SkippedEntry[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = join(modelDir, e.name);
    const kind = await classify(dir, e);
    if (kind === 'other') continue;
    if (kind !== 'folder') {
      refused.push({ name: e.name, dir, ...kind });
      continue;
    }
    try {
      await stat(join(dir, 'flow.json'));
    } catch {
      skipped.push({ name: e.name, dir, reason: 'no flow.json: not a model package' });
      continue;
    }
    try {
      loaded.push(await loadPackage(dir, e.name));
    } catch (err) {
      if (err instanceof PackageError) refused.push({ name: e.name, dir, reason: err.message });
      else refused.push({ name: e.name, dir, reason: 'the package could not be read', detail: String(err) });
    }
  }
  return { loaded, refused, skipped, single: false };
}
