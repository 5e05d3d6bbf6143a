// The capacity bound: a size or a share of the file system, refused when it cannot hold history.
import { describe, expect, it } from 'vitest';
import { capacityBytes, CAPACITY_BYTES_MIN, formatCapacity, parseCapacity } from '../../src/lifecycle/capacity.js';

describe('capacity', () => {
  it('reads a size or a share of the file system', () => {
    expect(parseCapacity('64G')).toEqual({ bytes: 64 * 2 ** 30 });
    expect(parseCapacity('80%')).toEqual({ percent: 80 });
    expect(parseCapacity('none')).toBeNull();
    expect(capacityBytes({ percent: 50 }, 1000 * 2 ** 20)).toBe(500 * 2 ** 20);
    expect(capacityBytes({ bytes: 2 ** 30 }, 1)).toBe(2 ** 30);
    expect(capacityBytes(null, 1)).toBeNull();
    expect(formatCapacity(parseCapacity('12.5%'))).toBe('12.5%');
    expect(parseCapacity(formatCapacity(parseCapacity('1G')))).toEqual({ bytes: 2 ** 30 });
  });

  it.each([
    ['0%', /above 0%/],
    ['101%', /at most 100%/],
    ['1M', /below the minimum/],
    ['lots', /not a size/],
  ])('refuses %s', (text, message) => {
    expect(() => parseCapacity(text)).toThrow(message);
  });

  it('accepts the minimum itself', () => {
    expect(parseCapacity(String(CAPACITY_BYTES_MIN))).toEqual({ bytes: CAPACITY_BYTES_MIN });
  });
});
