import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { escapeXml, linePlot, niceTicks, renderReportHtml, tableHeader, tableRow, writeReport, type RoundMeasures, type RunReport } from '../../src/report';

function measures(round: number, overrides: Partial<RoundMeasures> = {}): RoundMeasures {
  return {
    round,
    prompts: round === 0 ? 0 : 32,
    pairs: round === 0 ? 0 : 28 + round,
    pairsTrained: round === 0 ? 0 : 28,
    teacherCalls: round === 0 ? 0 : 32 - 8 * round,
    teacherCallsPerPrompt: round === 0 ? 0 : 1 - round / 4,
    gateRate: round / 4,
    audited: round === 0 ? 0 : 4,
    auditedPrecision: round === 0 ? null : 0.75 + round / 20,
    studentAgreement: 0.5 + round / 10,
    agreementComparisons: 40,
    lengthGap: round === 0 ? null : 2.5 - round,
    winRate: 0.5 + round / 10,
    winRateLow: 0.4 + round / 10,
    winRateHigh: 0.6 + round / 10,
    wins: 10,
    losses: 5,
    ties: 3,
    evalScore: 0.4,
    seconds: 10 + round,
    ...overrides,
  };
}

function report(rounds: RoundMeasures[]): RunReport {
  return {
    version: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    transport: 'embedded /tmp/x',
    backend: 'wasm',
    teacher: 'verifier',
    configHash: 'ab'.repeat(32),
    config: { run: { rounds: rounds.length - 1 }, note: '<script>alert(1)</script>' },
    rounds,
    notes: ['final win rate 80% >= 65%'],
  };
}

describe('report', () => {
  test('escapeXml escapes markup', () => {
    assert.equal(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  test('niceTicks covers range', () => {
    assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceTicks(3, 3), [3]);
    const ticks = niceTicks(-7, 130);
    assert.ok(ticks[0]! >= -7 && ticks[ticks.length - 1]! <= 130);
    assert.ok(ticks.length >= 3);
  });

  test('linePlot draws one point per round', () => {
    const svg = linePlot({
      title: 'Win <rate>',
      xLabel: 'round',
      yLabel: 'share',
      series: [{ name: 'a&b', color: '#123456', points: [0, 1, 2, 3].map((x) => ({ x, y: x / 4 })), band: [0, 1, 2, 3].map((x) => ({ x, low: 0, high: 1 })) }],
    });
    assert.equal(svg.match(/<circle class="point"/g)?.length, 4);
    assert.equal(svg.match(/<polygon class="band"/g)?.length, 1);
    assert.ok(svg.includes('Win &lt;rate&gt;'));
    assert.ok(svg.includes('a&amp;b'));
    assert.ok(!svg.includes('Win <rate>'));
  });

  test('linePlot leaves gaps for null', () => {
    const svg = linePlot({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [{ name: 's', color: '#000', points: [{ x: 1, y: 1 }, { x: 2, y: null }, { x: 3, y: 2 }] }],
    });
    assert.equal(svg.match(/<circle class="point"/g)?.length, 2);
    const path = /<path d="([^"]*)"/.exec(svg)?.[1] ?? '';
    assert.equal(path.match(/M/g)?.length, 2);
    assert.equal(path.match(/L/g), null);
  });

  test('html report is self-contained', () => {
    const html = renderReportHtml(report([measures(0), measures(1), measures(2), measures(3)]));
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    assert.equal(html.match(/<svg /g)?.length, 6);
    assert.ok(!/<script/i.test(html), 'no script element');
    assert.ok(!/(src|href)=["']https?:/i.test(html), 'no external resources');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.equal(html.match(/<tr><td>/g)?.length, 4);
  });

  test('win rate plot has point per round', () => {
    const html = renderReportHtml(report([measures(0), measures(1), measures(2)]));
    const winPlot = html.slice(html.indexOf('<svg '), html.indexOf('</svg>'));
    assert.match(winPlot, /Win rate vs base/);
    assert.equal(winPlot.match(/<circle class="point"/g)?.length, 3);
    assert.equal(winPlot.match(/<polygon class="band"/g)?.length, 1);
  });

  test('writeReport writes both files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsalign-report-'));
    const paths = writeReport(dir, report([measures(0), measures(1)]));
    const json = JSON.parse(readFileSync(paths.json, 'utf8')) as RunReport;
    assert.equal(json.rounds.length, 2);
    assert.equal(json.rounds[1]!.pairs, 29);
    assert.equal(json.rounds[0]!.auditedPrecision, null);
    assert.ok(readFileSync(paths.html, 'utf8').includes('</html>'));
  });

  test('table row lines up with header', () => {
    const header = tableHeader();
    const row = tableRow(measures(2));
    assert.equal(row.length, header.length);
    assert.match(row, /70% \[60%, 80%\]/);
    assert.match(tableRow(measures(0)), /\s-\s/);
  });
});
