import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PennyError } from '../errors.js';
import { presentPayout } from '../payouts/payout-presenter.js';
import { parseCreatePayout } from '../http/payout-params.js';
import { readString } from '../validation.js';
import { errorMessageOf, formOf, formString, newNonce, runIdempotent } from './dashboard-actions.js';
import { formatMinor, formatTime, parseMajorToStripeAmount } from './dashboard-format.js';
import { csrfField, flash, layout, type PageContext } from './dashboard-layout.js';
import type { DashboardServices } from './dashboard-services.js';
import { html, type Html } from './html.js';
import { pageContext, sendPage } from './page-support.js';

type MerchantParams = { Params: { merchant: string } };
type PayoutParams = { Params: { merchant: string; id: string } };

/**
 * Balances and payouts: available and pending per merchant and connected account, payouts with
 * their status and the balance transactions each contains, and a manual payout (the API's
 * idempotent POST /v1/payouts, under the form's nonce). The operator picks a merchant from the
 * list; a merchant's session sees its own only (another's is 404).
 */
export function registerBalancePages(scope: FastifyInstance, services: DashboardServices): void {
  scope.get('/balances', async (request, reply) => {
    const context = pageContext(request);
    if (context.viewer.kind === 'merchant') {
      return reply.redirect(`/dashboard/balances/${context.viewer.merchantId}`, 303);
    }
    const query = request.query as Record<string, string | undefined>;
    const startingAfter = query.starting_after ? readString(query.starting_after, 'starting_after', { lengthMax: 70 })
      : undefined;
    const page = await services.merchants.list({ limit: 25, startingAfter });
    const balances = await Promise.all(page.merchants.map((merchant) =>
      services.balances.balance({ merchantId: merchant.id, accountId: merchant.id })));
    const body = html`<table id="merchants"><thead><tr><th>Merchant</th><th>Name</th><th class="amount">Available</th>
<th class="amount">Pending</th></tr></thead><tbody>
${page.merchants.map((merchant, index) => html`<tr><td><a href="/dashboard/balances/${merchant.id}">${merchant.id}</a></td>
<td>${merchant.name}</td><td class="amount">${amounts(balances[index] ?? [], 'availableMinor')}</td>
<td class="amount">${amounts(balances[index] ?? [], 'pendingMinor')}</td></tr>`)}
</tbody></table>
${page.hasMore ? html`<nav class="pager"><a href="/dashboard/balances?starting_after=${page.merchants.at(-1)?.id ?? ''}">Older →</a></nav>` : ''}`;
    return sendPage(reply, layout({ title: 'Balances and payouts', context, body }));
  });

  scope.get<MerchantParams>('/balances/:merchant', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    return sendPage(reply, await merchantPage(services, request, {
      notice: query.notice === 'payout' ? 'Payout created.' : undefined }));
  });

  scope.post<MerchantParams>('/balances/:merchant/payouts', async (request, reply) => {
    const merchantId = visibleMerchant(request);
    const form = formOf(request);
    const currency = readString(formString(form, 'currency'), 'currency', { lengthMax: 3, required: true })
      .toLowerCase();
    const accountId = formString(form, 'account') ?? merchantId;
    if (accountId !== merchantId) await services.accounts.get({ merchantId, id: accountId });
    const amountText = readString(formString(form, 'amount'), 'amount', { lengthMax: 30, required: true });
    // A payout's `amount` is in Stripe's units, which differ from ISO minor units for ISK and UGX.
    const amount = parseMajorToStripeAmount(amountText, currency, 'amount');
    const params: Record<string, unknown> = { amount: amount.toString(), currency,
      ...(formString(form, 'description') === undefined ? {} : { description: formString(form, 'description') }) };
    const command = parseCreatePayout(params);
    const owner = { merchantId, accountId };
    const outcome = await runIdempotent(services, request, { merchantId, accountId: accountId === merchantId
      ? undefined : accountId, path: '/v1/payouts', params,
    work: async (execution) => ({ status: 200, body: await services.payouts.create(execution, { owner, command }) }) });
    if (outcome.status === 200) {
      return reply.redirect(`/dashboard/balances/${encodeURIComponent(merchantId)}?notice=payout`, 303);
    }
    return sendPage(reply, await merchantPage(services, request, { error: errorMessageOf(outcome) }), outcome.status);
  });

  scope.get<PayoutParams>('/balances/:merchant/payouts/:id', async (request, reply) => {
    const context = pageContext(request);
    const merchantId = visibleMerchant(request);
    const query = request.query as Record<string, string | undefined>;
    const accountId = (query.account ? readString(query.account, 'account', { lengthMax: 70 }) : undefined) ?? merchantId;
    const payout = await services.payouts.retrieve({ merchantId, accountId, id: request.params.id });
    const transactions = await services.balances.list({ merchantId, accountId, limit: 100, startingAfter: undefined,
      endingBefore: undefined, type: undefined, sourceId: undefined, currency: undefined, payoutId: payout.id,
      createdGte: undefined, createdLte: undefined });
    const own = await services.balances.retrieve({ merchantId, accountId }, payout.balanceTransactionId);
    // The payout's own transaction first, then those it pays out (an automatic payout's).
    const rows = [own, ...transactions.rows.filter((row) => row.id !== own.id)];
    const presented = presentPayout(payout);
    const body = html`<table id="payout"><tr><th>Payout</th><td><code>${payout.id}</code></td></tr>
<tr><th>Owner</th><td>${payout.accountId}</td></tr>
<tr><th>Amount</th><td>${formatMinor(payout.amountMinor, payout.currency)}</td></tr>
<tr><th>Status</th><td><span class="status status-${payout.status}">${payout.status}</span>
${payout.failureMessage === null ? '' : ` (${payout.failureMessage})`}</td></tr>
<tr><th>Automatic</th><td>${payout.automatic ? 'yes' : 'no (manual)'}</td></tr>
<tr><th>Destination</th><td><code>${payout.destination}</code></td></tr>
<tr><th>Arrival</th><td>${formatTime(payout.arrivalDate)}</td></tr><tr><th>Created</th><td>${formatTime(payout.createdAt)}</td></tr></table>
<h2>Balance transactions</h2>
<p><small>The payout's own, then those it pays out (an automatic payout's; a manual one pays out an amount).</small></p>
<table id="payout-transactions"><thead><tr><th>Transaction</th><th>Type</th><th>Source</th><th class="amount">Amount</th>
<th class="amount">Fee</th><th class="amount">Net</th><th>Available on</th></tr></thead><tbody>
${rows.map((row) => html`<tr><td><code>${row.id}</code></td><td>${row.type}</td><td><code>${row.sourceId}</code></td>
<td class="amount">${formatMinor(row.amountMinor, row.currency)}</td><td class="amount">${formatMinor(row.feeMinor, row.currency)}</td>
<td class="amount">${formatMinor(row.netMinor, row.currency)}</td><td>${formatTime(row.availableOn)}</td></tr>`)}
</tbody></table>
${transactions.hasMore ? html`<p>The first 100 are shown.</p>` : ''}
<details><summary>Raw JSON</summary><pre>${JSON.stringify(JSON.parse(JSON.stringify(presented,
      (_key, value: unknown) => typeof value === 'bigint' ? Number(value) : value)), null, 2)}</pre></details>`;
    return sendPage(reply, layout({ title: `Payout ${payout.id}`, context, body }));
  });
}

/** The merchant the path names, if the viewer may see it (a merchant its own only: 404 otherwise). */
function visibleMerchant(request: FastifyRequest<{ Params: { merchant: string } }>): string {
  const { viewer } = pageContext(request);
  if (viewer.kind === 'merchant' && viewer.merchantId !== request.params.merchant) {
    throw notFound(request.params.merchant);
  }
  return request.params.merchant;
}

function notFound(id: string): PennyError {
  return new PennyError({ code: 'resource_missing', param: 'merchant', message: `No such merchant: '${id}'` });
}

function amounts(rows: readonly { currency: string; availableMinor: bigint; pendingMinor: bigint }[],
  field: 'availableMinor' | 'pendingMinor'): Html {
  return rows.length === 0 ? html`—` : html`${rows.map((row) => html`${formatMinor(row[field], row.currency)}<br>`)}`;
}

async function merchantPage(services: DashboardServices, request: FastifyRequest<{ Params: { merchant: string } }>,
  messages: { notice?: string | undefined; error?: string | undefined }): Promise<Html> {
  const context = pageContext(request);
  const merchantId = visibleMerchant(request);
  const merchant = await services.merchants.getMerchant(merchantId);
  const query = request.query as Record<string, string | undefined>;
  const accounts = await services.accounts.list(merchantId, { limit: 25, startingAfter: undefined,
    endingBefore: undefined });
  const owners = [merchantId, ...accounts.rows.map((account) => account.id)];
  const balances = await Promise.all(owners.map((accountId) => services.balances.balance({ merchantId, accountId })));
  const payoutsOf = (query.account ? readString(query.account, 'account', { lengthMax: 70 }) : undefined) ?? merchantId;
  const startingAfter = query.starting_after ? readString(query.starting_after, 'starting_after', { lengthMax: 70 })
    : undefined;
  const payouts = await services.payouts.list({ merchantId, accountId: payoutsOf, limit: 25, startingAfter,
    endingBefore: undefined, status: undefined, destination: undefined, createdGte: undefined, createdLte: undefined });
  const body = html`${flash('notice', messages.notice)}${flash('error', messages.error)}
<h2>Balances</h2>
<table id="balances"><thead><tr><th>Owner</th><th>Currency</th><th class="amount">Available</th><th class="amount">Pending</th>
<th>Payouts</th></tr></thead><tbody>
${owners.map((owner, index) => (balances[index] ?? []).length === 0
    ? html`<tr><td>${owner}${owner === merchantId ? ' (platform)' : ''}</td><td colspan="3">no balance yet</td>
<td><a href="/dashboard/balances/${merchantId}?account=${owner}">payouts</a></td></tr>`
    : (balances[index] ?? []).map((row) => html`<tr><td>${owner}${owner === merchantId ? ' (platform)' : ''}</td><td>${row.currency}</td>
<td class="amount">${formatMinor(row.availableMinor, row.currency)}</td><td class="amount">${formatMinor(row.pendingMinor, row.currency)}</td>
<td><a href="/dashboard/balances/${merchantId}?account=${owner}">payouts</a></td></tr>`))}
</tbody></table>
${accounts.hasMore ? html`<p>The first 25 connected accounts are shown.</p>` : ''}
<h2>Payouts of ${payoutsOf}</h2>
<table id="payouts"><thead><tr><th>Payout</th><th class="amount">Amount</th><th>Status</th><th>Kind</th><th>Arrival</th>
<th>Created</th></tr></thead><tbody>
${payouts.rows.map((payout) => html`<tr><td><a href="/dashboard/balances/${merchantId}/payouts/${payout.id}?account=${payout.accountId}">${payout.id}</a></td>
<td class="amount">${formatMinor(payout.amountMinor, payout.currency)}</td><td><span class="status status-${payout.status}">${payout.status}</span></td>
<td>${payout.automatic ? 'automatic' : 'manual'}</td><td>${formatTime(payout.arrivalDate)}</td><td>${formatTime(payout.createdAt)}</td></tr>`)}
${payouts.rows.length === 0 ? html`<tr><td colspan="6">None.</td></tr>` : ''}
</tbody></table>
${payouts.hasMore ? html`<nav class="pager"><a href="/dashboard/balances/${merchantId}?${new URLSearchParams({ account: payoutsOf,
      starting_after: payouts.rows.at(-1)?.id ?? '' }).toString()}">Older →</a></nav>` : ''}
<h2>Manual payout</h2>
${payoutForm(context, merchantId, owners)}`;
  return layout({ title: `${merchant.name} (${merchant.id})`, context, body });
}

function payoutForm(context: PageContext, merchantId: string, owners: readonly string[]): Html {
  return html`<form method="post" action="/dashboard/balances/${merchantId}/payouts" id="payout-form"
 hx-confirm="Pay this amount out to the owner's bank account?">
${csrfField(context)}<input type="hidden" name="nonce" value="${newNonce()}">
<fieldset class="grid">
<label>From the balance of <select name="account">${owners.map((owner) => html`<option value="${owner}">${owner}${owner === merchantId ? ' (platform)' : ''}</option>`)}</select></label>
<label>Currency <input name="currency" value="usd" size="4" required></label>
<label>Amount <input name="amount" inputmode="decimal" placeholder="0.00" required id="payout-amount"></label>
<label>Description <input name="description" maxlength="1000"></label>
</fieldset>
<button type="submit" id="create-payout">Pay out</button></form>`;
}
