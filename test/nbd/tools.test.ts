// requireTool: present tools pass; a missing tool skips locally and fails in CI.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { findTool, requireTool } from '../helpers/tools.js';

afterEach(() => vi.unstubAllEnvs());

describe('requireTool', () => {
  it('finds a tool on PATH', () => {
    expect(findTool('sh')).toMatch(/\/sh$/);
    expect(requireTool('sh')).toBe(true);
  });

  it('returns false for a missing tool outside CI, and throws with the package name in CI', () => {
    vi.stubEnv('CI', '');
    expect(requireTool('rewind-no-such-tool')).toBe(false);
    vi.stubEnv('CI', 'true');
    expect(() => requireTool('rewind-no-such-tool')).toThrow(/"rewind-no-such-tool" is not on PATH/);
    expect(() => requireTool('nbdkit-missing-for-sure')).toThrow(/CI must provide it/);
  });
});
