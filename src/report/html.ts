/**
 * The self-contained HTML report of a run: the per-round table, inline SVG plots of every
 * measure and the configuration. It loads nothing from the network and runs no script.
 */
import { type RoundMeasures, type RunReport, percent } from './measures';
import { escapeXml, linePlot, type PlotSeries } from './svg';

const COLORS = { blue: '#2b6cb0', orange: '#dd6b20', green: '#2f855a', purple: '#6b46c1', gray: '#4a5568' };

function series(name: string, color: string, rows: RoundMeasures[], value: (row: RoundMeasures) => number | null): PlotSeries {
  return { name, color, points: rows.map((row) => ({ x: row.round, y: value(row) })) };
}

/** Returns the SVG plots of the report, one per group of measures. */
export function reportPlots(rows: RoundMeasures[]): string[] {
  const trained = rows.filter((row) => row.round > 0);
  return [
    linePlot({
      title: 'Win rate vs base policy (ties half), 95% interval',
      xLabel: 'round',
      yLabel: 'win rate',
      yDomain: [0, 1],
      referenceY: 0.5,
      formatY: percent,
      series: [
        {
          ...series('win rate', COLORS.blue, rows, (row) => row.winRate),
          band: rows.map((row) => ({ x: row.round, low: row.winRateLow, high: row.winRateHigh })),
        },
      ],
    }),
    linePlot({
      title: 'Teacher load',
      xLabel: 'round',
      yLabel: 'share / calls per prompt',
      formatY: (value) => value.toFixed(2),
      series: [
        series('teacher calls per prompt', COLORS.orange, trained, (row) => row.teacherCallsPerPrompt),
        series('gate rate (student decides)', COLORS.green, trained, (row) => row.gateRate),
      ],
    }),
    linePlot({
      title: 'Student quality',
      xLabel: 'round',
      yLabel: 'share',
      yDomain: [0, 1],
      formatY: percent,
      series: [
        series('agreement with teacher', COLORS.purple, rows, (row) => row.studentAgreement),
        series('audited precision', COLORS.green, trained, (row) => row.auditedPrecision),
      ],
    }),
    linePlot({
      title: 'Preference pairs',
      xLabel: 'round',
      yLabel: 'pairs',
      series: [series('pairs', COLORS.blue, trained, (row) => row.pairs), series('trained', COLORS.gray, trained, (row) => row.pairsTrained)],
    }),
    linePlot({
      title: 'Mean length gap, chosen minus rejected',
      xLabel: 'round',
      yLabel: 'characters',
      referenceY: 0,
      series: [series('length gap', COLORS.orange, trained, (row) => row.lengthGap)],
    }),
    linePlot({
      title: 'Wall time per round',
      xLabel: 'round',
      yLabel: 'seconds',
      series: [series('seconds', COLORS.gray, rows, (row) => row.seconds)],
    }),
  ];
}

function cell(value: string): string {
  return `<td>${escapeXml(value)}</td>`;
}

function tableHtml(rows: RoundMeasures[]): string {
  const header = ['round', 'prompts', 'pairs', 'trained', 'teacher calls / prompt', 'gate rate', 'audited precision', 'student agreement', 'length gap', 'mean score', 'win rate', '95% interval', 'seconds'];
  const body = rows.map((row) =>
    [
      '<tr>',
      cell(String(row.round)),
      cell(String(row.prompts)),
      cell(String(row.pairs)),
      cell(String(row.pairsTrained)),
      cell(row.teacherCallsPerPrompt.toFixed(2)),
      cell(percent(row.gateRate)),
      cell(row.auditedPrecision === null ? '-' : `${percent(row.auditedPrecision)} of ${row.audited}`),
      cell(`${percent(row.studentAgreement)} of ${row.agreementComparisons}`),
      cell(row.lengthGap === null ? '-' : row.lengthGap.toFixed(1)),
      cell(row.evalScore.toFixed(2)),
      cell(`${percent(row.winRate)} (${row.wins}-${row.losses}-${row.ties})`),
      cell(`${percent(row.winRateLow)} to ${percent(row.winRateHigh)}`),
      cell(row.seconds.toFixed(1)),
      '</tr>',
    ].join(''),
  );
  return `<table><thead><tr>${header.map((name) => `<th>${escapeXml(name)}</th>`).join('')}</tr></thead><tbody>${body.join('\n')}</tbody></table>`;
}

const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; margin-bottom: 4px; }
.meta { color: #555; font-size: 13px; margin-bottom: 16px; }
table { border-collapse: collapse; font-size: 13px; margin: 12px 0 20px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f5f5f5; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
.plots svg { border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
ul.notes { font-size: 13px; }
dl { font-size: 13px; }
`;

/** Renders the whole report as one HTML document. */
export function renderReportHtml(report: RunReport): string {
  const rows = report.rounds;
  const notes = report.notes.length > 0 ? `<h2>Notes</h2><ul class="notes">${report.notes.map((note) => `<li>${escapeXml(note)}</li>`).join('')}</ul>` : '';
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>tsalign run report ${escapeXml(report.configHash.slice(0, 12))}</title>`,
    `<style>${STYLE}</style></head><body>`,
    '<h1>tsalign run report</h1>',
    `<div class="meta">${escapeXml(report.createdAt)} &middot; transport ${escapeXml(report.transport)} &middot; backend ${escapeXml(report.backend)} &middot; teacher ${escapeXml(report.teacher)} &middot; config ${escapeXml(report.configHash.slice(0, 12))}</div>`,
    tableHtml(rows),
    `<div class="plots">${reportPlots(rows).join('\n')}</div>`,
    notes,
    '<h2>Measures</h2><dl>',
    '<dt>win rate</dt><dd>the round\'s policy against the base policy on held-out prompts, one response each, judged by the teacher; ties count half; the band is the 95% Wilson interval. Round 0 is the base against itself.</dd>',
    '<dt>gate rate</dt><dd>share of prompts the student decided without the teacher.</dd>',
    '<dt>audited precision</dt><dd>share of audited confident student decisions whose pair the teacher ordered the same way.</dd>',
    '<dt>student agreement</dt><dd>share of held-out teacher-ordered comparisons the student orders the same way, ties half, taken per prompt and averaged over the prompts so that each prompt counts equally.</dd>',
    '<dt>mean score</dt><dd>mean teacher (verifier) score of the round\'s policy on the held-out win-rate prompts; round 0 is the base policy, the starting point.</dd>',
    '<dt>length gap</dt><dd>mean characters of the chosen minus the rejected response over the round\'s pairs.</dd>',
    '</dl>',
    `<h2>Configuration</h2><pre>${escapeXml(JSON.stringify(report.config, null, 2))}</pre>`,
    '</body></html>',
    '',
  ].join('\n');
}
