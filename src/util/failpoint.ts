/**
 * Test-only fault injection: throws at the named point when REGENT_TEST_FAILPOINT names it, so the
 * end-to-end tests can make a real server fail a recovery half-way (there is no other way to stop
 * a promotion between two statements on purpose). Unset in production, this is one string compare.
 */
export function failpoint(name: string): void {
  if (process.env.REGENT_TEST_FAILPOINT === name) throw new Error(`failpoint ${name} (test-only REGENT_TEST_FAILPOINT)`);
}
