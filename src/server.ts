// The only module that touches process: read the environment, build the app, listen, and close
// gracefully on SIGTERM/SIGINT (stop accepting, finish in-flight requests, exit 0).
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { loadConfig } from './config/config.js';

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const app = await buildApp(config);
closeWithGrace({ delay: config.requestTimeoutMs + 5000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an uncaught error');
  else app.log.info({ signal }, 'closing: no new connections, finishing in-flight requests');
  await app.close();
});
try {
  await app.listen({ host: config.host, port: config.port });
} catch (err) {
  app.log.error({ err }, 'could not listen');
  process.exit(1);
}
