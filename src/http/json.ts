/**
 * JSON with bigint: amounts and sums are bigint inside Penny and are written as JSON integers,
 * exactly, whatever their size (JSON.stringify refuses bigint, and a Number would round).
 */
const marker = '\u0000bigint:';
const markerPattern = /"\\u0000bigint:(-?\d+)"/g;

export function stringifyJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, item: unknown) =>
    typeof item === 'bigint' ? `${marker}${item.toString()}` : item);
  return text.replace(markerPattern, '$1');
}
