// /healthz prober for the benchmark, in its own process so that its latencies are the server's and
// not the load generator's event-loop delay: GET every 20 ms until stdin closes, then print the
// latencies (ms) as one JSON array.
const base = process.argv[2];
const latencies = [];
let running = true;
process.stdin.on('end', () => (running = false)).resume();
while (running) {
  const t = performance.now();
  await fetch(`${base}/healthz`).then((r) => r.arrayBuffer());
  latencies.push(performance.now() - t);
  await new Promise((r) => setTimeout(r, 20));
}
process.stdout.write(JSON.stringify(latencies));
