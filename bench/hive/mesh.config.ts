// GraphQL Mesh compose configuration for `kyc-bench --peers`: the benchmark's two shapes over the same sandbox
// endpoints as kyc-gateway, as JSON-schema sources (https://the-guild.dev/graphql/mesh/v1/source-handlers/json-schema).
// kyc-bench runs `mesh-compose` with the sandbox's addresses and ident's application token in the environment (both
// are new at every run) and serves the result with Hive Gateway (gateway.config.ts).
import { createRenameFieldTransform, defineConfig } from '@graphql-mesh/compose-cli';
import { loadJSONSchemaSubgraph } from '@omnigraph/json-schema';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (kyc-bench --peers sets it)`);
  return value;
}

export const composeConfig = defineConfig({
  subgraphs: [
    {
      // `me`: Fractal's GET /v2/users/me with the caller's own Authorization header (a Fractal user access token).
      sourceHandler: loadJSONSchemaSubgraph('Fractal', {
        endpoint: env('KYC_BENCH_FRACTAL_URL'),
        operationHeaders: { Authorization: '{context.headers.authorization}' },
        operations: [
          { type: 'Query', field: 'me', path: '/v2/users/me', method: 'GET', responseSchema: './me.schema.json' },
        ],
      }),
      // Fractal calls the user's id `uid`; the benchmark's query (and kyc-gateway's schema) say `id`.
      transforms: [
        createRenameFieldTransform(({ typeName, fieldName }) => (typeName === 'Me' && fieldName === 'uid' ? 'id' : fieldName)),
      ],
    },
    {
      // N+1: one GET /api/v1/users/{id}/kyc_applications per user, with the gateway's application token.
      sourceHandler: loadJSONSchemaSubgraph('Ident', {
        endpoint: env('KYC_BENCH_IDENT_URL'),
        operationHeaders: { Authorization: `Bearer ${env('KYC_BENCH_IDENT_TOKEN')}` },
        operations: [
          {
            type: 'Query',
            field: 'userKycApplications',
            path: '/users/{args.id}/kyc_applications',
            method: 'GET',
            argTypeMap: { id: { type: 'string', nullable: false } },
            responseSchema: './kyc-applications.schema.json',
          },
        ],
      }),
    },
  ],
  // `users(ids:)` answers one `User` per id (gateway.config.ts resolves it without a call); each user's
  // applications are then one call to ident.
  additionalTypeDefs: /* GraphQL */ `
    type User {
      id: ID!
      kycApplications: [KycApplication]
        @resolveTo(
          sourceName: "Ident"
          sourceTypeName: "Query"
          sourceFieldName: "userKycApplications"
          requiredSelectionSet: "{ id }"
          sourceArgs: { id: "{root.id}" }
        )
    }
    extend type Query {
      users(ids: [ID!]!): [User]
    }
  `,
});
