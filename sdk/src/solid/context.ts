/** The SDK as a Solid context: `<ObserverProvider>` starts it, `useObserver()` gives components its functions. */

import { createComponent, createContext, useContext, type JSX } from 'solid-js';
import { captureException, flush, identify, init, pageView, track, type ObserverOptions } from '../index';

/** What `useObserver()` returns: the SDK's functions (safe to call at any time, never throwing). */
export interface ObserverApi {
  track: typeof track;
  identify: typeof identify;
  captureException: typeof captureException;
  pageView: typeof pageView;
  flush: typeof flush;
}

const sdk: ObserverApi = { track, identify, captureException, pageView, flush };

/**
 * The context behind `useObserver()`. Its default is the SDK itself, so the hook works outside a provider too;
 * tests can provide a fake through `<ObserverContext.Provider value={…}>`.
 */
export const ObserverContext = createContext<ObserverApi>(sdk);

export interface ObserverProviderProps {
  /** `init()` options; leave out when the SDK is started elsewhere (a script tag, an earlier `init`). */
  options?: ObserverOptions;
  children?: JSX.Element;
}

/** Starts the SDK with `options` (only the first `init` counts) and provides it to `useObserver()`. */
export function ObserverProvider(props: ObserverProviderProps): JSX.Element {
  const options = props.options;
  if (options) init(options);
  return createComponent(ObserverContext.Provider, {
    value: sdk,
    get children() {
      return props.children;
    },
  });
}

/** The SDK's functions: `const observer = useObserver(); observer.track('signup', { plan })`. */
export function useObserver(): ObserverApi {
  return useContext(ObserverContext);
}
