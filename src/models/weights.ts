import * as tf from '@tensorflow/tfjs';
import { Random, deriveSeed } from './random';

/** Initial value of a weight: normal(0, std), all zeros or all ones. */
export type WeightInit = { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' };

/** One named weight of a model. Names follow GPT-2's checkpoint names (`h.0.attn.c_attn.weight`). */
export interface WeightSpec {
  name: string;
  shape: number[];
  init: WeightInit;
}

let nextWeightSetId = 0;

/**
 * A model's weights as `tf.Variable`s, in a fixed order, under their logical names. tfjs needs
 * variable names to be unique in the process, so each set prefixes its variables' names with an id
 * of its own (`policy-3/h.0.ln_1.weight`); checkpoints store the logical names.
 */
export class WeightSet {
  readonly names: readonly string[];
  readonly variables: tf.Variable[];
  private readonly byName: Map<string, tf.Variable>;

  private constructor(names: string[], variables: tf.Variable[]) {
    this.names = names;
    this.variables = variables;
    this.byName = new Map(names.map((name, i) => [name, variables[i]!]));
  }

  /** Creates the variables of `specs`; each weight draws from its own stream of `seed`. */
  static initialize(specs: readonly WeightSpec[], seed: number, label: string): WeightSet {
    const arrays = specs.map((spec) => initialValues(spec, seed));
    return WeightSet.fromArrays(specs, arrays, label);
  }

  /** Creates variables holding the given values, one array per spec, in spec order. */
  static fromArrays(specs: readonly WeightSpec[], arrays: readonly Float32Array[], label: string): WeightSet {
    const prefix = `${label}-${nextWeightSetId++}`;
    const variables = specs.map((spec, i) => {
      const values = arrays[i]!;
      const size = spec.shape.reduce((a, b) => a * b, 1);
      if (values.length !== size) {
        throw new Error(
          `Weight ${spec.name} has ${values.length} values but shape [${spec.shape.join(', ')}] needs ${size}.`,
        );
      }
      const initial = tf.tensor(values, spec.shape, 'float32');
      const variable = tf.variable(initial, true, `${prefix}/${spec.name}`);
      initial.dispose();
      return variable;
    });
    return new WeightSet(specs.map((spec) => spec.name), variables);
  }

  get(name: string): tf.Variable {
    const variable = this.byName.get(name);
    if (variable === undefined) throw new Error(`Model has no weight named ${name}.`);
    return variable;
  }

  /** Returns a deep copy: new variables with copies of the current values. */
  clone(label: string): WeightSet {
    const prefix = `${label}-${nextWeightSetId++}`;
    const variables = this.variables.map((variable, i) => {
      const copy = variable.clone();
      const cloned = tf.variable(copy, true, `${prefix}/${this.names[i]}`);
      copy.dispose();
      return cloned;
    });
    return new WeightSet([...this.names], variables);
  }

  dispose(): void {
    for (const variable of this.variables) variable.dispose();
  }
}

function initialValues(spec: WeightSpec, seed: number): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  if (spec.init.kind === 'ones') values.fill(1);
  if (spec.init.kind === 'normal') {
    const random = new Random(deriveSeed(seed, spec.name));
    for (let i = 0; i < size; i++) values[i] = random.nextNormal() * spec.init.std;
  }
  return values;
}
