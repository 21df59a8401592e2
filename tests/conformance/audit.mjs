// The graphql-http server audit (https://github.com/graphql/graphql-http, `auditServer`): 61 checks of the
// GraphQL-over-HTTP specification (13 MUST, 23 SHOULD, 25 MAY) against a running gateway.
//
//   node audit.mjs <http://host:port/graphql> <bearer token>
//
// .ci/conformance.sh starts a sandbox-mode gateway and mints the token. The audits send no credentials of their
// own, so every request goes through a `fetchFn` that adds the Authorization header (without it every audit would
// meet a 401). Prints each result that is not `ok` with the answer that caused it, then a summary; exits 1 unless
// every audit is ok (no error, warning or notice).

import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node audit.mjs <http://host:port/graphql> <bearer token>');
  process.exit(2);
}

const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const count = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  count[result.status] += 1;
  if (result.status !== 'ok') {
    const { response } = result;
    const body = response ? (await response.text().catch(() => '')).slice(0, 200) : '';
    const answer = response ? `HTTP ${response.status} ${response.headers.get('content-type')} ${body}` : '(no answer)';
    console.log(`${result.status.toUpperCase()} ${result.id} ${result.name}: ${result.reason}\n    ${answer}`);
  }
}
console.log(
  `graphql-http audit: ${count.ok}/${results.length} ok, ${count.notice} notice, ${count.warn} warn, ${count.error} error`,
);
process.exit(count.ok === results.length && results.length > 0 ? 0 : 1);
