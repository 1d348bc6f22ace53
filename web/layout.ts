/**
 * The frame every page shares, and small HTML helpers. Markup goes through Hono's `html` tag,
 * which escapes every interpolated string, so a name or a reason from a crawled page is text,
 * never markup.
 */
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export const NAV = [
  { path: "/", label: "Overview" },
  { path: "/faces", label: "Faces" },
  { path: "/report", label: "Report" },
  { path: "/try", label: "Try it" },
] as const;

export interface PageFrame {
  title: string;
  /** The nav entry to mark as current. */
  current: string;
  csrfToken: string;
  dataDir: string;
  body: Html;
}

/** A whole page: nav, the CSRF token for the client script, and the body. */
export function page(frame: PageFrame): Html {
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="csrf-token" content="${frame.csrfToken}">
        <title>${frame.title} · facefield</title>
        <link rel="stylesheet" href="/assets/app.css">
        <link rel="icon" href="data:,">
        <script type="module" src="/assets/app.js"></script>
      </head>
      <body>
        <header>
          <nav><span class="brand">facefield</span>${NAV.map((item) =>
            html`
              <a href="${item.path}" ${item.path === frame.current
                ? html`
                  aria-current="page"
                `
                : ""}>${item.label}</a>
            `
          )}<span class="data-dir" title="data dir">${frame.dataDir}</span></nav>
        </header>
        <main>${frame.body}</main>
      </body>
    </html>
  `;
}

export const percent = (value: number | null | undefined, digits = 1) =>
  value === null || value === undefined || !Number.isFinite(value)
    ? "–"
    : `${(value * 100).toFixed(digits)} %`;

const DATE_FORMAT = new Intl.DateTimeFormat("en-GB", {
  dateStyle: "medium",
  timeStyle: "short",
  timeZone: "UTC",
});

/** An ISO time as people read it ("7 Dec 2026, 16:51 UTC"), in a <time> element. */
export function readableDate(iso: string | undefined): Html {
  if (!iso) return html`at an unknown time`;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return html`${iso}`;
  return html`<time datetime="${date.toISOString()}">${DATE_FORMAT.format(date)} UTC</time>`;
}

/** A query string from the non-empty entries. */
export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** A small line chart as inline SVG (no script): one polyline per series, values 0..max. */
export function lineChart(
  title: string,
  series: { name: string; points: [number, number][] }[],
  { width = 320, height = 160 } = {},
): Html {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return html``;
  const maxX = Math.max(1, ...all.map(([x]) => x));
  const maxY = Math.max(1e-9, ...all.map(([, y]) => y));
  const pad = 28;
  const sx = (x: number) => pad + ((x - 1) / Math.max(1, maxX - 1)) * (width - pad - 8);
  const sy = (y: number) => height - pad - (y / maxY) * (height - pad - 12);
  const colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
  return html`
    <figure class="chart">
      <svg viewBox="0 0 ${width} ${height}" width="${width}"
        height="${height}" role="img" aria-label="${title}">
    <line x1="${pad}" y1="${height - pad}" x2="${width - 8}" y2="${height - pad}" stroke="#999"/>
    <line x1="${pad}" y1="12" x2="${pad}" y2="${height - pad}" stroke="#999"/>
    <text x="${pad - 4}" y="16" text-anchor="end" font-size="10">${maxY.toFixed(2)}</text>
    <text x="${width - 8}" y="${height - pad +
      14}" text-anchor="end" font-size="10">epoch ${maxX}</text>
    ${series.map((s, i) =>
      html`
        <polyline fill="none" stroke="${colours[i % colours.length]}" stroke-width="2"
          points="${s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(
            " ",
          )}" />
        <text x="${pad + 6}" y="${height - 6 - 12 * (series.length - 1 - i)}" font-size="10"
          fill="${colours[i % colours.length]}">${s.name}</text>
      `
    )}
      </svg>
      <figcaption>${title}</figcaption>
    </figure>
  `;
}
