import { html, type Html } from './html';

export interface HistogramSeries {
  label: string;
  values: number[];
}

/** Counts per bin over [min, max]; the last bin includes max. Values outside or not finite are left out. */
export function binCounts(values: readonly number[], min: number, max: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  const width = (max - min) / bins;
  for (const value of values) {
    if (!Number.isFinite(value) || value < min || value > max) continue;
    counts[Math.min(bins - 1, Math.floor((value - min) / width))] += 1;
  }
  return counts;
}

/**
 * A grouped-bar histogram as inline SVG (no script, no library): one colour per series (CSS classes series-0…),
 * each bar titled with its range and count so a hover shows the numbers.
 */
export function histogramSvg(
  series: HistogramSeries[],
  options: { min: number; max: number; bins: number; caption: string },
): Html {
  const width = 520;
  const height = 190;
  const left = 36;
  const bottom = 28;
  const top = 10;
  const plotWidth = width - left - 10;
  const plotHeight = height - top - bottom;
  const counts = series.map((item) => binCounts(item.values, options.min, options.max, options.bins));
  const highest = Math.max(1, ...counts.flat());
  const binWidth = plotWidth / options.bins;
  const barWidth = Math.max(1, (binWidth - 4) / Math.max(1, series.length));
  const step = (options.max - options.min) / options.bins;
  const bars = counts.flatMap((perBin, seriesIndex) =>
    perBin.map((count, bin) => {
      const barHeight = (count / highest) * plotHeight;
      const x = left + bin * binWidth + 2 + seriesIndex * barWidth;
      const y = top + plotHeight - barHeight;
      const from = options.min + bin * step;
      return html`<rect
        class="bar series-${seriesIndex}"
        x="${x.toFixed(1)}"
        y="${y.toFixed(1)}"
        width="${barWidth.toFixed(1)}"
        height="${barHeight.toFixed(1)}"
        data-count="${count}"
        ><title>
          ${series[seriesIndex]!.label}: ${count} rows in [${from.toFixed(2)},
          ${(from + step).toFixed(2)}${bin === options.bins - 1 ? ']' : ')'}
        </title></rect
      >`;
    }),
  );
  const legend = series.map(
    (item, index) =>
      html`<span class="legend"
        ><svg width="12" height="12" aria-hidden="true">
          <rect class="bar series-${index}" width="12" height="12"></rect>
        </svg>
        ${item.label}</span
      >`,
  );
  return html`<figure class="chart">
    <svg
      width="${width}"
      height="${height}"
      viewBox="0 0 ${width} ${height}"
      role="img"
      aria-label="${options.caption}"
    >
      <line class="axis" x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}"></line>
      <line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${top + plotHeight}"></line>
      <text class="tick" x="${left}" y="${height - 8}">${options.min.toFixed(2)}</text>
      <text class="tick" x="${left + plotWidth}" y="${height - 8}" text-anchor="end">${options.max.toFixed(2)}</text>
      <text class="tick" x="${left - 4}" y="${top + 10}" text-anchor="end">${highest}</text>
      <text class="tick" x="${left - 4}" y="${top + plotHeight}" text-anchor="end">0</text>
      ${bars}
    </svg>
    <figcaption>${options.caption} ${legend}</figcaption>
  </figure>`;
}
