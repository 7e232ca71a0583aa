import type pg from 'pg';
import type { ConnectedAccounts } from '../accounts/account-service.js';
import type { BalanceService } from '../balances/balance-service.js';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import type { LedgerReports } from '../ledger/ledger-reports.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { MerchantService } from '../merchants/merchant-service.js';
import type { PaymentDisputes } from '../payments/payment-disputes.js';
import type { PaymentService } from '../payments/payment-service.js';
import type { PayoutService } from '../payouts/payout-service.js';
import type { ReconciliationBreaks } from '../reconciliation/recon-breaks.js';
import type { ReconciliationImports } from '../reconciliation/recon-import.js';
import type { ReconciliationRuns } from '../reconciliation/recon-run.js';
import type { WebhookEndpoints } from '../webhooks/webhook-endpoints.js';

/** The services the dashboard reads and acts through: the same the API's routes use. */
export interface DashboardServices {
  readonly pool: pg.Pool;
  readonly operatorKey: string;
  readonly secretKey: string;
  readonly merchants: MerchantService;
  readonly payments: PaymentService;
  readonly idempotency: IdempotencyService;
  readonly ledger: LedgerService;
  readonly ledgerReports: LedgerReports;
  readonly disputes: PaymentDisputes;
  readonly balances: BalanceService;
  readonly payouts: PayoutService;
  readonly accounts: ConnectedAccounts;
  readonly breaks: ReconciliationBreaks;
  readonly runs: ReconciliationRuns;
  readonly imports: ReconciliationImports;
  readonly webhookEndpoints: WebhookEndpoints;
  /** PENNY_PUBLIC_URL: when it is HTTPS, the session cookie is Secure even behind a TLS proxy. */
  readonly publicUrl?: (() => string) | undefined;
}
