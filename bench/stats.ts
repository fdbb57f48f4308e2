export function summary(values: number[]): { n: number; median: number; max: number; min: number; p90: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))] ?? NaN;
  const median = s.length % 2 ? s[(s.length - 1) / 2]! : ((s[s.length / 2 - 1] ?? 0) + (s[s.length / 2] ?? 0)) / 2;
  return { n: s.length, median, max: s[s.length - 1] ?? NaN, min: s[0] ?? NaN, p90: at(0.9) };
}
