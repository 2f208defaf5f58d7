/**
 * Page views from `@solidjs/router`. `<Router>` navigates with the History API, which the SDK's autotrack already
 * watches; the core's `pageView()` counts a URL once however many report it (autotrack, this hook), so using both
 * sends one `page_view` per navigation. The hook is what reports navigations when `autoTrack.pageViews` is false.
 * `<HashRouter>` and `<MemoryRouter>` navigations are not page views: the page URL (without its hash) is unchanged.
 */

import { createEffect, on, type JSX } from 'solid-js';
import { useIsRouting, useLocation } from '@solidjs/router';
import { useObserver } from './context';

/** Reports a page view on every route change (path or query). Call it in a component inside `<Router>`. */
export function useRouterPageViews(): void {
  const location = useLocation();
  const isRouting = useIsRouting();
  const observer = useObserver();
  // The router updates `location` when a navigation starts and the address bar (pushState) only when it ends
  // (lazy routes and data loads may take a while): the page view waits for the end, so its URL is the new one.
  createEffect(
    on([() => location.pathname + location.search, isRouting], ([, routing]) => {
      if (!routing) observer.pageView();
    }),
  );
}

/** `useRouterPageViews()` as a component that renders nothing: put `<ObserverPageViews />` in the router's root. */
export function ObserverPageViews(): JSX.Element {
  useRouterPageViews();
  return null;
}
