import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import mysql from 'mysql2/promise';
import { PORT, type Sandbox } from '../../src/sandbox/sandbox.ts';
import { startSandbox } from '../helpers/env.ts';
import { ManagerProcess } from '../helpers/manager.ts';
import { artifactsDir, ensureChromium, launchBrowser, type TestBrowser } from '../helpers/browser.ts';

/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a real
 * 3-node sandbox and `regent run`: it shows the topology, follows a kill -9 failover without a
 * reload, and runs a switchover from its button. Screenshots go to test-artifacts/dashboard/.
 */
describe('dashboard', () => {
  let sb: Sandbox;
  let cleanup: (() => Promise<void>) | undefined;
  /** A second running cluster Regent does not know yet: added and removed from the page. */
  let other: Sandbox;
  let otherCleanup: (() => Promise<void>) | undefined;
  let manager: ManagerProcess | undefined;
  let browser: TestBrowser | undefined;
  let page: Page;
  let base: string;
  let token: string;
  const pageErrors: string[] = [];
  const consoleLines: string[] = [];
  const shots = artifactsDir();
  const shot = (name: string) => page.screenshot({ path: join(shots, name), fullPage: true });
  /** The primary the page shows (the name in the cluster header). */
  const shownPrimary = () => page.getByTestId('cluster-primary').getAttribute('data-name');

  before(async () => {
    ensureChromium(); // before anything starts: it may run apt-get
    ({ sandbox: sb, cleanup } = await startSandbox({ nodes: 3 }));
    // Same secrets: the manager's accounts work on both clusters.
    ({ sandbox: other, cleanup: otherCleanup } = await startSandbox({ nodes: 2, cluster: 'other', secretsFrom: join(sb.dir, 'secrets') }));
    manager = new ManagerProcess(sb.configFile);
    await manager.waitFor((e) => e.event === 'manager_started', 15000, 'manager start');
    const listen = sb.config().api?.listen;
    assert.ok(listen, 'the sandbox config has no manager.api.listen');
    base = `http://${listen}`;
    token = readFileSync(join(sb.dir, 'secrets', 'api-token.pw'), 'utf8').trim();
    browser = await launchBrowser({ width: 1400, height: 1000 });
    page = await browser.context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  }, { timeout: 300000 });

  after(async () => {
    await browser?.close();
    await manager?.stop();
    await Promise.all([cleanup?.(), otherCleanup?.()]);
  });

  test('shows the sandbox topology: primary node1 with two replicas', { timeout: 30000 }, async () => {
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal((await fetch(`${base}/ui/nope.js`)).status, 404);

    await page.goto(`${base}/`);
    await page.getByTestId('node-node1').waitFor();
    await page.waitForFunction(() => document.querySelector('[data-testid="node-node3"]')?.getAttribute('data-status') === 'healthy', null, { timeout: 10000 });
    assert.equal(await shownPrimary(), 'node1');
    assert.equal(await page.getByTestId('node-node1').getAttribute('data-role'), 'primary');
    for (const n of ['node2', 'node3']) {
      assert.equal(await page.getByTestId(`node-${n}`).getAttribute('data-role'), 'replica');
      assert.equal(await page.getByTestId(`node-${n}`).getAttribute('data-status'), 'healthy');
      assert.equal(await page.getByTestId(`edge-node1-${n}`).count(), 1, `no arrow from node1 to ${n}`);
    }
    assert.equal(await page.getByTestId('cluster-row-sandbox').getAttribute('data-health'), 'healthy');
    assert.match((await page.getByTestId('plan-candidate').getAttribute('data-name')) ?? '', /^node[23]$/);
    assert.equal(await page.getByTestId('live').getAttribute('data-state'), 'live');
    await shot('01-topology.png');
  });

  test('shows the SQL endpoint and where its statements went (replicas / primary, by reason)', { timeout: 60000 }, async () => {
    const address = `127.0.0.1:${sb.nodes[0]!.port + PORT.sql}`;
    const app = sb.appAccount();
    const open = () => mysql.createConnection({ host: '127.0.0.1', port: sb.nodes[0]!.port + PORT.sql, user: app.user, password: app.password, database: app.database });
    const writer = await open();
    try {
      await writer.query('CREATE TABLE dash (id INT PRIMARY KEY)');
      for (let i = 0; i < 5; i++) await writer.query('INSERT INTO dash VALUES (?)', [i]);
    } finally {
      await writer.end();
    }
    // A session that has not written reads from replicas without waiting for them.
    const reader = await open();
    try {
      for (let i = 0; i < 20; i++) await reader.query('SELECT 1');
    } finally {
      await reader.end();
    }
    assert.equal(await page.getByTestId('sql-address').innerText(), address);
    assert.match(await page.getByTestId('cluster-row-sandbox').innerText(), new RegExp(address.replace(/\./g, '\\.')));
    // The page polls: the counters show up within a refresh or two.
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="sql-replica"]')?.getAttribute('data-count')) >= 20, null, { timeout: 20000 });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="sql-primary"]')?.getAttribute('data-count')) >= 6, null, { timeout: 20000 });
    assert.ok(Number(await page.getByTestId('sql-reason-replica-read').getAttribute('data-count')) >= 20);
    assert.ok(Number(await page.getByTestId('sql-reason-primary-write').getAttribute('data-count')) >= 6, 'CREATE TABLE and the inserts count as writes');
    assert.match(await page.getByTestId('sql-endpoint').innerText(), /replicas\s+\d+\s+\(\d+ %\)/);
    await shot('01b-sql-endpoint.png');
  });

  test('follows a kill -9 failover without a reload and shows it in the recovery timeline', { timeout: 60000 }, async () => {
    // A marker in the page's JS state: a reload would drop it.
    await page.evaluate(() => ((window as unknown as { regentTestMarker: string }).regentTestMarker = 'still here'));
    const since = manager!.events.length;
    await sb.kill(sb.node(1));
    const done = await manager!.waitFor((e) => e.event === 'failover_succeeded', 20000, 'failover', since);
    const newPrimary = sb.nodes.find((n) => `127.0.0.1:${n.port}` === done['newPrimary'])!.name;
    await page.waitForFunction((want) => document.querySelector('[data-testid="cluster-primary"]')?.getAttribute('data-name') === want, newPrimary, { timeout: 15000 });
    await page.locator('[data-testid="recovery"][data-kind="failover"][data-outcome="success"]').first().waitFor({ timeout: 10000 });
    assert.equal(await page.locator('[data-testid="recovery"][data-kind="failover"]').first().getAttribute('data-new-primary'), newPrimary);
    assert.equal(await page.getByTestId(`node-${newPrimary}`).getAttribute('data-role'), 'primary');
    await page.waitForFunction(() => document.querySelector('[data-testid="node-node1"]')?.getAttribute('data-status') === 'unreachable', null, { timeout: 10000 });
    // The steps arrived as recovery_step events while the failover ran.
    const steps = await page.locator('[data-testid="progress-item"][data-kind="failover"] [data-testid="progress-step"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-step')));
    for (const s of ['fence-old-primary', 'promote', 'repoint-replicas']) assert.ok(steps.includes(s), `step ${s} not shown live (shown: ${steps.join(', ')})`);
    assert.equal(await page.evaluate(() => (window as unknown as { regentTestMarker?: string }).regentTestMarker), 'still here', 'the page was reloaded');
    await shot('02-after-failover.png');
  });

  test('a switchover started from the button completes and the page shows the new primary', { timeout: 60000 }, async () => {
    const current = await shownPrimary();
    const target = ['node2', 'node3'].find((n) => n !== current)!;
    const targetId = `127.0.0.1:${sb.node(target).port}`;
    await page.getByTestId('switchover-button').click();
    await page.getByTestId('action-dialog').waitFor();
    await page.getByTestId('switchover-target').selectOption(targetId);
    await shot('03-switchover-dialog.png');
    await page.getByTestId('action-confirm').click();
    // No token in this tab yet: the page asks for it.
    await page.getByTestId('token-dialog').waitFor();
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('token-save').click();
    await page.waitForFunction((want) => document.querySelector('[data-testid="cluster-primary"]')?.getAttribute('data-name') === want, target, { timeout: 30000 });
    await page.locator('[data-testid="notice"][data-kind="ok"]').waitFor({ timeout: 15000 });
    await page.locator('[data-testid="recovery"][data-kind="switchover"][data-outcome="success"]').first().waitFor({ timeout: 10000 });
    assert.equal(await page.getByTestId(`node-${target}`).getAttribute('data-role'), 'primary');
    await page.waitForFunction((old) => document.querySelector(`[data-testid="node-${old}"]`)?.getAttribute('data-role') === 'replica', current, { timeout: 10000 });
    await shot('04-after-switchover.png');
  });

  test('a cluster is added from one of its servers (crawl shown first) and removed, from the page', { timeout: 90000 }, async () => {
    const replica = `127.0.0.1:${other.node(2).port}`;
    await page.getByTestId('add-cluster-button').click();
    await page.getByTestId('add-cluster-name').fill(sb.manifest.cluster);
    await page.getByTestId('add-cluster-seed').fill(replica);
    await page.getByTestId('action-confirm').click();
    // A taken name is refused in the dialog, before anything is asked of the manager.
    assert.match(await page.getByTestId('action-dialog').innerText(), /already/);
    await page.getByTestId('add-cluster-name').fill('other');
    await page.getByTestId('action-confirm').click();
    // The dry run's findings, before anything is registered.
    await page.getByTestId('proposal-instances').waitFor({ timeout: 30000 });
    const found = await page.getByTestId('proposal-instances').innerText();
    assert.match(found, new RegExp(`127\\.0\\.0\\.1:${other.node(1).port}\\s+primary`));
    assert.match(found, new RegExp(`${replica.replaceAll('.', '\\.')}\\s+replica`));
    assert.equal(await page.getByTestId('cluster-row-other').count(), 0, 'registered by the dry run');
    await shot('05-add-cluster.png');
    await page.getByTestId('action-confirm').click();
    await page.getByTestId('cluster-row-other').waitFor({ timeout: 30000 });
    await page.locator('[data-testid="notice"][data-kind="ok"]').waitFor({ timeout: 15000 });
    assert.match(await page.getByTestId('notice').innerText(), /other registered/);
    assert.match(readFileSync(sb.configFile, 'utf8'), /name: other/);

    await page.getByTestId('cluster-row-other').click();
    await page.waitForFunction(() => document.querySelector('.cluster-name')?.textContent?.startsWith('other'), undefined, { timeout: 15000 });
    await page.getByTestId('remove-cluster-button').click();
    await page.getByTestId('remove-cluster-name').fill('wrong');
    await page.getByTestId('action-confirm').click();
    assert.match(await page.getByTestId('action-dialog').innerText(), /to confirm/);
    await page.getByTestId('remove-cluster-name').fill('other');
    await page.getByTestId('action-confirm').click();
    await page.waitForFunction(() => !document.querySelector('[data-testid="cluster-row-other"]'), undefined, { timeout: 30000 });
    assert.doesNotMatch(readFileSync(sb.configFile, 'utf8'), /name: other/);
    // The servers were not touched.
    const [[row]] = (await other.sql(other.node(1), ['SELECT @@read_only AS ro'])) as [[{ ro: number }]];
    assert.equal(Number(row.ro), 0);
  });

  test('a refused token is shown as a readable message', { timeout: 30000 }, async () => {
    await page.evaluate(() => sessionStorage.setItem('regent.apiToken', 'not-the-token'));
    await page.getByTestId('ack-button').click();
    await page.getByTestId('action-confirm').click();
    const notice = page.locator('[data-testid="notice"][data-kind="error"]');
    await notice.waitFor({ timeout: 10000 });
    assert.match(await notice.innerText(), /401/);
    assert.match(await notice.innerText(), /token/i);
    // A refused token is not kept.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('regent.apiToken')), null);
    await shot('06-refused-token.png');
  });

  test('no secret is in the page or its console', { timeout: 30000 }, async () => {
    const secrets = readdirSync(join(sb.dir, 'secrets'))
      .filter((f) => f.endsWith('.pw'))
      .map((f) => ({ f, v: readFileSync(join(sb.dir, 'secrets', f), 'utf8').trim() }))
      .filter((x) => x.v.length >= 6);
    assert.ok(secrets.some((s) => s.f === 'api-token.pw'));
    const html = await page.content();
    const text = await page.evaluate(() => document.body.innerText);
    for (const { f, v } of secrets) {
      assert.ok(!html.includes(v), `the page HTML contains the secret of ${f}`);
      assert.ok(!text.includes(v), `the page text contains the secret of ${f}`);
      assert.ok(!consoleLines.some((l) => l.includes(v)), `the console shows the secret of ${f}`);
    }
    assert.deepEqual(pageErrors, [], `JavaScript errors in the page: ${pageErrors.join('; ')}`);
    // Everything the page loads comes from the manager: no CSP violation, no blocked resource.
    const blocked = consoleLines.filter((l) => /Content Security Policy|Refused to/i.test(l));
    assert.deepEqual(blocked, [], `blocked by the page's CSP: ${blocked.join('; ')}`);
  });
});
