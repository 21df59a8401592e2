// Hive Gateway configuration for `kyc-bench --peers` (https://the-guild.dev/graphql/hive/docs/api-reference/gateway-config).
// kyc-bench serves the supergraph that mesh.config.ts composes with it. KYC_BENCH_CACHE=on turns on Hive Gateway's
// response cache (https://the-guild.dev/graphql/hive/docs/gateway/other-features/performance/response-caching), per
// caller (the Authorization header) as kyc-gateway's cache is per user.
import InMemoryLRUCache from '@graphql-mesh/cache-inmemory-lru';
import { defineConfig } from '@graphql-hive/gateway';

const cache = process.env.KYC_BENCH_CACHE === 'on';

export const gatewayConfig = defineConfig({
  additionalResolvers: {
    Query: {
      // One User per id, in the order asked; `kycApplications` is then resolved from ident (mesh.config.ts).
      users: (_root: unknown, args: { ids: string[] }) => args.ids.map((id) => ({ id })),
    },
  },
  ...(cache
    ? {
        // The response cache keeps two keys per entity of an answer besides the answer itself: an N+1 answer
        // (50 users' applications) is about 200 keys, so the default store (an in-memory LRU of 1,000 keys) would
        // evict the benchmark's twenty answers from each other. 100,000 keys hold them all.
        cache: new InMemoryLRUCache({ max: 100_000 }),
        responseCaching: { session: (request: Request) => request.headers.get('authorization'), ttl: 600_000 },
      }
    : {}),
  logging: 'warn',
});
