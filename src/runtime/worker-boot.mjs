// Worker threads on Node 20 do not inherit tsx's loader hooks: register them in the thread, then
// load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./inference-worker.ts');
