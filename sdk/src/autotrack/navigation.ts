/** Notices History API navigation: patches `pushState` / `replaceState` and listens to `popstate`. */

type HistoryMethod = (data: unknown, unused: string, url?: string | URL | null) => void;

/**
 * Calls `onNavigate` after every `pushState`, `replaceState` and `popstate`. The patched methods behave exactly as
 * before — same arguments, return value and exceptions; `onNavigate` is called only after the original returned
 * and its own exceptions are swallowed. Returns a function that undoes the patch where it is still ours.
 */
export function watchNavigation(win: Window, onNavigate: () => void): () => void {
  const history = win.history;
  const notify = () => {
    try {
      onNavigate();
    } catch {
      // never into the host page
    }
  };
  const patch = (name: 'pushState' | 'replaceState'): (() => void) => {
    const original = history[name] as HistoryMethod;
    if (typeof original !== 'function') return () => undefined;
    const patched: HistoryMethod = function (this: History, ...args) {
      const result = original.apply(this, args);
      notify();
      return result;
    };
    history[name] = patched as History['pushState'];
    return () => {
      if (history[name] === (patched as unknown)) history[name] = original as History['pushState'];
    };
  };
  const unpatchPush = patch('pushState');
  const unpatchReplace = patch('replaceState');
  win.addEventListener('popstate', notify);
  return () => {
    unpatchPush();
    unpatchReplace();
    win.removeEventListener('popstate', notify);
  };
}
