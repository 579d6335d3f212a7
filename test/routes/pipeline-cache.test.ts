import { expect, it } from 'vitest';
import { BodyCache } from '../../src/routes/pipelines/cache.js';

it('keeps at most its bound of bodies, dropping the oldest, and forgets a pipeline whole', () => {
  const cache = new BodyCache(3);
  cache.set('pl_a', 1, 'a1');
  cache.set('pl_a', 2, 'a2');
  cache.set('pl_b', 1, 'b1');
  cache.set('pl_c', 1, 'c1');
  expect(cache.size).toBe(3);
  expect(cache.get('pl_a', 1)).toBeUndefined();
  expect(cache.get('pl_a', 2)).toBe('a2');
  cache.forget('pl_a');
  expect(cache.get('pl_a', 2)).toBeUndefined();
  expect([cache.get('pl_b', 1), cache.get('pl_c', 1), cache.size]).toEqual(['b1', 'c1', 2]);
});
