/**
 * The dashboard's templates are TypeScript functions that return HTML (the "JSX to strings" of
 * issue 19, without a JSX build): `html` is a tagged template that escapes every interpolated
 * value unless it is already `Html`, so text from a request, a PSP or metadata can never become
 * markup. Arrays are joined; null, undefined and false render as nothing.
 */
export class Html {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

export type Renderable = Html | string | number | bigint | boolean | null | undefined | readonly Renderable[];

const replacements: Readonly<Record<string, string>> = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (character) => replacements[character] ?? character);
}

function render(value: Renderable): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map((item: Renderable) => render(item)).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): Html {
  let text = strings[0] ?? '';
  values.forEach((value, index) => {
    text += render(value) + (strings[index + 1] ?? '');
  });
  return new Html(text);
}

/** Markup made elsewhere and trusted as such (never text from outside). */
export function trusted(text: string): Html {
  return new Html(text);
}
