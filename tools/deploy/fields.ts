// Unknown-field check, like the API server's strict field validation (`kubectl apply` refuses an
// unknown field such as `readinesProbe`). kubernetes-models' validate() does not: its JSON Schemas
// leave additional properties open. Its TypeScript declarations do list every field, though (they
// are generated from the same OpenAPI documents), so this walks an object alongside its declared
// interface with the TypeScript checker and reports every key the interface does not have.
// The program is built once per process (about 1.5 s) and reused.
import { createRequire } from 'node:module';
import ts from 'typescript';

const require = createRequire(import.meta.url);

/** A declared interface: the module that exports the model class, and the interface's name. */
export interface TypeRef {
  module: string;
  iface: string;
}

let cached: { program: ts.Program; checker: ts.TypeChecker; files: Set<string> } | null = null;
const types = new Map<string, ts.Type>();

function declarationFile(module: string): string {
  return require.resolve(module).replace(/\.js$/, '.d.ts');
}

function program(modules: string[]) {
  const files = modules.map(declarationFile);
  if (!cached || files.some((f) => !cached!.files.has(f))) {
    const all = new Set([...(cached?.files ?? []), ...files]);
    const p = ts.createProgram([...all], { lib: ['lib.es5.d.ts'], types: [], skipLibCheck: true, noEmit: true });
    cached = { program: p, checker: p.getTypeChecker(), files: all };
    types.clear();
  }
  return cached;
}

/** Build the TypeScript program for these modules now (so the first check is not the slow one). */
export function prepare(refs: TypeRef[]): void {
  program(refs.map((r) => r.module));
}

function typeOf(ref: TypeRef): ts.Type {
  const key = `${ref.module}#${ref.iface}`;
  const known = types.get(key);
  if (known) return known;
  const { program: p, checker } = program([ref.module]);
  const sf = p.getSourceFile(declarationFile(ref.module));
  let found: ts.Type | undefined;
  if (sf)
    ts.forEachChild(sf, (n) => {
      if (ts.isInterfaceDeclaration(n) && n.name.text === ref.iface) found = checker.getTypeAtLocation(n);
    });
  if (!found) throw new Error(`tools/deploy/fields.ts: no interface ${ref.iface} in ${ref.module}`);
  types.set(key, found);
  return found;
}

/** Paths (`spec.template.spec.containers[0].readinesProbe`) of keys the declared type does not have. */
export function unknownFields(value: unknown, ref: TypeRef, prefix = ''): string[] {
  const { checker } = program([ref.module]);
  const out: string[] = [];
  const walk = (node: unknown, type: ts.Type, path: string) => {
    if (node === null || typeof node !== 'object') return;
    type = checker.getNonNullableType(type);
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
    if (Array.isArray(node)) {
      if (!checker.isArrayType(type)) return;
      const element = checker.getTypeArguments(type as ts.TypeReference)[0];
      node.forEach((v, i) => walk(v, element, `${path}[${i}]`));
      return;
    }
    // A union (IntOrString, …) of object types: accept the keys of any member, check no deeper.
    if (type.isUnion()) {
      const members = type.types.filter((t) => t.flags & ts.TypeFlags.Object);
      if (members.length === 1) return walk(node, members[0], path);
      return;
    }
    const index = type.getStringIndexType();
    if (index) {
      for (const [k, v] of Object.entries(node)) walk(v, index, path ? `${path}.${k}` : k);
      return;
    }
    if (!(type.flags & ts.TypeFlags.Object)) return;
    const props = new Map(checker.getPropertiesOfType(type).map((p) => [p.name, p]));
    if (props.size === 0) return;
    for (const [k, v] of Object.entries(node)) {
      const p = props.get(k);
      const at = path ? `${path}.${k}` : k;
      if (!p) out.push(at);
      else walk(v, checker.getTypeOfSymbol(p), at);
    }
  };
  walk(value, typeOf(ref), prefix);
  return out;
}
