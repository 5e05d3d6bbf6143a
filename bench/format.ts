// Number formatting for the benchmark tables.

/** `n` with `digits` decimals, or 'n/a' when it is not a finite number (a run that could not measure it). */
export const fixed = (n: number | null, digits = 0): string => (n !== null && Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
