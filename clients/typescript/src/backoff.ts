/**
 * Exponential backoff with full jitter: the delay before reconnect attempt `attempt` (0 for the
 * first) is uniform in [0, min(maxDelay, minDelay * 2^attempt)]. Full jitter spreads the
 * reconnects of many clients after a server restart instead of having them arrive in waves.
 */
export function backoffDelay(
  attempt: number,
  minDelay: number,
  maxDelay: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}
