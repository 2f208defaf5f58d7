/**
 * Errors that Solid's `<ErrorBoundary>` catches (render, effects, resources) are handled inside Solid and never
 * reach `window.onerror`, so the SDK's autotrack cannot see them. These report them, as errors and as a marker in
 * the session's replay, then render the app's fallback.
 */

import { createComponent, ErrorBoundary, untrack, type JSX } from 'solid-js';
import { captureException } from '../index';

/** Context sent with a boundary's error (merged into the error's `context`). */
export type BoundaryContext = Record<string, unknown>;

/** Errors already reported: a fallback may render again for the same error (its owner re-runs). */
const reported = new WeakSet<object>();

/**
 * Reports an error a Solid `<ErrorBoundary>` caught; call it from your own boundary's fallback. The same error
 * object is reported once, however often the fallback renders.
 */
export function reportBoundaryError(error: unknown, context?: BoundaryContext): void {
  try {
    if (error !== null && typeof error === 'object') {
      if (reported.has(error)) return;
      reported.add(error);
    }
    captureException(error, { mechanism: 'solid.error_boundary', ...context });
  } catch {
    // never into the app
  }
}

export interface ObserverErrorBoundaryProps {
  /** What to render instead of the children once they threw: an element, or `(error, reset) => element`. */
  fallback: JSX.Element | ((error: unknown, reset: () => void) => JSX.Element);
  /** Names the boundary in the error's `context.boundary` (Solid keeps no component names in production builds). */
  name?: string;
  /** More context sent with the error. */
  context?: BoundaryContext;
  children?: JSX.Element;
}

/** Solid's `<ErrorBoundary>` that reports what it catches to Observer before rendering `fallback`. */
export function ObserverErrorBoundary(props: ObserverErrorBoundaryProps): JSX.Element {
  return createComponent(ErrorBoundary, {
    // Two declared parameters: Solid calls a fallback function with (error, reset) only when it declares them.
    fallback: (error: unknown, reset: () => void) => {
      const context: BoundaryContext = { ...props.context };
      if (props.name) context.boundary = props.name;
      reportBoundaryError(error, context);
      const fallback = props.fallback;
      return typeof fallback === 'function' ? untrack(() => fallback(error, reset)) : fallback;
    },
    get children() {
      return props.children;
    },
  });
}
