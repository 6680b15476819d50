export * from './schema';
export * from './validate';
export * from './canonical';
export * from './load';
