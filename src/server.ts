// The only module that touches process: read the environment, build the app, listen, and shut down
// the way orchestrators expect (src/http/lifecycle.ts). SIGTERM and SIGINT start one drain; more
// signals during it are logged and otherwise ignored (npm, a terminal's Ctrl-C and a process-group
// kill each deliver the signal again). Exit code 0 after a drain, 1 after a fatal error, 2 for a
// configuration that cannot work.
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from './app.js';
import { CLOSE_GRACE_MS, FLUSH_MS } from './http/lifecycle.js';
import { envFromArgs, loadConfig, type Config } from './config/config.js';
import { NotReadyError } from './errors.js';

// Platforms pass flags (KServe: --model_name, --http_port, --model_dir, …): the ones that mean a
// setting here override the environment; the rest are logged and ignored, never a failed start.
const flags = envFromArgs(process.argv.slice(2));
let config: Config;
try {
  config = loadConfig({ ...process.env, ...flags.env });
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const app = await buildApp(config);
const log = app.log;
if (Object.keys(flags.env).length > 0) log.info({ settings: flags.env }, 'settings from command-line flags');
if (flags.ignored.length > 0) log.info({ flags: flags.ignored.slice(0, 32) }, 'command-line flags ignored (flowserve is configured by environment variables; README, Configuration)');


let stopping: Promise<void> | null = null;
function stop(reason: { signal?: string; err?: unknown }, exitCode: number): Promise<void> {
  if (stopping) {
    log.info({ signal: reason.signal }, 'already shutting down; signal ignored');
    return stopping;
  }
  const started = performance.now();
  stopping = (async () => {
    if (reason.err) log.error({ err: reason.err }, 'fatal error: shutting down');
    const drain = await app.lifecycle.drain({
      delayMs: reason.err ? 0 : config.shutdownDelayMs,
      timeoutMs: config.shutdownTimeoutMs,
      log,
    });
    if (drain.cutOff > 0) {
      const aborted = app.flowserve.abort(new NotReadyError('shutting down: the shutdown deadline passed before this request finished; retry'));
      log.warn({ requests: drain.cutOff, queued: aborted }, 'answered 503 to requests still running at SHUTDOWN_TIMEOUT_MS');
      await sleep(FLUSH_MS);
    }
    setTimeout(() => {
      log.error('app did not close in time; exiting');
      process.exit(1);
    }, CLOSE_GRACE_MS).unref();
    await app.close();
    log.info({ ms: Math.round(performance.now() - started), exitCode }, 'shut down');
    process.exitCode = exitCode;
  })();
  return stopping;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop({ signal }, 0));
process.on('uncaughtException', (err) => void stop({ err }, 1));
process.on('unhandledRejection', (err) => void stop({ err }, 1));

try {
  await app.listen({ host: config.host, port: config.port });
} catch (err) {
  log.error({ err }, 'could not listen');
  process.exit(1);
}
// Nothing to serve is a failed start, unless ALLOW_NO_MODELS says otherwise (readiness then says why).
await app.flowserve.whenReady();
if (app.flowserve.state === 'failed') {
  if (config.allowNoModels) log.warn({ reason: app.flowserve.failureReason }, 'no model can be served (ALLOW_NO_MODELS=true): running, not ready');
  else {
    log.fatal({ reason: app.flowserve.failureReason }, `refusing to start: ${app.flowserve.failureReason} (MODEL_DIR=${config.modelDir}; set ALLOW_NO_MODELS=true to run anyway)`);
    await app.close();
    process.exit(1);
  }
}
