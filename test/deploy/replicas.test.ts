// Several replicas behind a real load balancer, on one machine (issue 15): the multi-replica drill
// (tools/drills/replicas.ts) shortened for CI. 3 replicas of realnvp-moons (the real server, each
// in its own process group) behind HAProxy (Debian's, foreground, loopback only) that routes by
// /readyz, under steady load from a separate process: a rolling restart of all 3 must not fail a
// single request, and a SIGKILLed replica must cost at most the requests in flight while HAProxy
// marks it DOWN within fall x inter + timeout check (+ slack). No bound on speed beyond that.
// HAProxy missing is a failure, not a skip: `.ci/run` installs it with apt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HAPROXY_MISSING, KILL_DOWN_BOUND_MS, findHaproxy, printReport, runDrill } from '../../tools/drills/replicas.js';
import {
  DRAIN_MARGIN_MS,
  HEALTH_CHECK,
  SHUTDOWN_DELAY_MS,
  checkDrainFitsHealthCheck,
  fillTemplate,
  markDownBoundMs,
  parseRequestLog,
  parseStatsCsv,
  renderConfig,
} from '../../tools/drills/replicas-haproxy.js';

test('the replicas drain for longer than HAProxy takes to mark them DOWN', () => {
  assert.equal(markDownBoundMs(), HEALTH_CHECK.fall * HEALTH_CHECK.interMs + HEALTH_CHECK.timeoutMs);
  assert.ok(SHUTDOWN_DELAY_MS >= markDownBoundMs() + DRAIN_MARGIN_MS);
  assert.ok(SHUTDOWN_DELAY_MS < 25_000, 'below the default SHUTDOWN_TIMEOUT_MS');
  assert.doesNotThrow(() => checkDrainFitsHealthCheck(SHUTDOWN_DELAY_MS));
  assert.throws(() => checkDrainFitsHealthCheck(markDownBoundMs()), /shorter than HAProxy needs/);
  assert.throws(() => checkDrainFitsHealthCheck(5000, { interMs: 2000, fall: 3, timeoutMs: 1000 }), /fall 3 x inter 2000 ms/);
});

test('the HAProxy config is generated from the template and HAProxy accepts it', () => {
  const haproxy = findHaproxy();
  assert.ok(haproxy, HAPROXY_MISSING);
  assert.throws(() => fillTemplate('bind {{PORT}} {{OTHER}}', { PORT: 1 }), /no value for \{\{OTHER\}\}/);
  const servers = [
    { name: 'r1', port: 18101 },
    { name: 'r2', port: 18102 },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'flowserve-haproxy-cfg-'));
  try {
    for (const retries of ['l7', 'conn', 'none'] as const) {
      const cfg = renderConfig({ frontendPort: 18100, statsPort: 18099, servers, retries });
      assert.match(cfg, /http-check send meth GET uri \/readyz/);
      assert.match(cfg, /http-check expect status 200/);
      assert.match(cfg, new RegExp(`default-server check inter ${HEALTH_CHECK.interMs}ms fall ${HEALTH_CHECK.fall} rise ${HEALTH_CHECK.rise}`));
      assert.match(cfg, new RegExp(`timeout check ${HEALTH_CHECK.timeoutMs}ms`));
      assert.match(cfg, /server r2 127\.0\.0\.1:18102/);
      assert.doesNotMatch(cfg, /bind (?!127\.0\.0\.1:)/, 'loopback only');
      if (retries === 'l7') {
        assert.match(cfg, /retry-on conn-failure empty-response response-timeout/);
        assert.match(cfg, /option http-buffer-request/);
        assert.match(cfg, /option redispatch 1/);
      }
      const path = join(dir, `${retries}.cfg`);
      writeFileSync(path, cfg);
      const check: ReturnType<typeof spawnSync> = spawnSync(haproxy!, ['-c', '-f', path], { encoding: 'utf8' });
      assert.equal(check.status, 0, `haproxy -c (${retries}): ${check.stdout}${check.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('HAProxy stats CSV and request log lines are parsed', () => {
  const csv = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status\n' +
    'be_flowserve,r1,0,0,3,5,,120,1,2,,0,,0,0,2,1,UP 1/2,1,1,0,0,0,5,0,,1,3,1,,120,,2,0,,9,L7STS\n';
  const [row] = parseStatsCsv(csv);
  assert.deepEqual(row, { pxname: 'be_flowserve', svname: 'r1', status: 'UP 1/2', scur: 3, stot: 120, wretr: 2, wredis: 1, checkStatus: 'L7STS' });
  const line = parseRequestLog('1795635484.364 c1-129 be_flowserve/r3 200 +1 ---- 0/0/0/11/11 "POST /likelihood HTTP/1.1"');
  assert.deepEqual({ ...line, line: undefined }, { at: 1795635484364, id: 'c1-129', server: 'r3', status: 200, redispatched: true, retries: 1, termination: '----', line: undefined });
  assert.equal(parseRequestLog('[WARNING]  (1) : Server be_flowserve/r2 is DOWN, reason: Layer4 connection problem'), null);
});

test('3 replicas behind HAProxy: a rolling restart fails no request; a killed replica is routed around', { timeout: 300_000 }, async () => {
  assert.ok(findHaproxy(), HAPROXY_MISSING);
  const report = await runDrill({ models: ['realnvp-moons'], replicas: 3, clients: 8, baselineS: 2, gapS: 1, retries: 'l7', log: (l) => console.log(l) });
  printReport(report);
  const window = (name: string) => report.windows.find((w) => w.window === name)!;

  // rolling restart: every replica drained, exited 0, came back; not one request failed
  assert.equal(report.restarts.length, 3);
  for (const r of report.restarts) {
    assert.equal(r.exitCode, 0, `${r.replica} exit code after SIGTERM`);
    assert.ok(r.downMs !== null && r.downMs < report.shutdownDelayMs, `${r.replica} marked DOWN (${r.downMs} ms) before its drain stopped serving (${report.shutdownDelayMs} ms)`);
    assert.ok(r.restartToUpMs !== null, `${r.replica} UP again`);
  }
  const rolling = window('rolling restart');
  assert.ok(rolling.requests > 0);
  assert.equal(rolling.failed, 0, `failed requests during the rolling restart: ${JSON.stringify(rolling.failures)} ${JSON.stringify(report.failedRequests.slice(0, 5))}`);
  assert.equal(window('baseline').failed, 0);

  // kill: failures bounded by the requests in flight, DOWN within the configured bound, traffic goes on
  const k = report.kill!;
  assert.equal(k.exitSignal, 'SIGKILL');
  assert.ok(k.failures <= k.inFlightUntilExit, `${k.failures} failures > ${k.inFlightUntilExit} in flight`);
  assert.ok(k.downMs !== null && k.downMs <= KILL_DOWN_BOUND_MS, `DOWN after ${k.downMs} ms (bound ${KILL_DOWN_BOUND_MS} ms from inter/fall/timeout check)`);
  assert.ok(k.okOnOthersAfterKill > 0, 'requests answered by the other replicas after the kill');
  assert.ok(k.restartToUpMs !== null);
  assert.ok(window('after').ok > 0 && window('after').failed === 0, 'traffic after the killed replica came back');
  assert.deepEqual(report.problems, []);

  // nothing left behind
  assert.deepEqual(report.cleanup.leftoverGroups, [], 'process groups still alive');
  assert.ok(report.cleanup.groups.length >= 3 + 3 + 1 + 2, 'replicas, their restarts, HAProxy and the load generator were tracked');
  for (const d of report.cleanup.tempDirs) assert.equal(existsSync(d), false, `${d} removed`);
});
