/**
 * Penny's layers, checked by dependency-cruiser on every `npm test` (test/boundaries.test.ts; `npm run
 * check:boundaries` runs the check alone) and drawn in docs/architecture.md. An arrow runs only downwards:
 *
 *   entry points   src/app.ts (the composition root), src/http/, src/dashboard/ (the operator's web pages),
 *                  src/cli/, src/simulate/ (Penny's client)
 *   domain         src/payments/, src/merchants/, src/webhooks/, src/balances/, src/settlement/
 *                  (and accounts, payouts, reconciliation, reporting)
 *   ground floor   src/ledger/, src/events/, src/idempotency/, src/metrics/, the connector interface
 *   database       src/db/
 *   kernel         neutral modules anything may import: errors, ids, clock, config, validation,
 *                  json, money, security, failpoints, logger, workers, the key files
 *
 * Beside the layers: concrete connectors (src/connectors/<psp>/) are wired by src/app.ts alone and
 * speak only to the connector interface, the kernel and the database; the sandbox PSP
 * (src/sandbox-psp/) is an outside service that shares only the kernel and the database driver; the
 * local HA cluster's tooling (src/ha/, `penny ha`) stands beside Penny too and imports only the kernel.
 * Type-only imports are edges too: a layer that needs a type from above is drawn wrong.
 */
const kernel = [
  '^src/(errors|error-codes|ids|clock|config|database-url|validation|json|failpoints|logger|workers|secret-key|operator-key)[.]ts$',
  '^src/(money|security)/',
];
const database = ['^src/db/'];
const connectorInterface = ['^src/connectors/[^/]+[.]ts$'];
const ground = ['^src/(ledger|events|idempotency|metrics)/', ...connectorInterface];
const domain = ['^src/(payments|merchants|webhooks|balances|settlement|accounts|payouts|transfers|reconciliation|reporting)/'];
const entry = ['^src/app[.]ts$', '^src/(http|dashboard|cli|simulate)/'];
const concreteConnectors = ['^src/connectors/[^/]+/'];
const sandboxPsp = ['^src/sandbox-psp/'];
const haCluster = ['^src/ha/'];

/** A rule that `from` may import nothing but `allowed` (and packages, and Node's own modules). */
function onlyImports(name, comment, from, allowed) {
  return {
    name, comment, severity: 'error',
    from: { path: from },
    to: { path: '^src/', pathNot: allowed },
  };
}

module.exports = {
  forbidden: [
    {
      name: 'no-cycles', severity: 'error',
      comment: 'An import cycle means two modules are one: draw the edge the other way or split them.',
      from: {}, to: { circular: true },
    },
    onlyImports('kernel-imports-only-kernel', 'The kernel is neutral: it imports nothing of Penny above it.',
      kernel, kernel),
    onlyImports('database-imports-only-kernel', 'src/db knows no table owner above it.',
      database, [...kernel, ...database]),
    onlyImports('ground-imports-ground-database-kernel',
      'The ground floor (ledger, events, idempotency, metrics, the connector interface) never imports the domain or an entry point.',
      ground, [...ground, ...database, ...kernel]),
    onlyImports('domain-imports-downward',
      'The domain calls the ground floor; it never imports an entry point, a concrete connector or the sandbox PSP.',
      domain, [...domain, ...ground, ...database, ...kernel]),
    onlyImports('connector-imports-interface-database-kernel',
      'A concrete connector implements the interface; it knows nothing of payments, HTTP routes or another connector.',
      concreteConnectors, [...connectorInterface, ...concreteConnectors, ...database, ...kernel]),
    {
      name: 'connectors-import-no-other-connector', severity: 'error',
      comment: 'Each PSP\'s module stands alone behind the interface.',
      from: { path: '^src/connectors/([^/]+)/' },
      to: { path: concreteConnectors, pathNot: '^src/connectors/$1/' },
    },
    onlyImports('sandbox-psp-is-an-outside-service',
      'The sandbox PSP is a separate service: it shares the kernel and the database driver, never Penny\'s domain.',
      sandboxPsp, [...sandboxPsp, ...database, ...kernel]),
    onlyImports('ha-cluster-imports-only-kernel',
      'The HA cluster tooling runs PostgreSQL and pg_auto_failover; it knows nothing of Penny above the kernel.',
      haCluster, [...haCluster, ...kernel]),
    {
      name: 'concrete-connectors-wired-by-app-only', severity: 'error',
      comment: 'Only the composition root (src/app.ts) chooses concrete connectors; everyone else takes the interface.',
      from: { pathNot: ['^src/app[.]ts$', '^src/connectors/([^/]+)/'] },
      to: { path: concreteConnectors },
    },
    {
      name: 'sandbox-psp-started-by-entry-points-only', severity: 'error',
      comment: 'Penny reaches the sandbox PSP over HTTP, through its connector; only app.ts and the CLI start it.',
      from: { path: '^src/', pathNot: [...entry, ...sandboxPsp] },
      to: { path: sandboxPsp },
    },
    {
      name: 'payments-do-not-import-webhooks', severity: 'error',
      comment: 'The PSP-webhook inbox calls into payments, never the other way.',
      from: { path: '^src/payments/' }, to: { path: '^src/webhooks/' },
    },
    {
      name: 'merchants-import-no-other-domain', severity: 'error',
      comment: 'Merchants are below payments and webhooks in the domain.',
      from: { path: '^src/merchants/' }, to: { path: '^src/(payments|webhooks)/' },
    },
    {
      name: 'accounts-import-no-payments-or-webhooks', severity: 'error',
      comment: 'Connected accounts are below payments (a transfer names its destination account) and webhooks.',
      from: { path: '^src/accounts/' }, to: { path: '^src/(payments|webhooks)/' },
    },
    {
      name: 'payouts-do-not-import-webhooks', severity: 'error',
      comment: 'The PSP-webhook inbox hands payout events to payouts, never the other way.',
      from: { path: '^src/payouts/' }, to: { path: '^src/webhooks/' },
    },
    {
      name: 'no-unresolvable-imports', severity: 'error',
      comment: 'An import that does not resolve is a broken edge.',
      from: {}, to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
