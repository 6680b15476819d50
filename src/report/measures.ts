/**
 * The per-round measures of a run, as printed in the table, written to report.json and plotted
 * in report.html.
 */

/** Measures of one round. Round 0 is the base policy before any training. */
export interface RoundMeasures {
  round: number;
  /** Prompts the chain processed in the round. */
  prompts: number;
  /** Preference pairs the chain emitted in the round. */
  pairs: number;
  /** Pairs the trainer trained on (stale or repeated pairs excluded). */
  pairsTrained: number;
  /** Teacher calls made in the round (cache hits excluded). */
  teacherCalls: number;
  teacherCallsPerPrompt: number;
  /** Share of prompts the student decided alone, without the teacher (decision STUDENT). */
  gateRate: number;
  /** Confident student decisions audited by the teacher. */
  audited: number;
  /** Share of audited decisions where the teacher ordered the student's pair the same way; null without audits. */
  auditedPrecision: number | null;
  /** Share of held-out teacher-ordered comparisons the student orders the same way (ties half), averaged over prompts. */
  studentAgreement: number;
  /** Held-out comparisons behind `studentAgreement`. */
  agreementComparisons: number;
  /** Mean characters of chosen minus rejected over the round's pairs; null without pairs. */
  lengthGap: number | null;
  /** Win rate of the round's policy against the base policy, ties counting half. */
  winRate: number;
  /** 95% Wilson interval of the win rate. */
  winRateLow: number;
  winRateHigh: number;
  wins: number;
  losses: number;
  ties: number;
  /** Mean teacher (verifier) score of the round's policy on the held-out prompts; round 0 is the base policy's. */
  evalScore: number;
  /** Wall time of the round (chain, training and evaluation), seconds. */
  seconds: number;
}

/** Everything report.json holds. */
export interface RunReport {
  /** Format version of this document. */
  version: 1;
  createdAt: string;
  transport: string;
  backend: string;
  teacher: string;
  configHash: string;
  /** The full configuration. */
  config: unknown;
  rounds: RoundMeasures[];
  /** Measured figures compared with the job's targets. */
  notes: string[];
}

/** Column headers and cell formatting of the per-round table. */
const COLUMNS: Array<{ header: string; width: number; cell: (row: RoundMeasures) => string }> = [
  { header: 'round', width: 5, cell: (row) => String(row.round) },
  { header: 'pairs', width: 5, cell: (row) => String(row.pairs) },
  { header: 'teacher/prompt', width: 14, cell: (row) => row.teacherCallsPerPrompt.toFixed(2) },
  { header: 'gate', width: 5, cell: (row) => percent(row.gateRate) },
  { header: 'audit prec', width: 11, cell: (row) => (row.auditedPrecision === null ? '-' : `${percent(row.auditedPrecision)} (${row.audited})`) },
  { header: 'agreement', width: 9, cell: (row) => percent(row.studentAgreement) },
  { header: 'len gap', width: 7, cell: (row) => (row.lengthGap === null ? '-' : row.lengthGap.toFixed(1)) },
  { header: 'score', width: 5, cell: (row) => row.evalScore.toFixed(2) },
  { header: 'win rate [95% CI]', width: 17, cell: (row) => `${percent(row.winRate)} [${percent(row.winRateLow)}, ${percent(row.winRateHigh)}]` },
  { header: 'time', width: 6, cell: (row) => `${row.seconds.toFixed(0)}s` },
];

export function percent(value: number): string {
  return `${(value * 100).toFixed(0)}%`;
}

/** Returns the header line of the per-round table. */
export function tableHeader(): string {
  return COLUMNS.map((column) => column.header.padStart(column.width)).join('  ');
}

/** Returns one row of the per-round table. */
export function tableRow(row: RoundMeasures): string {
  return COLUMNS.map((column) => column.cell(row).padStart(column.width)).join('  ');
}
