// Inference worker thread (INFERENCE_ISOLATION=thread): the host over the thread's message port.
// A native crash here takes the whole process with it; docs/reliability.md compares the designs.
import { parentPort } from 'node:worker_threads';
import { serveInference } from './inference-host.js';

const port = parentPort;
if (!port) throw new Error('inference-worker must run in a worker thread');
serveInference({
  send: (m, transfer = []) => port.postMessage(m, transfer),
  transfers: true,
  onMessage: (handler) => port.on('message', handler),
  // Ends this thread only; messages already posted are delivered.
  exit: (code) => process.exit(code),
});
