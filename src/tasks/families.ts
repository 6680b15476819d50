import type { Random } from './random';

/**
 * The task families of the built-in suite. Every prompt is `<family> <input>=` and every answer
 * is 1 to 6 bytes, so a tiny byte-level policy trained for minutes on a CPU can learn the format
 * and get some answers right.
 *
 * | family | prompt            | answer  | grading of a wrong answer                          |
 * |--------|-------------------|---------|----------------------------------------------------|
 * | add    | `add 13+5=`       | `18`    | numeric: 0.5 / (1 + abs(response - answer))          |
 * | count  | `count a abcab=`  | `2`     | numeric, as for add                                |
 * | rev    | `rev cat=`        | `tac`   | per character: 0.8 * positions equal / longer length |
 * | sort   | `sort 4132=`      | `1234`  | per character, as for rev                          |
 * | upper  | `upper dog=`      | `DOG`   | per character, as for rev (case matters)           |
 *
 * An exact match scores 1. A numeric family gives 0 to a response that is not an integer.
 * The per-character credit stays below 0.8, so any exact answer beats any near miss.
 */

/** Difficulty parameters of the suite. Each family reads the ones it needs. */
export interface TaskDifficulty {
  /** Maximum operand of `add`: operands are drawn from [0, maxOperand]. */
  maxOperand: number;
  /** Minimum and maximum word length of `rev`, `upper` and `count`. */
  minWordLength: number;
  maxWordLength: number;
  /** Minimum and maximum digit count of `sort`. */
  minDigits: number;
  maxDigits: number;
}

export const DEFAULT_DIFFICULTY: Readonly<TaskDifficulty> = {
  maxOperand: 20,
  minWordLength: 3,
  maxWordLength: 5,
  minDigits: 3,
  maxDigits: 5,
};

/** Limits that keep prompts within about 24 bytes and answers within 6 bytes. */
export const DIFFICULTY_LIMITS: Readonly<Record<keyof TaskDifficulty, readonly [number, number]>> = {
  maxOperand: [1, 99_999],
  minWordLength: [1, 6],
  maxWordLength: [1, 6],
  minDigits: [2, 6],
  maxDigits: [2, 6],
};

/** One problem instance: the prompt text and its reference answer. */
export interface TaskInstance {
  text: string;
  answer: string;
}

export interface TaskFamily {
  readonly name: string;
  /** Draws one instance. */
  generate(random: Random, difficulty: TaskDifficulty): TaskInstance;
  /** Grades a normalized response against the answer: 1 for an exact match, else partial credit in [0, 1). */
  grade(response: string, answer: string): number;
  /** Returns a plausibly wrong answer, never equal to `answer`. */
  corrupt(answer: string, random: Random): string;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
/** `count` draws its words from a few letters so that the counted letter often occurs. */
const COUNT_LETTERS = 'abcde';
const INTEGER = /^-?\d+$/;

function randomWord(random: Random, alphabet: string, minLength: number, maxLength: number): string {
  const length = random.int(minLength, maxLength);
  let word = '';
  for (let i = 0; i < length; i++) word += random.pick([...alphabet]);
  return word;
}

/** Grades 1 for an exact match, 0.5 / (1 + distance) for another integer, and 0 otherwise. */
function gradeNumeric(response: string, answer: string): number {
  if (response === answer) return 1;
  if (!INTEGER.test(response)) return 0;
  return 0.5 / (1 + Math.abs(Number(response) - Number(answer)));
}

/** Grades 1 for an exact match, else 0.8 times the count of equal positions over the longer length. */
function gradeCharacters(response: string, answer: string): number {
  if (response === answer) return 1;
  const longer = Math.max(response.length, answer.length);
  if (longer === 0) return 0;
  let equal = 0;
  for (let i = 0; i < Math.min(response.length, answer.length); i++) {
    if (response[i] === answer[i]) equal++;
  }
  return (0.8 * equal) / longer;
}

/** Moves a number by a small plausible slip (1, 2 or 10), staying non-negative. */
function corruptNumber(answer: string, random: Random, steps: readonly number[]): string {
  const value = Number(answer);
  const step = random.pick(steps);
  const down = value - step;
  const wrong = random.next() < 0.5 && down >= 0 ? down : value + step;
  return String(wrong);
}

/** Returns the next character of the same kind: the next letter (same case) or the next digit. */
function neighbour(char: string): string {
  if (/\d/.test(char)) return String((Number(char) + 1) % 10);
  const upper = char === char.toUpperCase();
  const index = LETTERS.indexOf(char.toLowerCase());
  const next = LETTERS[(index + 1) % LETTERS.length]!;
  return upper ? next.toUpperCase() : next;
}

/**
 * Swaps two adjacent characters that differ. When every character is the same, it replaces one
 * with its neighbour instead, so the result always differs from the input.
 */
function corruptCharacters(answer: string, random: Random): string {
  const swappable: number[] = [];
  for (let i = 0; i + 1 < answer.length; i++) {
    if (answer[i] !== answer[i + 1]) swappable.push(i);
  }
  if (swappable.length > 0) {
    const i = random.pick(swappable);
    return answer.slice(0, i) + answer[i + 1] + answer[i] + answer.slice(i + 2);
  }
  const i = random.int(0, answer.length - 1);
  return answer.slice(0, i) + neighbour(answer[i]!) + answer.slice(i + 1);
}

const add: TaskFamily = {
  name: 'add',
  generate(random, difficulty) {
    const a = random.int(0, difficulty.maxOperand);
    const b = random.int(0, difficulty.maxOperand);
    return { text: `add ${a}+${b}=`, answer: String(a + b) };
  },
  grade: gradeNumeric,
  corrupt: (answer, random) => corruptNumber(answer, random, [1, 1, 2, 10]),
};

const count: TaskFamily = {
  name: 'count',
  generate(random, difficulty) {
    const word = randomWord(random, COUNT_LETTERS, difficulty.minWordLength, difficulty.maxWordLength);
    // Mostly a letter of the word, so that a count of 0 stays the exception.
    const letter = random.pick([...(random.next() < 0.75 ? word : COUNT_LETTERS)]);
    const occurrences = [...word].filter((char) => char === letter).length;
    return { text: `count ${letter} ${word}=`, answer: String(occurrences) };
  },
  grade: gradeNumeric,
  corrupt: (answer, random) => corruptNumber(answer, random, [1]),
};

const rev: TaskFamily = {
  name: 'rev',
  generate(random, difficulty) {
    const word = randomWord(random, LETTERS, difficulty.minWordLength, difficulty.maxWordLength);
    return { text: `rev ${word}=`, answer: [...word].reverse().join('') };
  },
  grade: gradeCharacters,
  corrupt: corruptCharacters,
};

const sort: TaskFamily = {
  name: 'sort',
  generate(random, difficulty) {
    const length = random.int(difficulty.minDigits, difficulty.maxDigits);
    const digits = Array.from({ length }, () => random.int(0, 9));
    return { text: `sort ${digits.join('')}=`, answer: [...digits].sort((x, y) => x - y).join('') };
  },
  grade: gradeCharacters,
  corrupt: corruptCharacters,
};

const upper: TaskFamily = {
  name: 'upper',
  generate(random, difficulty) {
    const word = randomWord(random, LETTERS, difficulty.minWordLength, difficulty.maxWordLength);
    return { text: `upper ${word}=`, answer: word.toUpperCase() };
  },
  grade: gradeCharacters,
  corrupt(answer, random) {
    // The typical slip of upper-casing is a letter left in lower case.
    if (random.next() < 0.5) {
      const i = random.int(0, answer.length - 1);
      return answer.slice(0, i) + answer[i]!.toLowerCase() + answer.slice(i + 1);
    }
    return corruptCharacters(answer, random);
  },
};

/** The families by name, in the order prompts cycle through them. */
export const TASK_FAMILIES: ReadonlyMap<string, TaskFamily> = new Map(
  [add, rev, sort, count, upper].map((family) => [family.name, family]),
);

export const TASK_FAMILY_NAMES: readonly string[] = [...TASK_FAMILIES.keys()];
