// Command-line parsing for the scripts: node:util parseArgs (strict: unknown or valueless options
// are refused) with one model name as the only positional argument.
import { parseArgs } from 'node:util';

/** A mistake in how a script was called: printed as one line, no stack trace. */
export class UsageError extends Error {}

export function parseModelArgs(argv: string[], flags: readonly string[], usage: string): { name: string; opts: Record<string, string> } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: Object.fromEntries(flags.map((f) => [f, { type: 'string' as const }])) });
  } catch (err) {
    // Node's own wording is long ("To specify a positional argument starting with a '-' …"): name the option
    const e = err as Error & { code?: string };
    const option = /'(-[^']*)'/.exec(e.message)?.[1];
    const what = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? `unknown option ${option}` : e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ? `${option} needs a value` : e.message;
    throw new UsageError(`${what}\n${usage}`);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `one model name, got ${positionals.join(' ')}\n${usage}` : usage);
  return { name: positionals[0], opts: values as Record<string, string> };
}
