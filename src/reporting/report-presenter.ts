import type { FileRow, ReportRunRow } from './report-store.js';
import type { DataAvailability, ReportTypeDefinition } from './report-types.js';

/**
 * Stripe's ReportRun, ReportType and File objects. A file's `url` is Penny's own
 * `/v1/files/:id/contents` under the address the caller reached Penny at (the request's, or
 * `PENNY_PUBLIC_URL` for events), fetched with the merchant's secret key as Stripe's
 * files.stripe.com is.
 */
export function presentReportRun(run: ReportRunRow, file: FileRow | undefined, baseUrl: string) {
  return {
    id: run.id,
    object: 'reporting.report_run',
    created: unixSeconds(run.createdAt),
    error: run.error,
    livemode: false,
    parameters: run.parameters,
    report_type: run.reportType,
    result: file === undefined ? null : presentFile(file, baseUrl),
    status: run.status,
    succeeded_at: run.succeededAt === null ? null : unixSeconds(run.succeededAt),
  };
}

export function presentFile(file: FileRow, baseUrl: string) {
  return {
    id: file.id,
    object: 'file',
    created: unixSeconds(file.createdAt),
    expires_at: null,
    filename: file.filename,
    links: { object: 'list', data: [], has_more: false, url: `/v1/file_links?file=${file.id}` },
    purpose: file.purpose,
    size: Number(file.sizeBytes),
    title: null,
    type: file.type,
    url: `${baseUrl}/v1/files/${file.id}/contents`,
  };
}

export function presentReportType(type: ReportTypeDefinition, available: DataAvailability) {
  return {
    id: type.id,
    object: 'reporting.report_type',
    data_available_end: available.end,
    data_available_start: available.start,
    default_columns: type.defaultColumns,
    livemode: false,
    name: type.name,
    updated: available.end,
    version: type.version,
  };
}

function unixSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}
