import type { FastifyInstance } from 'fastify';
import { nowMs } from '../clock.js';
import { PennyError } from '../errors.js';
import { selectOpenBreakAges } from '../metrics/metrics-store.js';
import { proposeRepair } from '../reconciliation/recon-breaks.js';
import { breakStatuses } from '../reconciliation/recon-break-store.js';
import { readAsOfDay } from '../reconciliation/recon-dates.js';
import { reconFormats, type ReconFormat } from '../reconciliation/recon-records.js';
import { readEnum, readString } from '../validation.js';
import multipart from '@fastify/multipart';
import { limits } from '../config.js';
import { formOf, formString } from './dashboard-actions.js';
import { formatMinor, formatTime } from './dashboard-format.js';
import { csrfField, flash, layout, type PageContext } from './dashboard-layout.js';
import type { DashboardServices } from './dashboard-services.js';
import { html, type Html } from './html.js';
import { assertCsrfToken, pageContext, requireOperator, sendPage } from './page-support.js';

type IdParams = { Params: { id: string } };

const notices: Readonly<Record<string, string>> = {
  repaired: 'Repair approved: its entry is posted and the break is resolved.',
  ignored: 'Break ignored.', ran: 'Reconciliation ran.', imported: 'File imported.',
};

/**
 * Reconciliation for the operator: runs with their counts, open breaks by type and age, a break's
 * page with both sides and the proposed repair, Approve (the same idempotent repair as `POST
 * /v1/reconciliation/breaks/:id/repair`) and Ignore with a reason, a run now, and a file upload
 * (a settlement report or bank statement, streamed into the same import as the API's).
 */
export function registerReconciliationPages(scope: FastifyInstance, services: DashboardServices): void {
  scope.get('/reconciliation', async (request, reply) => {
    requireOperator(request);
    const context = pageContext(request);
    const query = request.query as Record<string, string | undefined>;
    const status = readEnum(query.status || 'open', 'status', breakStatuses) ?? 'open';
    const type = query.type ? readString(query.type, 'type', { lengthMax: 64 }) : undefined;
    const startingAfter = query.starting_after ? readString(query.starting_after, 'starting_after', { lengthMax: 70 })
      : undefined;
    const runsAfter = query.runs_after ? readString(query.runs_after, 'runs_after', { lengthMax: 70 }) : undefined;
    const [runs, ages, breaks] = await Promise.all([services.breaks.runs({ limit: 10, startingAfter: runsAfter }),
      selectOpenBreakAges(services.pool), services.breaks.list({ status, type, limit: 25, startingAfter })]);
    const body = html`${flash('notice', query.notice === undefined ? undefined : notices[query.notice])}
<h2>Open breaks by type and age</h2>
<table id="break-ages"><thead><tr><th>Type</th><th>Age</th><th>Open</th></tr></thead><tbody>
${ages.map((row) => html`<tr><td><a href="/dashboard/reconciliation?type=${row.type}">${row.type}</a></td><td>${row.age}</td><td>${row.count}</td></tr>`)}
${ages.length === 0 ? html`<tr><td colspan="3">No open break.</td></tr>` : ''}
</tbody></table>
<h2>${status === 'open' ? 'Open' : status === 'resolved' ? 'Resolved' : 'Ignored'} breaks${type === undefined ? '' : ` of type ${type}`}</h2>
<nav>${breakStatuses.map((name) => html`<a href="/dashboard/reconciliation?status=${name}">${name}</a> `)}</nav>
<table id="breaks"><thead><tr><th>Break</th><th>Type</th><th>Leg</th><th>Reference</th><th class="amount">Difference</th>
<th>Opened</th></tr></thead><tbody>
${breaks.breaks.map((row) => html`<tr><td><a href="/dashboard/reconciliation/breaks/${row.id}">${row.id}</a></td><td>${row.type}</td>
<td>${row.leg}</td><td><code>${row.internalRef ?? row.externalRef ?? '—'}</code></td>
<td class="amount">${row.currency === null ? row.differenceMinor : formatMinor(row.differenceMinor, row.currency)}</td>
<td>${formatTime(row.openedAt)}</td></tr>`)}
${breaks.breaks.length === 0 ? html`<tr><td colspan="6">None.</td></tr>` : ''}
</tbody></table>
${breaks.hasMore ? html`<nav class="pager"><a href="/dashboard/reconciliation?${new URLSearchParams({ status,
      ...(type === undefined ? {} : { type }), starting_after: breaks.breaks.at(-1)?.id ?? '' }).toString()}">Older →</a></nav>` : ''}
<h2>Runs</h2>
<form method="post" action="/dashboard/reconciliation/runs" class="inline">${csrfField(context)}
<label>As of <input type="date" name="as_of"></label><button type="submit" class="secondary" id="run-now">Run now</button></form>
<table id="runs"><thead><tr><th>Run</th><th>As of</th><th>Started</th><th>Finished</th><th>Counts</th></tr></thead><tbody>
${runs.runs.map((run) => html`<tr><td><code>${run.id}</code></td><td>${run.asOf}</td><td>${formatTime(run.startedAt)}</td>
<td>${formatTime(run.finishedAt)}</td><td><small>${Object.entries(run.counts).map(([name, count]) => `${name}: ${String(count)}`).join(', ')}</small></td></tr>`)}
</tbody></table>
${runs.hasMore ? html`<nav class="pager"><a href="/dashboard/reconciliation?runs_after=${runs.runs.at(-1)?.id ?? ''}">Older runs →</a></nav>` : ''}
<h2>Import a file</h2>
${uploadForm(context)}`;
    return sendPage(reply, layout({ title: 'Reconciliation', context, body }));
  });

  scope.get<IdParams>('/reconciliation/breaks/:id', async (request, reply) => {
    requireOperator(request);
    const query = request.query as Record<string, string | undefined>;
    return sendPage(reply, await breakPage(services, request.params.id, pageContext(request),
      query.notice === undefined ? undefined : notices[query.notice]));
  });

  scope.post<IdParams>('/reconciliation/breaks/:id/repair', async (request, reply) => {
    requireOperator(request);
    await services.breaks.repair(request.params.id);
    return reply.redirect(`/dashboard/reconciliation/breaks/${encodeURIComponent(request.params.id)}?notice=repaired`, 303);
  });

  scope.post<IdParams>('/reconciliation/breaks/:id/ignore', async (request, reply) => {
    requireOperator(request);
    const reason = readString(formString(formOf(request), 'reason'), 'reason', { lengthMax: 1000, required: true });
    await services.breaks.ignore(request.params.id, reason);
    return reply.redirect(`/dashboard/reconciliation/breaks/${encodeURIComponent(request.params.id)}?notice=ignored`, 303);
  });

  scope.post('/reconciliation/runs', async (request, reply) => {
    requireOperator(request);
    const asOf = readAsOfDay(formString(formOf(request), 'as_of'), 'as_of',
      () => new Date(nowMs()).toISOString().slice(0, 10));
    await services.runs.run({ asOf });
    return reply.redirect('/dashboard/reconciliation?notice=ran', 303);
  });

  // The upload is multipart: its own scope parses it, and the route reads the CSRF field itself
  // (the fields come before the file in the form, so they are read before the file is streamed).
  void scope.register(async (upload) => {
    // One byte more than the import takes, so a file too large reaches the import whole enough to be
    // refused by it (413), rather than cut at the limit by the parser and imported short.
    await upload.register(multipart, { limits: { files: 1, fields: 5, fieldSize: 1024,
      fileSize: limits.reconciliationFileBytesMax + 1 } });
    upload.post('/reconciliation/files', { config: { csrfCheckedByRoute: true } }, async (request, reply) => {
      requireOperator(request);
      const file = await request.file();
      const field = (name: string) => {
        const value = file?.fields[name];
        const one = Array.isArray(value) ? value[0] : value;
        return one !== undefined && 'value' in one && typeof one.value === 'string' && one.value !== ''
          ? one.value : undefined;
      };
      assertCsrfToken(request, field('_csrf'));
      if (file === undefined) {
        throw new PennyError({ code: 'parameter_missing', param: 'file', message: 'Choose a file to import.' });
      }
      const source = readString(field('source'), 'source', { lengthMax: 64 });
      const format = readEnum<ReconFormat>(field('format'), 'format', reconFormats);
      const summary = await services.imports.importFile({ body: file.file, filename: file.filename || 'upload',
        source, format });
      const context = pageContext(request);
      return sendPage(reply, layout({ title: 'File imported', context, body: html`
${flash('notice', summary.already_known ? 'These bytes were imported before; nothing was added.' : notices.imported)}
<table id="import-summary"><tr><th>File</th><td><code>${summary.id}</code></td></tr>
<tr><th>Name</th><td>${summary.filename}</td></tr><tr><th>Format</th><td>${summary.format}</td></tr>
<tr><th>Source</th><td>${summary.source}</td></tr><tr><th>Lines</th><td>${summary.lines}</td></tr>
<tr><th>Records</th><td>${summary.records.total} (${summary.records.new} new, ${summary.records.known} known,
${summary.records.conflicting} conflicting)</td></tr><tr><th>Statements</th><td>${summary.statement_count}</td></tr></table>
<p><a href="/dashboard/reconciliation">Back to reconciliation</a></p>` }), summary.already_known ? 200 : 201);
    });
  });
}

function uploadForm(context: PageContext): Html {
  return html`<form method="post" action="/dashboard/reconciliation/files" enctype="multipart/form-data" id="upload-form"
 hx-encoding="multipart/form-data">
${csrfField(context)}
<fieldset class="grid">
<label>Source (PSP account or bank; optional) <input name="source" placeholder="sandbox"></label>
<label>Format <select name="format"><option value="">detect</option>
${reconFormats.map((format) => html`<option>${format}</option>`)}</select></label>
<label>Settlement report or bank statement <input type="file" name="file" required></label>
</fieldset>
<button type="submit" id="upload">Import</button></form>`;
}

async function breakPage(services: DashboardServices, id: string, context: PageContext, notice: string | undefined) {
  const row = await services.breaks.get(id);
  const proposal = proposeRepair(row);
  const money = (amount: bigint) => row.currency === null ? amount.toString() : formatMinor(amount, row.currency);
  const body = html`${flash('notice', notice)}
<table id="break"><tr><th>Break</th><td><code>${row.id}</code></td></tr><tr><th>Type</th><td>${row.type}</td></tr>
<tr><th>Leg</th><td>${row.leg === 'ledger_psp' ? "Penny's books against the PSP's report" : "the PSP's payouts against the bank"}</td></tr>
<tr><th>Status</th><td id="break-status"><span class="status status-${row.status}">${row.status}</span>${row.resolution === null ? '' : ` (${row.resolution})`}</td></tr>
<tr><th>Merchant</th><td>${row.merchantId ?? '—'}</td></tr><tr><th>Opened</th><td>${formatTime(row.openedAt)} by run <code>${row.runId}</code></td></tr>
${row.resolvedAt === null ? '' : html`<tr><th>Resolved</th><td>${formatTime(row.resolvedAt)}${row.resolvedByRunId === null ? '' : html` by run <code>${row.resolvedByRunId}</code>`}</td></tr>`}
${row.repairEntryId === null ? '' : html`<tr><th>Repair entry</th><td><code id="repair-entry">${row.repairEntryId}</code></td></tr>`}
${row.ignoredReason === null ? '' : html`<tr><th>Ignored</th><td>${formatTime(row.ignoredAt)}: ${row.ignoredReason}</td></tr>`}
</table>
<div class="grid" id="sides">
<article><header>${row.leg === 'ledger_psp' ? "Penny's books" : "The PSP's payout"}</header>
<p>Reference <code>${row.internalRef ?? '—'}</code></p><p>Expected <strong class="amount">${money(row.expectedMinor)}</strong></p></article>
<article><header>${row.leg === 'ledger_psp' ? "The PSP's report" : 'The bank statement'}</header>
<p>Reference <code>${row.externalRef ?? '—'}</code></p><p>Actual <strong class="amount">${money(row.actualMinor)}</strong></p></article>
</div>
<p>Difference <strong>${money(row.differenceMinor)}</strong>. ${row.detail}</p>
<h2>Proposed repair</h2>
${proposal === null ? html`<p id="proposal">No entry fits this break: a later run resolves it when it matches, or ignore it with a reason.</p>`
    : html`<p id="proposal">${proposal.description}</p>
<table id="proposal-postings"><thead><tr><th>Account</th><th class="amount">Debit</th><th class="amount">Credit</th></tr></thead><tbody>
${proposal.postings.map((posting) => html`<tr><td>${posting.role}${['operator_bank', 'settlement_suspense'].includes(posting.role) ? ' (operator)' : ` of ${proposal.ownerId ?? ''}`}</td>
<td class="amount">${posting.direction === 'debit' ? formatMinor(posting.amountMinor, proposal.currency) : ''}</td>
<td class="amount">${posting.direction === 'credit' ? formatMinor(posting.amountMinor, proposal.currency) : ''}</td></tr>`)}
</tbody></table>`}
${row.status !== 'open' ? '' : html`<div class="grid" id="break-actions">
${proposal === null ? '' : html`<form method="post" action="/dashboard/reconciliation/breaks/${row.id}/repair"
 hx-confirm="Approve this repair? Its entry is posted to the ledger.">${csrfField(context)}
<button type="submit" id="approve">Approve repair</button></form>`}
<form method="post" action="/dashboard/reconciliation/breaks/${row.id}/ignore" hx-confirm="Ignore this break?">${csrfField(context)}
<label>Reason <input name="reason" required maxlength="1000" id="ignore-reason"></label>
<button type="submit" class="secondary" id="ignore">Ignore</button></form></div>`}`;
  return layout({ title: `Break ${row.id}`, context, body });
}
