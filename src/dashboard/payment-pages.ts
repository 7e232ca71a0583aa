import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BalanceTransactionRow } from '../balances/balance-store.js';
import { selectEventsOfPayment, type EventRow } from '../events/event-store.js';
import { stringifyJson } from '../json.js';
import { presentPaymentIntent } from '../payments/payment-presenter.js';
import type { PaymentIntentRow } from '../payments/payment-service.js';
import { paymentIntentStatuses } from '../payments/payment-state.js';
import { presentCharge, presentRefund } from '../payments/payment-presenter.js';
import { deliveriesOfEvents } from '../webhooks/webhook-deliveries.js';
import {
  parseCancelPaymentIntent, parseCapturePaymentIntent, parseCreateRefund,
} from '../http/stripe-payment-params.js';
import { readEnum, readLimit, readString } from '../validation.js';
import { isCurrency } from '../money/currency.js';
import { minorToStripeAmount } from '../money/stripe-currency.js';
import { invalid } from '../validation.js';
import type { Entry } from '../ledger/ledger-types.js';
import {
  errorMessageOf, formOf, formString, newNonce, runIdempotent, type ActionOutcome,
} from './dashboard-actions.js';
import {
  formatMinor, formatStripeAmount, formatTime, parseMajorToMinor, parseMajorToStripeAmount, stripeAmountAsMajor,
} from './dashboard-format.js';
import { csrfField, flash, layout, pager, type PageContext } from './dashboard-layout.js';
import { pageContext, sendPage } from './page-support.js';
import type { DashboardServices } from './dashboard-services.js';
import { html, type Html } from './html.js';

type IdParams = { Params: { id: string } };

const pageSize = 25;
const notices: Readonly<Record<string, string>> = {
  refunded: 'Refund created.', captured: 'Payment captured.', canceled: 'Payment canceled.',
};

/** The payments list, a payment's page, and its actions (capture, cancel, refund). */
export function registerPaymentPages(scope: FastifyInstance, services: DashboardServices): void {
  scope.get('/payments', async (request, reply) => {
    const context = pageContext(request);
    const query = request.query as Record<string, string | undefined>;
    const filters = readFilters(query, context);
    const limit = query.limit === undefined || query.limit === '' ? pageSize : readLimit(query.limit);
    const page = await services.payments.search({ ...filters.search, limit,
      startingAfter: readCursor(query.starting_after), endingBefore: readCursor(query.ending_before) });
    const body = html`
${filterForm(query, context)}
<table id="payments">
<thead><tr><th>Payment</th>${context.viewer.kind === 'operator' ? html`<th>Merchant</th>` : ''}<th>Amount</th>
<th>Status</th><th>Created</th></tr></thead>
<tbody>${page.data.map((intent) => html`<tr>
<td><a href="/dashboard/payments/${intent.id}">${intent.id}</a></td>
${context.viewer.kind === 'operator' ? html`<td>${intent.merchantId}</td>` : ''}
<td class="amount">${formatStripeAmount(intent.amount, intent.currency)}</td>
<td><span class="status status-${intent.status}">${intent.status}</span></td>
<td>${formatTime(intent.createdAt)}</td></tr>`)}
${page.data.length === 0 ? html`<tr><td colspan="5">No payment matches.</td></tr>` : ''}
</tbody></table>
${pager({ path: '/dashboard/payments', query, firstId: page.data[0]?.id, lastId: page.data.at(-1)?.id,
    hasMore: page.hasMore, backwards: query.ending_before !== undefined,
    atStart: query.starting_after === undefined && query.ending_before === undefined })}`;
    return sendPage(reply, layout({ title: 'Payments', context, body }));
  });

  scope.get<IdParams>('/payments/:id', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const notice = query.notice === undefined ? undefined : notices[query.notice];
    return sendPage(reply, await paymentPage(services, request, { notice }));
  });

  scope.post<IdParams>('/payments/:id/refund', async (request, reply) => {
    const intent = await visibleIntent(services, request);
    const form = formOf(request);
    const amountText = formString(form, 'amount');
    const params: Record<string, unknown> = { payment_intent: intent.id,
      ...(amountText === undefined ? {} : { amount: parseMajorToStripeAmount(amountText, intent.currency, 'amount')
        .toString() }),
      ...(formString(form, 'reason') === undefined ? {} : { reason: formString(form, 'reason') }) };
    const command = parseCreateRefund(params);
    const outcome = await runIdempotent(services, request, { merchantId: intent.merchantId, path: '/v1/refunds',
      params, work: async (execution) => ({ status: 200,
        body: presentRefund(await services.payments.flows.refund(execution, intent.merchantId, command)) }) });
    return afterAction(services, request, reply, { outcome, notice: 'refunded' });
  });

  scope.post<IdParams>('/payments/:id/capture', async (request, reply) => {
    const intent = await visibleIntent(services, request);
    const amountText = formString(formOf(request), 'amount');
    const params: Record<string, unknown> = amountText === undefined ? {}
      : { amount_to_capture: parseMajorToStripeAmount(amountText, intent.currency, 'amount').toString() };
    const command = parseCapturePaymentIntent(params);
    const outcome = await runIdempotent(services, request, { merchantId: intent.merchantId,
      path: `/v1/payment_intents/${intent.id}/capture`, params,
      work: async (execution) => ({ status: 200, body: presentPaymentIntent(await services.payments.flows.capture(
        execution, { merchantId: intent.merchantId, id: intent.id, ...command })) }) });
    return afterAction(services, request, reply, { outcome, notice: 'captured' });
  });

  scope.post<IdParams>('/payments/:id/cancel', async (request, reply) => {
    const intent = await visibleIntent(services, request);
    const reason = formString(formOf(request), 'cancellation_reason');
    const params: Record<string, unknown> = reason === undefined ? {} : { cancellation_reason: reason };
    const command = parseCancelPaymentIntent(params);
    const outcome = await runIdempotent(services, request, { merchantId: intent.merchantId,
      path: `/v1/payment_intents/${intent.id}/cancel`, params,
      work: async (execution) => ({ status: 200, body: presentPaymentIntent(await services.payments.flows.cancel(
        execution, { merchantId: intent.merchantId, id: intent.id, ...command })) }) });
    return afterAction(services, request, reply, { outcome, notice: 'canceled' });
  });
}

/** The intent, if the viewer may see it: a merchant's own only (another's is 404, as in the API). */
async function visibleIntent(services: DashboardServices, request: FastifyRequest<IdParams>):
Promise<PaymentIntentRow> {
  const { viewer } = pageContext(request);
  return viewer.kind === 'operator' ? services.payments.retrieveAny(request.params.id)
    : services.payments.retrieve(viewer.merchantId, request.params.id);
}

/** Success: back to the payment's page (a GET, so a reload repeats nothing). A refusal: the page, with it. */
async function afterAction(services: DashboardServices, request: FastifyRequest<IdParams>, reply: FastifyReply,
  action: { outcome: ActionOutcome; notice: string }) {
  if (action.outcome.status === 200) {
    return reply.redirect(`/dashboard/payments/${encodeURIComponent(request.params.id)}?notice=${action.notice}`, 303);
  }
  return sendPage(reply, await paymentPage(services, request, { error: errorMessageOf(action.outcome) }),
    action.outcome.status);
}

function readCursor(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : readString(value, 'cursor', { lengthMax: 255 });
}

function readFilters(query: Record<string, string | undefined>, context: PageContext) {
  const text = (name: string) => {
    const value = query[name];
    return value === undefined || value.trim() === '' ? undefined : readString(value.trim(), name, { lengthMax: 255 });
  };
  const currencyText = text('currency')?.toLowerCase();
  if (currencyText !== undefined && !isCurrency(currencyText.toUpperCase())) {
    throw invalid('currency', 'Not a currency code.');
  }
  const currency = currencyText;
  const amount = (name: string) => {
    const value = text(name);
    if (value === undefined) return undefined;
    if (currency === undefined) throw invalid(name, 'Choose a currency to filter by amount.');
    return parseMajorToMinor(value, currency, name);
  };
  const day = (name: string, end: boolean) => {
    const value = text(name);
    if (value === undefined) return undefined;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) {
      throw invalid(name, `${name} is a day such as 2026-12-07.`);
    }
    return end ? `${value}T23:59:59.999999Z` : `${value}T00:00:00Z`;
  };
  const minor = { gte: amount('amount_min'), lte: amount('amount_max') };
  // The list compares Stripe's units; for a currency whose units differ, the minor bound is converted.
  const toStripe = (value: bigint | undefined) => value === undefined || currency === undefined ? undefined
    : stripeAmountAsStripe(value, currency);
  return {
    search: {
      merchantId: context.viewer.kind === 'merchant' ? context.viewer.merchantId : text('merchant'),
      status: readEnum(text('status'), 'status', paymentIntentStatuses),
      currency,
      amountGte: toStripe(minor.gte), amountLte: toStripe(minor.lte),
      createdGte: day('created_from', false), createdLte: day('created_to', true),
      connector: text('psp'), search: text('q'),
    },
  };
}

/** Minor units as Stripe's units (a few currencies differ, such as ISK); the minor units if not convertible. */
function stripeAmountAsStripe(minor: bigint, currency: string): bigint {
  try {
    return minorToStripeAmount(currency.toLowerCase(), minor);
  } catch {
    return minor;
  }
}

function filterForm(query: Record<string, string | undefined>, context: PageContext): Html {
  const value = (name: string) => query[name] ?? '';
  return html`<form method="get" action="/dashboard/payments" id="filters" class="filters">
<fieldset class="grid">
<label>Status <select name="status"><option value="">any</option>
${paymentIntentStatuses.map((status) => html`<option ${value('status') === status ? 'selected' : ''}>${status}</option>`)}
</select></label>
${context.viewer.kind === 'operator' ? html`<label>Merchant <input name="merchant" value="${value('merchant')}" placeholder="acct_…"></label>` : ''}
<label>Currency <input name="currency" value="${value('currency')}" placeholder="usd" size="4"></label>
<label>Amount from <input name="amount_min" value="${value('amount_min')}" inputmode="decimal" placeholder="0.00"></label>
<label>to <input name="amount_max" value="${value('amount_max')}" inputmode="decimal" placeholder="0.00"></label>
</fieldset>
<fieldset class="grid">
<label>Created from <input type="date" name="created_from" value="${value('created_from')}"></label>
<label>to <input type="date" name="created_to" value="${value('created_to')}"></label>
<label>PSP <input name="psp" value="${value('psp')}" placeholder="sandbox"></label>
<label>Id, PSP reference or metadata value <input name="q" value="${value('q')}"></label>
</fieldset>
<button type="submit" id="apply-filters">Filter</button> <a href="/dashboard/payments">Clear</a>
</form>`;
}

/**
 * A payment's timeline: its events (created, authorized, captured, refunded, disputed…), each with
 * the request or PSP event that caused it, and its settlement, which posts no event of its own:
 * when a charge's balance transaction became available, read from the PSP's settlement report.
 */
function timelineRows(events: readonly EventRow[], transactions: readonly BalanceTransactionRow[]):
{ at: string; what: Html; cause: Html }[] {
  const rows = events.map((event) => ({ at: event.createdAt,
    what: html`<code>${event.type}</code> ${objectIdOf(event.data.object)}`,
    cause: html`${event.requestId === null ? 'Penny itself or a PSP event' : html`request <code>${event.requestId}</code>`}
${event.idempotencyKey === null ? '' : html`<br><small>key <code>${event.idempotencyKey}</code></small>`}` }));
  const settled = transactions.filter((row) => row.status === 'available' && row.sourceId.startsWith('ch_'))
    .map((row) => ({ at: row.availableOn, what: html`<code>settled</code> ${row.sourceId}: its funds available (<code>${row.id}</code>)`,
      cause: html`the PSP's settlement` }));
  return [...rows, ...settled].sort((first, second) => Date.parse(first.at) - Date.parse(second.at));
}

const cancelableStatuses = new Set(['requires_payment_method', 'requires_confirmation', 'requires_action',
  'requires_capture']);

/** Everything about one payment, and the actions its state allows. */
async function paymentPage(services: DashboardServices, request: FastifyRequest<IdParams>,
  messages: { notice?: string | undefined; error?: string | undefined }): Promise<Html> {
  const context = pageContext(request);
  const intent = await visibleIntent(services, request);
  const key = { merchantId: intent.merchantId, limit: 100, startingAfter: undefined, endingBefore: undefined };
  const [charges, refunds, disputes, attempts, events] = await Promise.all([
    services.payments.listCharges({ ...key, paymentIntent: intent.id }),
    services.payments.listRefunds({ ...key, paymentIntent: intent.id, charge: undefined }),
    services.disputes.list({ ...key, paymentIntentId: intent.id, chargeId: undefined, createdGte: undefined,
      createdLte: undefined }),
    services.payments.attempts(intent),
    selectEventsOfPayment(services.pool, { merchantId: intent.merchantId, paymentIntentId: intent.id, limit: 200 }),
  ]);
  const references = [
    ...charges.data.flatMap((charge) => ['authorization', 'capture', 'penny_fee', 'psp_fee']
      .map((part) => `penny:charge:${charge.id}:${part}`)),
    ...refunds.data.map((refund) => `penny:refund:${refund.id}`),
    ...disputes.rows.flatMap((dispute) => ['reversal', 'withdrawal', 'fee']
      .map((part) => `penny:dispute:${dispute.id}:${part}`)),
  ];
  const [entries, deliveries, transactions] = await Promise.all([
    // The ledger is the operator's: its entries name the operator's own accounts beside the merchant's.
    context.viewer.kind === 'operator' ? services.ledger.entriesByReferences(references) : Promise.resolve([]),
    deliveriesOfEvents(services.pool, intent.merchantId, events.map((event) => event.id)),
    // Each charge's and refund's balance transactions: when the funds settle (become available).
    Promise.all([...charges.data.map((charge) => charge.id), ...refunds.data.map((refund) => refund.id)]
      .map((sourceId) => services.balances.list({ merchantId: intent.merchantId, accountId: intent.merchantId,
        limit: 10, startingAfter: undefined, endingBefore: undefined, type: undefined, sourceId, currency: undefined,
        payoutId: undefined, createdGte: undefined, createdLte: undefined }))),
  ]);
  const balanceTransactions = transactions.flatMap((page) => page.rows);
  const refundedTotal = refunds.data.filter((refund) => refund.status !== 'failed')
    .reduce((total, refund) => total + refund.amount, 0n);
  const refundable = intent.amountReceived - refundedTotal;
  const raw = JSON.stringify(JSON.parse(stringifyJson({ payment_intent: presentPaymentIntent(intent),
    charges: charges.data.map(presentCharge), refunds: refunds.data.map(presentRefund) })), null, 2);
  const body = html`
${flash('notice', messages.notice)}${flash('error', messages.error)}
<section id="summary">
<table>
<tr><th>Id</th><td><code id="payment-id">${intent.id}</code></td></tr>
${context.viewer.kind === 'operator' ? html`<tr><th>Merchant</th><td>${intent.merchantId}</td></tr>` : ''}
<tr><th>Amount</th><td class="amount" id="payment-amount">${formatStripeAmount(intent.amount, intent.currency)}</td></tr>
<tr><th>Status</th><td><span class="status status-${intent.status}" id="payment-status">${intent.status}</span></td></tr>
<tr><th>Capturable</th><td>${formatStripeAmount(intent.amountCapturable, intent.currency)}</td></tr>
<tr><th>Received</th><td>${formatStripeAmount(intent.amountReceived, intent.currency)}</td></tr>
<tr><th>Refunded</th><td id="payment-refunded">${formatStripeAmount(refundedTotal, intent.currency)}</td></tr>
<tr><th>Capture method</th><td>${intent.captureMethod}</td></tr>
<tr><th>Customer</th><td>${intent.customer ?? '—'}</td></tr>
<tr><th>Description</th><td>${intent.description ?? '—'}</td></tr>
<tr><th>Receipt email</th><td>${intent.receiptEmail ?? '—'}</td></tr>
<tr><th>Statement descriptor</th><td>${intent.statementDescriptor ?? '—'}</td></tr>
<tr><th>Metadata</th><td>${Object.entries(intent.metadata).map(([name, value]) => html`<code>${name}</code>=${value} `)}</td></tr>
<tr><th>Created</th><td>${formatTime(intent.createdAt)}</td></tr>
</table>
</section>
${actions(context, intent, refundable)}
<h2>Timeline</h2>
<table id="timeline"><thead><tr><th>When</th><th>What</th><th>Caused by</th></tr></thead><tbody>
${timelineRows(events, balanceTransactions).map((row) => html`<tr><td>${formatTime(row.at)}</td><td>${row.what}</td><td>${row.cause}</td></tr>`)}
</tbody></table>
<h2>Attempts</h2>
<table id="attempts"><thead><tr><th>#</th><th>Attempt</th><th>PSP</th><th>PSP reference</th><th>Status</th><th>Created</th></tr></thead><tbody>
${attempts.map((attempt) => html`<tr><td>${attempt.attemptNumber}</td><td><code>${attempt.id}</code></td><td>${attempt.connector}</td>
<td><code>${attempt.pspReference ?? '—'}</code></td><td>${attempt.status}</td><td>${formatTime(attempt.createdAt)}</td></tr>`)}
</tbody></table>
<h2>Charges</h2>
<table id="charges"><thead><tr><th>Charge</th><th>Amount</th><th>Captured</th><th>Refunded</th><th>Status</th><th>PSP reference</th></tr></thead><tbody>
${charges.data.map((charge) => html`<tr><td><code>${charge.id}</code></td><td>${formatStripeAmount(charge.amount, charge.currency)}</td>
<td>${formatStripeAmount(charge.amountCaptured, charge.currency)}</td><td>${formatStripeAmount(charge.amountRefunded, charge.currency)}</td>
<td>${charge.status}${charge.disputed ? ' (disputed)' : ''}</td><td><code>${charge.pspReference ?? '—'}</code></td></tr>`)}
</tbody></table>
<h2>Refunds</h2>
<table id="refunds"><thead><tr><th>Refund</th><th>Amount</th><th>Status</th><th>Reason</th><th>Created</th></tr></thead><tbody>
${refunds.data.map((refund) => html`<tr><td><code>${refund.id}</code></td><td class="amount">${formatStripeAmount(refund.amount, refund.currency)}</td>
<td>${refund.status}</td><td>${refund.reason ?? '—'}</td><td>${formatTime(refund.createdAt)}</td></tr>`)}
${refunds.data.length === 0 ? html`<tr><td colspan="5">None.</td></tr>` : ''}
</tbody></table>
<h2>Disputes</h2>
<table id="disputes"><thead><tr><th>Dispute</th><th>Amount</th><th>Fee</th><th>Reason</th><th>Status</th></tr></thead><tbody>
${disputes.rows.map((dispute) => html`<tr><td><code>${dispute.id}</code></td><td>${formatMinor(dispute.amountMinor, dispute.currency)}</td>
<td>${formatMinor(dispute.feeMinor, dispute.currency)}</td><td>${dispute.reason}</td><td>${dispute.status}</td></tr>`)}
${disputes.rows.length === 0 ? html`<tr><td colspan="5">None.</td></tr>` : ''}
</tbody></table>
<h2>Balance transactions</h2>
<table id="balance-transactions"><thead><tr><th>Transaction</th><th>Type</th><th>Source</th><th class="amount">Amount</th>
<th class="amount">Fee</th><th class="amount">Net</th><th>Status</th><th>Available on</th></tr></thead><tbody>
${balanceTransactions.map((row) => html`<tr><td><code>${row.id}</code></td><td>${row.type}</td><td><code>${row.sourceId}</code></td>
<td class="amount">${formatMinor(row.amountMinor, row.currency)}</td><td class="amount">${formatMinor(row.feeMinor, row.currency)}</td>
<td class="amount">${formatMinor(row.netMinor, row.currency)}</td><td>${row.status}</td><td>${formatTime(row.availableOn)}</td></tr>`)}
${balanceTransactions.length === 0 ? html`<tr><td colspan="8">None.</td></tr>` : ''}
</tbody></table>
${context.viewer.kind !== 'operator' ? '' : html`<h2>Ledger entries</h2>
<div id="ledger-entries">${entries.map((entry) => entryTable(entry, context))}
${entries.length === 0 ? html`<p>None yet.</p>` : ''}</div>`}
<h2>Webhook deliveries</h2>
<table id="deliveries"><thead><tr><th>Delivery</th><th>Event</th><th>Endpoint</th><th>Status</th><th>Attempts</th><th>Next retry</th></tr></thead><tbody>
${deliveries.map((delivery) => html`<tr><td><code>${delivery.id}</code></td><td><code>${delivery.eventId}</code></td>
<td><code>${delivery.endpointId}</code></td><td>${delivery.status}</td><td>${delivery.attemptCount}</td>
<td>${delivery.status === 'pending' ? formatTime(delivery.nextAttemptAt) : '—'}</td></tr>`)}
${deliveries.length === 0 ? html`<tr><td colspan="6">None.</td></tr>` : ''}
</tbody></table>
<details><summary>Raw JSON</summary><pre id="raw-json">${raw}</pre></details>`;
  return layout({ title: `Payment ${intent.id}`, context, body });
}

function objectIdOf(object: unknown): string {
  const id = (object as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : '';
}

/** An entry with its `lent_` id and every posting; the operator's postings link to their accounts. */
export function entryTable(entry: Entry, context: PageContext): Html {
  const account = (id: string) => context.viewer.kind === 'operator'
    ? html`<a href="/dashboard/ledger/accounts/${id}">${id}</a>` : html`<code>${id}</code>`;
  return html`<article class="entry" id="${entry.id}">
<header><code class="entry-id">${entry.id}</code> · ${entry.kind} · ${entry.description ?? entry.externalReference}
· ${formatTime(entry.effectiveAt)}</header>
<table><thead><tr><th>Account</th><th>Debit</th><th>Credit</th><th>Phase</th></tr></thead><tbody>
${entry.postings.map((posting) => html`<tr><td>${account(posting.accountId)}</td>
<td class="amount">${posting.direction === 'debit' ? formatMinor(posting.amountMinor, posting.currency) : ''}</td>
<td class="amount">${posting.direction === 'credit' ? formatMinor(posting.amountMinor, posting.currency) : ''}</td>
<td>${posting.phase}</td></tr>`)}
</tbody></table></article>`;
}

function actions(context: PageContext, intent: PaymentIntentRow, refundable: bigint): Html {
  const forms: Html[] = [];
  const base = `/dashboard/payments/${intent.id}`;
  if (intent.status === 'requires_capture') {
    forms.push(html`<form method="post" action="${base}/capture" id="capture-form"
 hx-confirm="Capture this payment? The amount is taken from the customer.">
${csrfField(context)}<input type="hidden" name="nonce" value="${newNonce()}">
<label>Amount to capture (${intent.currency.toUpperCase()})
<input name="amount" value="${stripeAmountAsMajor(intent.amountCapturable, intent.currency)}" inputmode="decimal"></label>
<button type="submit" id="capture">Capture</button></form>`);
  }
  if (cancelableStatuses.has(intent.status)) {
    forms.push(html`<form method="post" action="${base}/cancel" id="cancel-form"
 hx-confirm="Cancel this payment? An authorization is released.">
${csrfField(context)}<input type="hidden" name="nonce" value="${newNonce()}">
<label>Reason <select name="cancellation_reason"><option value="">none</option><option>requested_by_customer</option>
<option>duplicate</option><option>fraudulent</option><option>abandoned</option></select></label>
<button type="submit" class="secondary" id="cancel">Cancel payment</button></form>`);
  }
  if (refundable > 0n) {
    forms.push(html`<form method="post" action="${base}/refund" id="refund-form"
 hx-confirm="Refund this amount to the customer?">
${csrfField(context)}<input type="hidden" name="nonce" value="${newNonce()}">
<label>Amount to refund (${intent.currency.toUpperCase()}; up to ${formatStripeAmount(refundable, intent.currency)})
<input name="amount" id="refund-amount" value="${stripeAmountAsMajor(refundable, intent.currency)}" inputmode="decimal"></label>
<label>Reason <select name="reason"><option value="">none</option><option>requested_by_customer</option>
<option>duplicate</option><option>fraudulent</option></select></label>
<button type="submit" id="refund">Refund</button></form>`);
  }
  return forms.length === 0 ? html`` : html`<section id="actions" class="grid">${forms}</section>`;
}
