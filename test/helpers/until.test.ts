// until(): resolves once its condition holds, and fails saying what it waited for.
import { describe, expect, it } from 'vitest';
import { until } from './until.js';

describe('until', () => {
  it('resolves once the condition holds, sync or async', async () => {
    let n = 0;
    await until(() => ++n >= 3);
    expect(n).toBe(3);
    let m = 0;
    await until(async () => ++m >= 2);
    expect(m).toBe(2);
  });

  it('throws after the deadline, naming the condition (or what) and the state', async () => {
    const server = { connections: () => 1 };
    await expect(until(() => server.connections() === 0, { waitMs: 20 })).rejects.toThrow(/timed out after 20 ms waiting until server\.connections\(\) === 0$/);
    await expect(until(() => false, { waitMs: 20, what: 'the pack write fails', state: () => 'injected=0' })).rejects.toThrow('waiting until the pack write fails (injected=0)');
  });
});
