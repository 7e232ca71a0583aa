import type { FastifyInstance } from 'fastify';
import { verifyLedger, type VerifyReport } from '../ledger/ledger-verify.js';
import { accountTypes, normalBalance } from '../ledger/ledger-types.js';
import { readEnum, readString } from '../validation.js';
import { invalid } from '../validation.js';
import { formatMinor, formatTime } from './dashboard-format.js';
import { csrfField, flash, layout } from './dashboard-layout.js';
import type { DashboardServices } from './dashboard-services.js';
import { html } from './html.js';
import { pageContext, requireOperator, sendPage } from './page-support.js';

type IdParams = { Params: { id: string } };

/**
 * The ledger for the operator: accounts with balances (by owner, currency, type), an account's
 * postings with the running balance as of a day, the trial balance per currency, and the hash
 * chain's head with the result of the last verify run from this page (kept by this process).
 */
export function registerLedgerPages(scope: FastifyInstance, services: DashboardServices): void {
  let lastVerify: { at: string; report: VerifyReport } | undefined;

  scope.get('/ledger', async (request, reply) => {
    requireOperator(request);
    const context = pageContext(request);
    const query = request.query as Record<string, string | undefined>;
    const text = (name: string) => (query[name] ?? '').trim() === '' ? undefined
      : readString(query[name]?.trim(), name, { lengthMax: 255 });
    const type = readEnum(text('type'), 'type', accountTypes);
    const page = await services.ledger.listAccounts({ limit: 50, startingAfter: text('starting_after'),
      owner: text('owner'), currency: text('currency')?.toUpperCase(), type });
    const accounts = page.data;
    const asOf = text('as_of') === undefined ? undefined : endOfDay(text('as_of') as string);
    const [trial, head] = await Promise.all([services.ledger.trialBalance(asOf), services.ledger.chainHead()]);
    const body = html`
<h2>Chain head</h2>
<p id="chain-head">${head === undefined ? 'Nothing sealed yet.'
      : html`position <code>${head.position}</code>, hash <code>${head.hash}</code>`}</p>
<p id="last-verify">${lastVerify === undefined ? 'No verify has run from this dashboard since Penny started.'
      : html`Last verify ${formatTime(lastVerify.at)}: <strong>${lastVerify.report.ok ? 'ok' : 'FAILED'}</strong>,
${lastVerify.report.sealsChecked} seals and ${lastVerify.report.accountsChecked} accounts checked
${lastVerify.report.failures.slice(0, 20).map((failure) => html`<br><code>${failure.check}</code> ${failure.message}`)}`}</p>
<form method="post" action="/dashboard/ledger/verify" hx-confirm="Verify the whole ledger now? It reads every seal.">
${csrfField(context)}<button type="submit" class="secondary" id="verify">Verify now</button></form>
<h2>Trial balance${asOf === undefined ? '' : html` as of ${formatTime(asOf)}`}</h2>
<form method="get" action="/dashboard/ledger"><label>As of (end of day, UTC)
<input type="date" name="as_of" value="${query.as_of ?? ''}"></label><button type="submit">Show</button></form>
<table id="trial-balance"><thead><tr><th>Currency</th><th>Type</th><th>Accounts</th><th class="amount">Debits</th>
<th class="amount">Credits</th></tr></thead><tbody>
${trial.map((row) => html`<tr><td>${row.currency}</td><td>${row.type}</td><td>${row.accountCount}</td>
<td class="amount">${formatMinor(row.balances.debitsPosted, row.currency)}</td>
<td class="amount">${formatMinor(row.balances.creditsPosted, row.currency)}</td></tr>`)}
</tbody></table>
<h2>Accounts</h2>
<form method="get" action="/dashboard/ledger" class="filters"><fieldset class="grid">
<label>Owner <input name="owner" value="${query.owner ?? ''}" placeholder="acct_… or operator"></label>
<label>Currency <input name="currency" value="${query.currency ?? ''}" placeholder="USD"></label>
<label>Type <select name="type"><option value="">any</option>
${accountTypes.map((name) => html`<option ${type === name ? 'selected' : ''}>${name}</option>`)}
</select></label></fieldset><button type="submit">Filter</button></form>
<table id="accounts"><thead><tr><th>Account</th><th>Code</th><th>Owner</th><th>Type</th><th class="amount">Balance (posted)</th>
<th class="amount">Pending</th></tr></thead><tbody>
${accounts.map((account) => {
    const sign = normalBalance(account.type) === 'debit' ? 1n : -1n;
    const posted = sign * (account.balances.debitsPosted - account.balances.creditsPosted);
    const pending = sign * (account.balances.debitsPending - account.balances.creditsPending);
    return html`<tr><td><a href="/dashboard/ledger/accounts/${account.id}">${account.id}</a></td><td>${account.code ?? '—'}</td>
<td>${account.owner ?? '—'}</td><td>${account.type}</td><td class="amount">${formatMinor(posted, account.currency)}</td>
<td class="amount">${formatMinor(pending, account.currency)}</td></tr>`;
  })}
</tbody></table>
${page.hasMore && page.data.length > 0 ? html`<nav class="pager"><a href="/dashboard/ledger?${new URLSearchParams({
      ...(query.owner ? { owner: query.owner } : {}), ...(query.currency ? { currency: query.currency } : {}),
      ...(type ? { type } : {}), starting_after: page.data.at(-1)?.id ?? '' }).toString()}">Next →</a></nav>` : ''}`;
    return sendPage(reply, layout({ title: 'Ledger', context, body }));
  });

  scope.post('/ledger/verify', async (request, reply) => {
    requireOperator(request);
    lastVerify = { at: new Date().toISOString(), report: await verifyLedger(services.pool) };
    return reply.redirect('/dashboard/ledger', 303);
  });

  scope.get<IdParams>('/ledger/accounts/:id', async (request, reply) => {
    requireOperator(request);
    const context = pageContext(request);
    const query = request.query as Record<string, string | undefined>;
    const asOfDay = (query.as_of ?? '').trim();
    const to = asOfDay === '' ? '9999-12-31T00:00:00Z' : endOfDayExclusive(asOfDay);
    const startingAfter = query.starting_after && /^\d{1,19}$/.test(query.starting_after)
      ? BigInt(query.starting_after) : undefined;
    const statement = await services.ledgerReports.statementPage(request.params.id,
      { from: '1970-01-01T00:00:00Z', to }, { limit: 50, startingAfter });
    const account = statement.summary.account;
    const body = html`${flash('notice', undefined)}
<table><tr><th>Account</th><td><code>${account.id}</code></td></tr><tr><th>Code</th><td>${account.code ?? '—'}</td></tr>
<tr><th>Owner</th><td>${account.owner ?? '—'}</td></tr><tr><th>Type</th><td>${account.type} (normal balance: ${normalBalance(account.type)})</td></tr>
<tr><th>Balance${asOfDay === '' ? '' : ` as of ${asOfDay}`}</th><td id="closing-balance">${formatMinor(statement.summary.closingBalance, account.currency)}</td></tr></table>
<form method="get" action="/dashboard/ledger/accounts/${account.id}"><label>As of (end of day, UTC)
<input type="date" name="as_of" value="${asOfDay}"></label><button type="submit">Show</button></form>
<table id="postings"><thead><tr><th>Effective</th><th>Entry</th><th>Description</th><th class="amount">Debit</th>
<th class="amount">Credit</th><th class="amount">Running balance</th></tr></thead><tbody>
${statement.postings.map((posting) => html`<tr><td>${formatTime(posting.effectiveAt)}</td><td><code>${posting.entryId}</code></td>
<td>${posting.description ?? posting.externalReference}</td>
<td class="amount">${posting.direction === 'debit' ? formatMinor(posting.amountMinor, account.currency) : ''}</td>
<td class="amount">${posting.direction === 'credit' ? formatMinor(posting.amountMinor, account.currency) : ''}</td>
<td class="amount">${formatMinor(posting.runningBalance, account.currency)}</td></tr>`)}
${statement.postings.length === 0 ? html`<tr><td colspan="6">No posted posting.</td></tr>` : ''}
</tbody></table>
${statement.hasMore ? html`<nav class="pager"><a href="/dashboard/ledger/accounts/${account.id}?${new URLSearchParams({
      ...(asOfDay === '' ? {} : { as_of: asOfDay }),
      starting_after: statement.postings.at(-1)?.id.toString() ?? '' }).toString()}">Later postings →</a></nav>` : ''}`;
    return sendPage(reply, layout({ title: `Account ${account.id}`, context, body }));
  });
}

function checkDay(day: string): void {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(day))) {
    throw invalid('as_of', 'as_of is a day such as 2026-12-07.');
  }
}

/** The last instant of a UTC day (as-of is inclusive). */
function endOfDay(day: string): string {
  checkDay(day);
  return `${day}T23:59:59.999999Z`;
}

/** The first instant after a UTC day (a period's `to` is exclusive). */
function endOfDayExclusive(day: string): string {
  checkDay(day);
  return new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString();
}
