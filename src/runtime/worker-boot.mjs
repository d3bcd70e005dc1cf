// Entry of every inference worker. Neither worker threads nor forked processes inherit tsx's
// loader hooks here (the fork gets no execArgv): register them, then load the TypeScript entry for
// this kind of worker.
import { isMainThread } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(isMainThread ? './inference-process.ts' : './inference-worker.ts');
