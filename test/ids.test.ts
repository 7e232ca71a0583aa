import { describe, expect, it } from 'vitest';
import { newId } from '../src/ids.js';

describe('newId', () => {
  it('gives distinct ids of 24 base-62 characters after the prefix, across refills of its random pool', () => {
    const ids = Array.from({ length: 10_000 }, () => newId('test'));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^test_[0-9A-Za-z]{24}$/);
  });
});
