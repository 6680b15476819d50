/**
 * Small pure functions that draw line plots as inline SVG, for the self-contained run report.
 * No fonts, scripts or images are loaded: the SVG is text that any browser renders offline.
 */

/** Escapes text for HTML and SVG element content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export interface PlotPoint {
  x: number;
  /** null leaves a gap: the measure does not exist for this x. */
  y: number | null;
}

export interface PlotBand {
  x: number;
  low: number;
  high: number;
}

export interface PlotSeries {
  name: string;
  color: string;
  points: PlotPoint[];
  /** Shaded interval around the line, e.g. a 95% confidence interval. */
  band?: PlotBand[];
}

export interface LinePlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: PlotSeries[];
  /** Fixed y range; derived from the data (with some headroom) when absent. */
  yDomain?: [number, number];
  /** Dashed horizontal reference line, e.g. 0.5 for a win rate. */
  referenceY?: number;
  /** Formats tick labels of the y axis. */
  formatY?: (value: number) => string;
  width?: number;
  height?: number;
}

const MARGIN = { top: 44, right: 16, bottom: 40, left: 56 };

/** Returns about `count` round tick values that cover [low, high]. */
export function niceTicks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) return [low];
  const rawStep = (high - low) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(rawStep));
  const residual = rawStep / magnitude;
  const step = (residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1) * magnitude;
  const ticks: number[] = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    ticks.push(Number(value.toFixed(12)));
  }
  return ticks;
}

function formatNumber(value: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 1000 || Math.abs(value) < 0.01) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

/** Returns the y range of the data, padded by 5% on each side, or [0, 1] without data. */
function dataDomain(series: PlotSeries[], referenceY?: number): [number, number] {
  const values: number[] = [];
  for (const line of series) {
    for (const point of line.points) if (point.y !== null && Number.isFinite(point.y)) values.push(point.y);
    for (const band of line.band ?? []) values.push(band.low, band.high);
  }
  if (referenceY !== undefined) values.push(referenceY);
  if (values.length === 0) return [0, 1];
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high === low) {
    low -= Math.abs(low) * 0.1 || 1;
    high += Math.abs(high) * 0.1 || 1;
  }
  const pad = (high - low) * 0.05;
  return [low - pad, high + pad];
}

/**
 * Draws a line plot with one circle per point, optional shaded bands and a legend. Points with
 * a null y are drawn as gaps. Every text is escaped.
 */
export function linePlot(options: LinePlotOptions): string {
  const width = options.width ?? 480;
  const height = options.height ?? 260;
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const formatY = options.formatY ?? formatNumber;

  const xs = options.series.flatMap((line) => line.points.map((point) => point.x));
  const xLow = xs.length > 0 ? Math.min(...xs) : 0;
  const xHigh = xs.length > 0 ? Math.max(...xs) : 1;
  const xSpan = xHigh > xLow ? xHigh - xLow : 1;
  const [yLow, yHigh] = options.yDomain ?? dataDomain(options.series, options.referenceY);
  const ySpan = yHigh > yLow ? yHigh - yLow : 1;

  const sx = (x: number): number => MARGIN.left + (xHigh > xLow ? ((x - xLow) / xSpan) * plotWidth : plotWidth / 2);
  const sy = (y: number): number => MARGIN.top + plotHeight - ((Math.min(Math.max(y, yLow), yHigh) - yLow) / ySpan) * plotHeight;
  const fixed = (value: number): string => value.toFixed(1);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}">`,
  );
  parts.push(`<title>${escapeXml(options.title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${MARGIN.left}" y="18" font-size="13" font-weight="600" fill="#222">${escapeXml(options.title)}</text>`);

  // Grid and y ticks.
  for (const tick of niceTicks(yLow, yHigh)) {
    const y = fixed(sy(tick));
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y}" font-size="10" fill="#555" text-anchor="end" dominant-baseline="middle">${escapeXml(formatY(tick))}</text>`);
  }
  // x ticks at the data's x values (rounds are few and integral).
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<text x="${fixed(sx(x))}" y="${MARGIN.top + plotHeight + 14}" font-size="10" fill="#555" text-anchor="middle">${escapeXml(String(x))}</text>`);
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" stroke="#888"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${MARGIN.top + plotHeight}" y2="${MARGIN.top + plotHeight}" stroke="#888"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${height - 6}" font-size="11" fill="#333" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text x="12" y="${MARGIN.top + plotHeight / 2}" font-size="11" fill="#333" text-anchor="middle" transform="rotate(-90 12 ${MARGIN.top + plotHeight / 2})">${escapeXml(options.yLabel)}</text>`,
  );

  if (options.referenceY !== undefined) {
    const y = fixed(sy(options.referenceY));
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y}" y2="${y}" stroke="#999" stroke-dasharray="4 3"/>`);
  }

  for (const line of options.series) {
    const color = escapeXml(line.color);
    if (line.band && line.band.length > 0) {
      const band = [...line.band].sort((a, b) => a.x - b.x);
      const upper = band.map((point) => `${fixed(sx(point.x))},${fixed(sy(point.high))}`);
      const lower = band.reverse().map((point) => `${fixed(sx(point.x))},${fixed(sy(point.low))}`);
      parts.push(`<polygon class="band" points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15" stroke="none"/>`);
    }
    // A path with a move at every gap, so missing values break the line instead of bridging it.
    let path = '';
    let pen = false;
    for (const point of line.points) {
      if (point.y === null || !Number.isFinite(point.y)) {
        pen = false;
        continue;
      }
      path += `${pen ? 'L' : 'M'}${fixed(sx(point.x))},${fixed(sy(point.y))} `;
      pen = true;
    }
    if (path !== '') parts.push(`<path d="${path.trim()}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const point of line.points) {
      if (point.y === null || !Number.isFinite(point.y)) continue;
      parts.push(
        `<circle class="point" cx="${fixed(sx(point.x))}" cy="${fixed(sy(point.y))}" r="3.5" fill="${color}"><title>${escapeXml(`${line.name}, round ${point.x}: ${formatY(point.y)}`)}</title></circle>`,
      );
    }
  }

  // Legend, one entry per series, right-aligned below the title.
  let legendX = width - MARGIN.right;
  for (const line of [...options.series].reverse()) {
    const label = escapeXml(line.name);
    const labelWidth = line.name.length * 6 + 18;
    legendX -= labelWidth;
    parts.push(
      `<rect x="${legendX}" y="25" width="10" height="10" fill="${escapeXml(line.color)}"/>`,
      `<text x="${legendX + 14}" y="34" font-size="10" fill="#333">${label}</text>`,
    );
  }

  parts.push('</svg>');
  return parts.join('\n');
}
