export * from './measures';
export * from './svg';
export * from './html';
export * from './write';
