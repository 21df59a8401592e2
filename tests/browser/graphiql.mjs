// GraphiQL in a real browser: Debian's Chromium, headless, through playwright-core, against a sandbox-mode gateway,
// with every request to anything but the gateway blocked (DNS and request interception both).
//
//   node graphiql.mjs [path/to/kyc-gateway]      (or KYC_GATEWAY_BIN; default target/debug/kyc-gateway)
//
// It builds nothing: .ci/browser.sh installs Chromium when missing, builds the binary and runs this. It starts the
// binary (`serve --listen 127.0.0.1:0 --addr-file ...`), mints tokens with `kyc-gateway token`, and
//   1. runs `{ me { id emails { address } } }` from GraphiQL with the seed person's token in the Headers pane and
//      waits for their id in the result pane;
//   2. runs `subscription { verificationChanged { provider state } }` for a user whose Sumsub review is pending,
//      approves them at the sandbox Sumsub, and waits for APPROVED in the result pane (over /graphql/ws);
//   3. signs in with the Sign in button through the sandbox sign-in page (the authorization-code flow with PKCE):
//      fills its form for the pending user with their scopes, comes back to GraphiQL, runs `{ me { id } }` and the
//      subscription again (a rejection this time), and checks that the token is in no localStorage, no
//      sessionStorage (the flow's state and verifier are gone after the callback), no cookie (document.cookie and the
//      browser's cookie jar) and not in the URL;
//   4. in production mode (introspection off): starts `kyc-gateway sandbox` for the providers, a tiny OpenID provider
//      (openid.mjs) and a production-mode gateway trusting it and signing GraphiQL in at it; signs in as staff-1 with
//      `schema:read uid:read`, and checks that GraphiQL's schema is the token's cut (introspection per token): the
//      documentation explorer lists exactly Query's `_service me user users` and User's `accessLog id kycState`,
//      completion offers those fields and no other, a shown field answers and a hidden one (`emails`) is refused, and
//      the token is in no storage or cookie;
// then fails if any request left the gateway's origin (and, in 4, the provider's), or the console showed an error, or
// the page's (or the sign-in page's) Content-Security-Policy was violated. Screenshots go to target/browser/
// (BROWSER_SCREENSHOTS overrides).

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

import { startIssuer } from './openid.mjs';

const SEED = 'b76ab44d-b71e-4d19-b6f9-f6e88cd73946';
const SEED_SCOPES = 'uid:read contact:read verification.plus:read verification.plus.details:read';
// A user whose Sumsub review is pending in the sandbox (docs/operations.md, "Live changes").
const PENDING = '5246b314-ecd5-4fca-95a0-99069c7d64aa';
const PENDING_SCOPES = 'uid:read verification.basic:read verification.selfie:read verification.liveness:read';
// The staff member of the production-mode step and the scopes GraphiQL asks for; what that token's schema holds
// (tests/api/introspection.rs walks the same cut field by field).
const STAFF = 'staff-1';
const AUDIENCE = 'kyc-gateway';
const CLIENT_ID = 'graphiql';
const STAFF_SCOPES = 'schema:read uid:read';
// `_service` (federation) answers the cut SDL to a token with `schema:read`.
const STAFF_QUERY_FIELDS = ['_service', 'me', 'user', 'users'];
const STAFF_USER_FIELDS = ['accessLog', 'id', 'kycState'];
const HIDDEN_QUERY_FIELDS = ['auditEvents', 'kycApplication', 'kycApplications', 'verificationStats'];
const HIDDEN_USER_FIELDS = ['emails', 'phones', 'wallets', 'verificationCases', 'kycApplications'];

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BIN = path.resolve(process.argv[2] || process.env.KYC_GATEWAY_BIN || path.join(ROOT, 'target/debug/kyc-gateway'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.resolve(process.env.BROWSER_SCREENSHOTS || path.join(ROOT, 'target/browser'));
const STEP_TIMEOUT_MS = 30_000;
const WATCHDOG_MS = 180_000;

const log = (line) => console.log(line);

// The gateway in sandbox mode: no KYC_GATEWAY_* setting of the caller's environment leaks into it.
const gatewayEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KYC_GATEWAY_')));
gatewayEnv.RUST_LOG = 'info';

let browser = null;
let scratch = null;
let issuer = null;
// Every process this test started, stopped at the end.
const children = [];

async function cleanUp() {
  if (browser) await browser.close().catch(() => {});
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  if (issuer) await issuer.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

function fail(message) {
  console.error(`FAIL: ${message}`);
  return cleanUp().finally(() => process.exit(1));
}

const watchdog = setTimeout(() => fail(`the test did not finish in ${WATCHDOG_MS / 1000} s`), WATCHDOG_MS);

// Runs the binary with `args` and `env`, keeping what it prints; polls `started(output)` until it answers something
// (not null) within 60 s, and returns that with the output so far.
async function startProcess(name, args, env, started) {
  if (!existsSync(BIN)) throw new Error(`no gateway binary at ${BIN} (cargo build --bin kyc-gateway)`);
  let output = '';
  const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`${name} did not start in 60 s:\n${output}`);
    const ready = started(output);
    if (ready) return { ...ready, output: () => output };
    await sleep(50);
  }
}

function addrIn(file) {
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || null : null;
}

// Starts the sandbox-mode gateway on port 0 and returns its origin and the sandbox Sumsub's URL (from its start-up log).
async function startGateway() {
  const addrFile = path.join(scratch, 'addr');
  return startProcess('the gateway', ['serve', '--listen', '127.0.0.1:0', '--addr-file', addrFile], gatewayEnv, (output) => {
    const addr = addrIn(addrFile);
    const sumsub = output.match(/sumsub (http:\/\/[^\s,]+)/i);
    return addr && sumsub ? { origin: `http://${addr}`, sumsub: sumsub[1] } : null;
  });
}

// `kyc-gateway sandbox`: the sandbox providers alone, and the variables a production-mode gateway needs to use them
// (its `--env-file`, `NAME=value` lines with values quoted for a POSIX shell), read once its header is printed.
async function startSandboxProviders() {
  const envFile = path.join(scratch, 'sandbox.env');
  const { output } = await startProcess('kyc-gateway sandbox', ['sandbox', '--env-file', envFile],
    { ...gatewayEnv, RUST_LOG: 'warn' }, (out) => (out.includes("# The sandbox providers' variables") ? {} : null));
  const variables = {};
  for (const line of readFileSync(envFile, 'utf8').split('\n').filter(Boolean)) {
    const [, name, value] = line.match(/^(KYC_GATEWAY_[A-Z0-9_]+)=(.*)$/) || [];
    if (!name) throw new Error(`an unexpected line in the sandbox's env file: ${line}`);
    variables[name] = value.startsWith("'") ? value.slice(1, -1).replaceAll("'\\''", "'") : value;
  }
  return { variables, output };
}

// A production-mode gateway on port 0 (its /metrics on a port of its own) using the sandbox providers, with `issuer`
// as its one token issuer and GraphiQL's sign-in issuer, an in-memory database and a fresh encryption key.
async function startProductionGateway(providers, issuerUrl) {
  const addrFile = path.join(scratch, 'production-addr');
  const env = {
    ...gatewayEnv,
    ...providers,
    KYC_GATEWAY_MODE: 'production',
    KYC_GATEWAY_DATABASE_URL: 'sqlite::memory:',
    KYC_GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    KYC_GATEWAY_METRICS_LISTEN: '127.0.0.1:0',
    KYC_GATEWAY_JWT_ISSUERS: issuerUrl,
    KYC_GATEWAY_JWT_AUDIENCE: AUDIENCE,
    KYC_GATEWAY_GRAPHIQL_ISSUER: issuerUrl,
    KYC_GATEWAY_GRAPHIQL_CLIENT_ID: CLIENT_ID,
    KYC_GATEWAY_GRAPHIQL_SCOPES: STAFF_SCOPES,
  };
  return startProcess('the production-mode gateway', ['serve', '--listen', '127.0.0.1:0', '--addr-file', addrFile], env,
    () => {
      const addr = addrIn(addrFile);
      return addr ? { origin: `http://${addr}` } : null;
    });
}

function token(sub, scope) {
  return execFileSync(BIN, ['token', '--sub', sub, '--scope', scope], { env: gatewayEnv, encoding: 'utf8' }).trim();
}

// A browser context that can reach the gateway's origin only (and the origins of `also`), recording everything it
// asks for.
async function isolatedContext(origin, record, also = []) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    record.requests.push(url);
    if ([origin, ...also].includes(new URL(url).origin)) return route.continue();
    record.blocked.push(url);
    return route.abort('blockedbyclient');
  });
  // Chromium logs a violation to the console itself; this names the directive and the blocked URL as well.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  return context;
}

async function openGraphiql(context, origin, record) {
  const page = await context.newPage();
  page.on('console', (message) => {
    const line = `console.${message.type()}: ${message.text()}`;
    if (message.type() === 'error') record.errors.push(line);
    else if (message.type() === 'warning') record.warnings.push(line);
  });
  page.on('pageerror', (error) => record.errors.push(`page error: ${error.message}`));
  page.on('websocket', (socket) => record.requests.push(socket.url()));
  const response = await page.goto(`${origin}/graphiql`, { waitUntil: 'load' });
  if (!response || response.status() !== 200) throw new Error(`GET /graphiql answered ${response && response.status()}`);
  const csp = response.headers()['content-security-policy'] || '';
  if (!csp.includes("script-src 'self'")) throw new Error(`the page's CSP is ${JSON.stringify(csp)}`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: STEP_TIMEOUT_MS });
  return page;
}

// The text of a CodeMirror editor under `selector`.
function editorText(page, selector) {
  return page.evaluate((s) => {
    const editor = document.querySelector(`${s} .CodeMirror`);
    return editor ? editor.CodeMirror.getValue() : null;
  }, selector);
}

// Replaces the text of the CodeMirror editor under `selector` as a user would: click, select all, type.
async function type(page, selector, text) {
  await page.locator(`${selector} .CodeMirror`).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // One input event, as a paste: typing `{` key by key would have CodeMirror close the bracket itself.
  await page.keyboard.insertText(text);
  const typed = await editorText(page, selector);
  if (typed !== text) throw new Error(`the editor ${selector} holds ${JSON.stringify(typed)}`);
}

// Puts `headers` in the Headers pane, then re-fetches the schema with them (at load GraphiQL introspects with no
// headers, which the page's fetcher answers itself: assets/app.js).
async function enterHeaders(page, headers) {
  await page.locator('.graphiql-editor-tools button', { hasText: 'Headers' }).click();
  await type(page, '.graphiql-editor-tool .graphiql-editor:not(.hidden)', JSON.stringify(headers, null, 2));
  const introspected = page.waitForResponse(
    (r) => r.url().endsWith('/graphql') && (r.request().postData() || '').includes('IntrospectionQuery'),
    { timeout: STEP_TIMEOUT_MS },
  );
  await page.locator('button[aria-label="Re-fetch GraphQL schema"]').click();
  const answer = await introspected;
  if (answer.status() !== 200) throw new Error(`the introspection answered ${answer.status()}`);
}

// Types `query` into the query editor, replacing what is there, and runs it.
async function run(page, query) {
  await type(page, '.graphiql-query-editor', query);
  await page.locator('.graphiql-execute-button').click();
}

// Waits until the result pane holds `text`, and returns what it holds.
async function resultContaining(page, text, timeout = STEP_TIMEOUT_MS) {
  try {
    await page.waitForFunction(
      (t) => {
        const editor = document.querySelector('.result-window .CodeMirror');
        return editor && editor.CodeMirror.getValue().includes(t);
      },
      text,
      { timeout, polling: 100 },
    );
  } catch {
    const shown = await editorText(page, '.result-window');
    throw new Error(`the result pane never showed ${text}; it shows ${JSON.stringify(shown)}`);
  }
  return editorText(page, '.result-window');
}

// The field names the documentation explorer lists for `type`, reached as a user would: from the root types (the
// explorer's first page) by clicking the type's name, or through `via` (a field of the current page whose type it is).
async function documentedFields(page, type, via) {
  const docs = page.locator('.graphiql-doc-explorer');
  if (via) await docs.locator('.graphiql-doc-explorer-field-name', { hasText: new RegExp(`^${via}$`) }).click();
  await docs.locator('a.graphiql-doc-explorer-type-name', { hasText: new RegExp(`^${type}$`) }).first().click();
  await docs.locator('.graphiql-doc-explorer-title', { hasText: new RegExp(`^${type}$`) }).waitFor({ timeout: STEP_TIMEOUT_MS });
  return (await docs.locator('.graphiql-doc-explorer-field-name').allTextContents()).sort();
}

// What the query editor's completion offers with `text` in it and the cursor at `at` (Ctrl+Space, as a user asks).
async function completions(page, text, at) {
  await type(page, '.graphiql-query-editor', text);
  await page.evaluate((ch) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setCursor({ line: 0, ch }), at);
  await page.keyboard.press('Control+Space');
  const hints = page.locator('.CodeMirror-hints .CodeMirror-hint');
  await hints.first().waitFor({ timeout: STEP_TIMEOUT_MS });
  const offered = (await hints.allTextContents()).map((t) => t.trim()).sort();
  await page.keyboard.press('Escape');
  return offered;
}

const same = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());

function checkRecord(name, origin, record, also = []) {
  const hosts = [origin, ...also].map((o) => new URL(o).host);
  const elsewhere = record.requests.filter((url) => !url.startsWith('data:') && !hosts.includes(new URL(url).host));
  const problems = [];
  if (elsewhere.length) problems.push(`requests that left the gateway: ${elsewhere.join(', ')}`);
  if (record.blocked.length) problems.push(`blocked requests: ${record.blocked.join(', ')}`);
  if (record.errors.length) problems.push(`console errors:\n  ${record.errors.join('\n  ')}`);
  for (const warning of record.warnings) log(`  (${name}) ${warning}`);
  const host = new URL(origin).host;
  const shown = record.requests.map((url) => {
    const u = new URL(url);
    return u.host === host ? `${u.pathname}${u.protocol === 'ws:' ? ' (WebSocket)' : ''}` : `${u.origin}${u.pathname}`;
  });
  log(`  (${name}) ${record.requests.length} requests: ${[...new Set(shown)].join(' ')}`);
  if (problems.length) throw new Error(`${name}: ${problems.join('\n')}`);
}

async function main() {
  scratch = mkdtempSync(path.join(tmpdir(), 'kyc-gateway-browser-'));
  const { origin, sumsub, output } = await startGateway();
  log(`== gateway ${BIN} at ${origin} (sandbox Sumsub at ${sumsub})`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'],
  });
  log(`== ${CHROMIUM} ${browser.version()}, headless; every host but 127.0.0.1 and localhost unresolvable`);
  mkdirSync(SHOTS, { recursive: true });

  // 1. A query over HTTP.
  {
    const record = { requests: [], blocked: [], errors: [], warnings: [] };
    const context = await isolatedContext(origin, record);
    const bearer = `Bearer ${token(SEED, SEED_SCOPES)}`;
    const page = await openGraphiql(context, origin, record);
    await enterHeaders(page, { Authorization: bearer });
    await run(page, '{ me { id emails { address } } }');
    const result = JSON.parse(await resultContaining(page, SEED));
    if (result.data.me.id !== SEED || !Array.isArray(result.data.me.emails) || result.errors) {
      throw new Error(`unexpected answer: ${JSON.stringify(result)}`);
    }
    log(`== query: the result pane shows ${JSON.stringify(result)}`);
    const shot = path.join(SHOTS, 'graphiql.png');
    await page.screenshot({ path: shot });
    log(`   screenshot ${shot}`);
    checkRecord('query', origin, record);
    await context.close();
  }

  // 2. A subscription over /graphql/ws, answered by a webhook from the sandbox Sumsub.
  {
    const record = { requests: [], blocked: [], errors: [], warnings: [] };
    const context = await isolatedContext(origin, record);
    const bearer = `Bearer ${token(PENDING, PENDING_SCOPES)}`;
    const page = await openGraphiql(context, origin, record);
    await enterHeaders(page, { Authorization: bearer });
    const subscribed = page.waitForEvent('websocket', { timeout: STEP_TIMEOUT_MS }).then((socket) => socket.waitForEvent(
      'framesent',
      { predicate: (frame) => String(frame.payload).includes('"type":"subscribe"'), timeout: STEP_TIMEOUT_MS },
    ));
    await run(page, 'subscription { verificationChanged { provider state } }');
    await subscribed;
    // The gateway starts the subscription moments after the message; the sandbox's webhook takes longer than that.
    await sleep(500);
    const review = await fetch(`${sumsub}/_sandbox/applicants/${PENDING}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reviewAnswer: 'GREEN' }),
    });
    if (!review.ok) throw new Error(`the sandbox Sumsub answered ${review.status}: ${await review.text()}`);
    const shown = await resultContaining(page, 'APPROVED');
    log(`== subscription: the result pane shows ${JSON.stringify(JSON.parse(shown))}`);
    const shot = path.join(SHOTS, 'graphiql-subscription.png');
    await page.screenshot({ path: shot });
    log(`   screenshot ${shot}`);
    checkRecord('subscription', origin, record);
    await context.close();
  }

  // 3. Sign in through the sandbox sign-in page, then a query and a subscription with the signed-in token.
  {
    const record = { requests: [], blocked: [], errors: [], warnings: [] };
    const context = await isolatedContext(origin, record);
    const page = await openGraphiql(context, origin, record);
    const sent = [];
    page.on('request', (request) => {
      const authorization = request.headers().authorization;
      if (authorization) sent.push(authorization);
    });
    const frames = [];
    page.on('websocket', (socket) => socket.on('framesent', (frame) => frames.push(String(frame.payload))));
    await page.locator('#signin-button').click();
    await page.waitForURL((url) => url.pathname === '/_sandbox/signin/authorize', { timeout: STEP_TIMEOUT_MS });
    const form = page.url();
    for (const name of ['state', 'code_challenge']) {
      if (!new URL(form).searchParams.get(name)) throw new Error(`the authorization request has no ${name}: ${form}`);
    }
    if (new URL(form).searchParams.get('code_challenge_method') !== 'S256') throw new Error(`not S256: ${form}`);
    const flow = await page.evaluate(() => Object.keys(sessionStorage));
    log(`== sign-in: at the sandbox sign-in page; sessionStorage holds ${JSON.stringify(flow)} during the flow`);
    await page.locator('input[name="subject"]').fill(PENDING);
    await page.locator('input[name="kind"][value="user"]').check();
    for (const scope of PENDING_SCOPES.split(' ')) await page.locator(`input[name="scope"][value="${scope}"]`).check();
    await page.screenshot({ path: path.join(SHOTS, 'graphiql-sign-in-page.png') });
    await page.locator('button[type="submit"]').click();
    await page.waitForURL((url) => url.pathname === '/graphiql', { timeout: STEP_TIMEOUT_MS });
    await page.locator('#signin-status', { hasText: `Signed in as ${PENDING}` }).waitFor({ timeout: STEP_TIMEOUT_MS });
    log(`== sign-in: back at ${page.url()}; ${await page.locator('#signin-status').textContent()}`);
    if (new URL(page.url()).search) throw new Error(`the code is still in the URL: ${page.url()}`);

    await run(page, '{ me { id } }');
    const result = JSON.parse(await resultContaining(page, PENDING));
    if (result.data.me.id !== PENDING || result.errors) throw new Error(`unexpected answer: ${JSON.stringify(result)}`);
    log(`== sign-in: the query shows ${JSON.stringify(result)}`);

    const subscribed = page.waitForEvent('websocket', { timeout: STEP_TIMEOUT_MS }).then((socket) => socket.waitForEvent(
      'framesent',
      { predicate: (frame) => String(frame.payload).includes('"type":"subscribe"'), timeout: STEP_TIMEOUT_MS },
    ));
    await run(page, 'subscription { verificationChanged { provider state } }');
    await subscribed;
    const init = frames.map((f) => JSON.parse(f)).find((m) => m.type === 'connection_init');
    if (!init || !String(init.payload.Authorization).startsWith('Bearer ')) {
      throw new Error(`connection_init carried no signed-in token: ${JSON.stringify(init)}`);
    }
    sent.push(init.payload.Authorization);
    await sleep(500);
    const review = await fetch(`${sumsub}/_sandbox/applicants/${PENDING}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reviewAnswer: 'RED', reviewRejectType: 'FINAL', rejectLabels: ['FORGERY'] }),
    });
    if (!review.ok) throw new Error(`the sandbox Sumsub answered ${review.status}: ${await review.text()}`);
    const shown = await resultContaining(page, 'REJECTED');
    log(`== sign-in: the subscription shows ${JSON.stringify(JSON.parse(shown))}`);
    const shot = path.join(SHOTS, 'graphiql-signed-in.png');
    await page.screenshot({ path: shot });
    log(`   screenshots ${path.join(SHOTS, 'graphiql-sign-in-page.png')} ${shot}`);

    // The token is in memory only.
    const tokens = [...new Set(sent.map((a) => String(a).replace(/^Bearer /, '')))];
    if (tokens.length === 0 || tokens.some((t) => t.split('.').length !== 3)) {
      throw new Error(`the signed-in requests carried ${JSON.stringify(sent)}`);
    }
    const kept = await page.evaluate(() => ({
      local: Object.entries(localStorage),
      session: Object.entries(sessionStorage),
      cookie: document.cookie,
      url: location.href,
    }));
    const jar = await context.cookies();
    const cdp = await context.newCDPSession(page);
    const { cookies: allCookies } = await cdp.send('Network.getAllCookies');
    const everywhere = JSON.stringify([kept, jar, allCookies]);
    const leaked = tokens.filter((t) => everywhere.includes(t) || everywhere.includes(t.split('.')[2]));
    // GraphiQL keeps its tabs and history in localStorage (the history with the Headers pane's placeholder): no JWT
    // may be among them, the signed-in one or any other.
    const bearer = /eyJ[\w-]+\.[\w-]+\.[\w-]+/.test(JSON.stringify(kept.local));
    if (bearer || kept.session.length || kept.cookie || jar.length || allCookies.length || leaked.length) {
      throw new Error(`a token or the flow was kept: ${everywhere}`);
    }
    log(`== sign-in: ${tokens.length} token(s) used, none kept; localStorage keys `
      + `${JSON.stringify(kept.local.map(([k]) => k))}, sessionStorage `
      + `${JSON.stringify(kept.session)}, document.cookie ${JSON.stringify(kept.cookie)}, cookie jar ${jar.length} `
      + `(CDP Network.getAllCookies: ${allCookies.length}), URL ${kept.url}`);
    checkRecord('sign-in', origin, record);
    await context.close();
  }

  // 4. Production mode: signed in at the staff's OpenID provider, GraphiQL documents and completes exactly the fields
  // the token may read (introspection per token), and the gateway answers accordingly.
  let production;
  {
    // The full schema (sandbox mode introspects for any token) holds every field the cut must leave out.
    const full = await (await fetch(`${origin}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token(SEED, 'uid:read')}` },
      body: JSON.stringify({ query: '{ q: __type(name: "Query") { fields { name } } u: __type(name: "User") { fields { name } } }' }),
    })).json();
    const names = (t) => (full.data && full.data[t] ? full.data[t].fields.map((f) => f.name) : []);
    const absent = [...HIDDEN_QUERY_FIELDS.filter((f) => !names('q').includes(f)), ...HIDDEN_USER_FIELDS.filter((f) => !names('u').includes(f))];
    if (absent.length) throw new Error(`the full schema has no ${absent.join(', ')}: ${JSON.stringify(full)}`);
    log(`== the full schema (sandbox mode): Query { ${names('q').join(' ')} }; User { ${names('u').join(' ')} }`);

    const providers = await startSandboxProviders();
    issuer = await startIssuer({ subject: STAFF, clientId: CLIENT_ID, audience: AUDIENCE });
    production = await startProductionGateway(providers.variables, issuer.url);
    issuer.gateway = production.origin;
    const ready = await (await fetch(`${production.origin}/readyz`)).json();
    if (ready.mode !== 'production') throw new Error(`the gateway is not in production mode: ${JSON.stringify(ready)}`);
    const csp = (await fetch(`${production.origin}/graphiql`)).headers.get('content-security-policy') || '';
    const connect = (csp.match(/connect-src ([^;]*)/) || [])[1] || '';
    if (!connect.split(' ').includes(issuer.url)) throw new Error(`the issuer's origin is not in connect-src: ${csp}`);
    log(`== production: gateway at ${production.origin} (mode ${ready.mode}; the providers of \`kyc-gateway sandbox\`: `
      + `${Object.keys(providers.variables).length} variables), OpenID provider at ${issuer.url}; connect-src ${connect}`);

    const record = { requests: [], blocked: [], errors: [], warnings: [] };
    const also = [issuer.url];
    const context = await isolatedContext(production.origin, record, also);
    const page = await openGraphiql(context, production.origin, record);
    const sent = [];
    page.on('request', (request) => {
      const authorization = request.headers().authorization;
      if (authorization) sent.push(authorization);
    });
    // The page introspects once it knows it is signed in, with the signed-in token.
    const introspected = page.waitForResponse(
      (r) => r.url() === `${production.origin}/graphql` && (r.request().postData() || '').includes('IntrospectionQuery'),
      { timeout: STEP_TIMEOUT_MS },
    );
    await page.locator('#signin-button').click();
    await page.locator('#signin-status', { hasText: `Signed in as ${STAFF}` }).waitFor({ timeout: STEP_TIMEOUT_MS });
    log(`== production sign-in: ${await page.locator('#signin-status').textContent()}; the provider was asked for `
      + `${JSON.stringify(issuer.asked.map((a) => a.scope))}, issued ${issuer.issued.length} token(s), refused `
      + `${JSON.stringify(issuer.refused)}`);
    if (issuer.refused.length || issuer.issued.length !== 1) throw new Error('the sign-in did not go as expected');
    if (new URL(page.url()).search) throw new Error(`the code is still in the URL: ${page.url()}`);
    const answer = await introspected;
    const schema = await answer.json();
    if (answer.status() !== 200 || !schema.data || !String(answer.request().headers().authorization).startsWith('Bearer ')) {
      throw new Error(`the signed-in introspection answered ${answer.status()}: ${JSON.stringify(schema).slice(0, 500)}`);
    }
    const types = Object.fromEntries(schema.data.__schema.types.map((t) => [t.name, t]));
    const introspectedQuery = types.Query.fields.map((f) => f.name);
    log(`== production: GraphiQL introspected with the signed-in token: Query { ${introspectedQuery.join(' ')} }, `
      + `mutationType ${JSON.stringify(schema.data.__schema.mutationType)}, ${schema.data.__schema.types.length} types`);

    // The documentation explorer.
    await page.locator('.graphiql-sidebar button[aria-label*="Documentation Explorer"]').click();
    await page.locator('.graphiql-doc-explorer').waitFor({ timeout: STEP_TIMEOUT_MS });
    const roots = (await page.locator('.graphiql-doc-explorer-root-type').allTextContents()).map((t) => t.trim());
    const queryDocs = await documentedFields(page, 'Query');
    const shot = path.join(SHOTS, 'graphiql-production-docs.png');
    await page.screenshot({ path: shot });
    const userDocs = await documentedFields(page, 'User', 'me');
    // Back to the explorer's first page, the way the explorer's back link goes (one page at a time).
    for (let i = 0; i < 5 && await page.locator('.graphiql-doc-explorer-back').count(); i += 1) {
      await page.locator('.graphiql-doc-explorer-back').first().click();
    }
    const subscriptionDocs = await documentedFields(page, 'Subscription');
    log(`== production docs: root types ${JSON.stringify(roots)}; Query { ${queryDocs.join(' ')} }; User { `
      + `${userDocs.join(' ')} }; Subscription { ${subscriptionDocs.join(' ')} }`);
    if (roots.some((r) => /mutation/i.test(r))) throw new Error(`the documentation shows a mutation root: ${roots}`);
    if (!same(queryDocs, STAFF_QUERY_FIELDS)) throw new Error(`the documentation's Query is ${queryDocs}`);
    if (!same(userDocs, STAFF_USER_FIELDS)) throw new Error(`the documentation's User is ${userDocs}`);

    // Completion in the query editor.
    const rootHints = await completions(page, '{  }', 2);
    const meHints = await completions(page, '{ me {  } }', 7);
    log(`== production completion: \`{ | }\` offers ${JSON.stringify(rootHints)}; \`{ me { | } }\` offers ${JSON.stringify(meHints)}`);
    const shown = (hints) => hints.filter((h) => !h.startsWith('__'));
    if (!same(shown(rootHints), STAFF_QUERY_FIELDS) || HIDDEN_QUERY_FIELDS.some((f) => rootHints.includes(f))) {
      throw new Error(`completion at the root offers ${rootHints}`);
    }
    if (!same(shown(meHints), STAFF_USER_FIELDS) || HIDDEN_USER_FIELDS.some((f) => meHints.includes(f))) {
      throw new Error(`completion in me offers ${meHints}`);
    }

    // What the token can query agrees: a shown field answers, a hidden one is refused.
    await run(page, '{ me { id } }');
    const mine = JSON.parse(await resultContaining(page, STAFF));
    if (mine.data.me.id !== STAFF || mine.errors) throw new Error(`unexpected answer: ${JSON.stringify(mine)}`);
    await run(page, '{ me { id emails { address } } }');
    const hidden = JSON.parse(await resultContaining(page, '"errors"'));
    const codes = (hidden.errors || []).map((e) => e.extensions && e.extensions.code);
    if (!codes.includes('UNAUTHORIZED_FIELD_OR_TYPE') || (hidden.data && hidden.data.me && hidden.data.me.emails)) {
      throw new Error(`a hidden field was not refused: ${JSON.stringify(hidden)}`);
    }
    log(`== production: \`{ me { id } }\` answers ${JSON.stringify(mine)}; \`{ me { id emails { address } } }\` is `
      + `refused with ${JSON.stringify(codes)}`);
    await page.screenshot({ path: path.join(SHOTS, 'graphiql-production-refused.png') });
    log(`   screenshots ${shot} ${path.join(SHOTS, 'graphiql-production-refused.png')}`);

    // The token is in memory only.
    const tokens = [...new Set([...sent.map((a) => String(a).replace(/^Bearer /, '')), ...issuer.issued.map((i) => i.token)])];
    const kept = await page.evaluate(() => ({
      local: Object.entries(localStorage),
      session: Object.entries(sessionStorage),
      cookie: document.cookie,
      url: location.href,
    }));
    const jar = await context.cookies();
    const cdp = await context.newCDPSession(page);
    const { cookies: allCookies } = await cdp.send('Network.getAllCookies');
    const everywhere = JSON.stringify([kept, jar, allCookies]);
    const leaked = tokens.filter((t) => everywhere.includes(t) || everywhere.includes(t.split('.')[2]));
    const bearer = /eyJ[\w-]+\.[\w-]+\.[\w-]+/.test(JSON.stringify(kept.local));
    if (bearer || kept.session.length || kept.cookie || jar.length || allCookies.length || leaked.length) {
      throw new Error(`a token or the flow was kept: ${everywhere}`);
    }
    log(`== production: ${tokens.length} token(s) used, none kept; localStorage keys `
      + `${JSON.stringify(kept.local.map(([k]) => k))}, sessionStorage ${JSON.stringify(kept.session)}, `
      + `document.cookie ${JSON.stringify(kept.cookie)}, cookie jar ${jar.length} (CDP: ${allCookies.length})`);
    checkRecord('production', production.origin, record, also);
    await context.close();
  }

  for (const [name, said] of [['the gateway', output()], ['the production-mode gateway', production.output()]]) {
    if (/ERROR|panicked/.test(said)) throw new Error(`${name} logged an error:\n${said}`);
  }
  log('== ok: GraphiQL ran a query and a subscription, with a pasted token and signed in, with no request outside the '
    + 'gateway, no console error and no CSP violation; the signed-in token was kept in memory only; in production mode '
    + 'a signed-in staff token got documentation and completion for exactly the fields it may read');
}

main()
  .then(() => { clearTimeout(watchdog); return cleanUp(); })
  .catch((error) => { clearTimeout(watchdog); return fail(error.stack || String(error)); });
