// A concurrency limit for async work, runtime-neutral: at most `size` tasks run at once and the
// rest start in the order they asked. The engine's drain runs the objects of a page under one
// (--object-concurrency); the ServiceNow change feed reads its tables under one.

export interface Limiter {
  /** Runs `task` once fewer than the limit's size run; tasks start in the order they asked. */
  run<T>(task: () => Promise<T>): Promise<T>;
}

export function createLimiter(size: number): Limiter {
  const capacity = Math.max(1, Math.trunc(size));
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    async run(task) {
      if (active >= capacity) await new Promise<void>((resolve) => waiting.push(resolve));
      else active++;
      try {
        return await task();
      } finally {
        // The slot passes straight to the next task waiting, if any.
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
  };
}
