/**
 * `@observer/browser/solid`: the Observer SDK for SolidJS apps — an error boundary that reports what Solid's
 * `<ErrorBoundary>` catches, a context/hook for `track`/`identify`, and page views from `@solidjs/router`.
 * It uses the SDK from `@observer/browser` (one copy per page) and `solid-js` / `@solidjs/router` from the app.
 */

export { ObserverErrorBoundary, reportBoundaryError, type BoundaryContext, type ObserverErrorBoundaryProps } from './boundary';
export { ObserverContext, ObserverProvider, useObserver, type ObserverApi, type ObserverProviderProps } from './context';
export { ObserverPageViews, useRouterPageViews } from './router';
