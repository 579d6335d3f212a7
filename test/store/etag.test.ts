import { describe, expect, it } from 'vitest';
import { etagOf, ifMatchVersions, parseEtag } from '../../src/store/etag.js';

const id = 'pl_abcdefghijklmnop';
const other = 'pl_qrstuvwxyz234567';

describe('ETags of pipeline versions', () => {
  it('are strong, quoted and name the version', () => {
    expect(etagOf(id, 3)).toBe(`"${id}-v3"`);
    expect(parseEtag(etagOf(id, 3))).toEqual({ id, version: 3 });
    expect(parseEtag(`W/${etagOf(id, 12)}`)).toEqual({ id, version: 12 });
  });

  it('are not parsed from foreign tags', () => {
    for (const tag of ['', '*', `${id}-v3`, `"${id}-v0"`, `"${id}-vx"`, `"${id}"`, '"abc"', `"${id}-v01"`]) {
      expect(parseEtag(tag)).toBeUndefined();
    }
  });
});

describe('If-Match (RFC 9110 §13.1.1)', () => {
  it('is no condition when absent, empty or *', () => {
    expect(ifMatchVersions(undefined, id)).toBeUndefined();
    expect(ifMatchVersions('', id)).toBeUndefined();
    expect(ifMatchVersions(' * ', id)).toBeUndefined();
  });

  it('accepts one tag, a list, weak tags and repeated headers', () => {
    expect(ifMatchVersions(etagOf(id, 3), id)).toEqual([3]);
    expect(ifMatchVersions(`${etagOf(id, 1)}, W/${etagOf(id, 4)} ,${etagOf(id, 2)}`, id)).toEqual([1, 4, 2]);
    expect(ifMatchVersions([etagOf(id, 5), etagOf(id, 6)], id)).toEqual([5, 6]);
  });

  it('matches nothing for tags of other pipelines or malformed tags', () => {
    expect(ifMatchVersions(etagOf(other, 3), id)).toEqual([]);
    expect(ifMatchVersions('"nonsense"', id)).toEqual([]);
    expect(ifMatchVersions(`${id}-v3`, id)).toEqual([]); // unquoted
    expect(ifMatchVersions(`${etagOf(other, 1)}, ${etagOf(id, 7)}`, id)).toEqual([7]);
  });
});
