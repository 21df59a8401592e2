// Apollo Federation composition (@apollo/composition, what Apollo's router tooling composes with): the gateway's
// subgraph schema with a second subgraph that extends `User`.
//
//   node compose.mjs <schema.graphql> <other subgraph .graphql> [supergraph output path]
//
// Fails on any composition error. Then checks what a router needs from the supergraph: `User` is an entity of both
// subgraphs (`@join__type(..., key: "id")`), and every static scope requirement of the gateway survived
// (`@requiresScopes`, which the router enforces itself). Prints the hints, the supergraph's size and where it was
// written.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

const [gatewaySdl, otherSdl, output] = process.argv.slice(2);
if (!gatewaySdl || !otherSdl) {
  console.error('usage: node compose.mjs <schema.graphql> <other subgraph .graphql> [supergraph output path]');
  process.exit(2);
}

const subgraph = (name, file) => ({
  name,
  url: `http://${name}.invalid/graphql`,
  typeDefs: parse(readFileSync(file, 'utf8')),
});
const gatewayText = readFileSync(gatewaySdl, 'utf8');
const services = [subgraph('kyc', gatewaySdl), subgraph(path.basename(otherSdl, '.graphql'), otherSdl)];

const result = composeServices(services);
if (result.errors) {
  for (const error of result.errors) console.error(`ERROR ${error.extensions?.code ?? ''}: ${error.message}`);
  console.error(`composition: ${result.errors.length} error(s)`);
  process.exit(1);
}
for (const hint of result.hints) console.log(`HINT ${hint.definition.code}: ${hint.message}`);

const supergraph = result.supergraphSdl;
const problems = [];
const user = supergraph.match(/^type User\b[^{]*/m)?.[0] ?? '';
for (const graph of services.map((s) => s.name.toUpperCase())) {
  if (!user.includes(`@join__type(graph: ${graph}, key: "id")`)) problems.push(`User is not an entity of ${graph}`);
}
const scopes = (text) => (text.match(/@requiresScopes\(/g) ?? []).length;
if (scopes(supergraph) < scopes(gatewayText)) {
  problems.push(`${scopes(gatewayText)} @requiresScopes in the subgraph, ${scopes(supergraph)} in the supergraph`);
}
for (const problem of problems) console.error(`ERROR: ${problem}`);
if (problems.length) process.exit(1);

if (output) writeFileSync(output, supergraph);
const types = (supergraph.match(/^(type|interface|union|enum|input|scalar) /gm) ?? []).length;
console.log(
  `composition: ${services.length} subgraphs (${services.map((s) => s.name).join(', ')}), 0 errors, ` +
    `${result.hints.length} hint(s); supergraph ${supergraph.length} bytes, ${supergraph.split('\n').length} lines, ` +
    `${types} types, ${scopes(supergraph)} @requiresScopes${output ? `; written to ${output}` : ''}`,
);
