/** Console output, only in debug mode; some messages only once per page. */

export interface Logger {
  debug(message: string, ...rest: unknown[]): void;
  warn(message: string, ...rest: unknown[]): void;
  /** Warns once per `key` for the life of the page. */
  warnOnce(key: string, message: string, ...rest: unknown[]): void;
}

export function createLogger(enabled: boolean, out: Pick<Console, 'debug' | 'warn'> | undefined = globalThis.console): Logger {
  const seen = new Set<string>();
  const write = (level: 'debug' | 'warn', message: string, rest: unknown[]) => {
    if (!enabled || !out) return;
    try {
      out[level]('[observer] ' + message, ...rest);
    } catch {
      // a broken console must not break the host page
    }
  };
  return {
    debug: (message, ...rest) => write('debug', message, rest),
    warn: (message, ...rest) => write('warn', message, rest),
    warnOnce(key, message, ...rest) {
      if (seen.has(key)) return;
      seen.add(key);
      write('warn', message, rest);
    },
  };
}
