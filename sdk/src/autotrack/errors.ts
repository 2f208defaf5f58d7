/** Uncaught errors (`error` on window) and unhandled promise rejections. */

export interface UncaughtInfo {
  mechanism: 'onerror' | 'unhandledrejection';
  /** The thrown value (or rejection reason); absent for "Script error." from a cross-origin script. */
  error: unknown;
  /** The event's message, used when there is no error object. */
  message?: string;
  filename?: string;
  lineno?: number;
  colno?: number;
}

export function watchErrors(win: Window, onError: (info: UncaughtInfo) => void): () => void {
  const onErrorEvent = (event: Event) => {
    try {
      const e = event as ErrorEvent;
      // Resource load failures (<img>, <script>) do not bubble to window; anything without a message is not ours.
      if (typeof e.message !== 'string' && e.error === undefined) return;
      onError({
        mechanism: 'onerror',
        error: e.error != null ? e.error : undefined,
        message: e.message,
        filename: e.filename || undefined,
        lineno: e.lineno || undefined,
        colno: e.colno || undefined,
      });
    } catch {
      // never into the host page
    }
  };
  const onRejection = (event: Event) => {
    try {
      onError({ mechanism: 'unhandledrejection', error: (event as PromiseRejectionEvent).reason });
    } catch {
      // never into the host page
    }
  };
  win.addEventListener('error', onErrorEvent);
  win.addEventListener('unhandledrejection', onRejection);
  return () => {
    win.removeEventListener('error', onErrorEvent);
    win.removeEventListener('unhandledrejection', onRejection);
  };
}
