/**
 * Core Web Vitals of each page view with Google's `web-vitals` (LCP, INP, CLS, FCP, TTFB), each handed to
 * `onVital` once, when the library reports it final (LCP after the first input or when the page is hidden, CLS
 * and INP when the page is hidden, FCP and TTFB as soon as known). A page restored from the back/forward cache
 * is a new page view: web-vitals reports new metrics for it (`navigation_type` `back-forward-cache`).
 */

/** The slice of a `web-vitals` metric the SDK reads. */
export interface VitalMetric {
  name: string;
  value: number;
  rating: string;
  id: string;
  navigationType?: string;
}

type OnMetric = (callback: (metric: VitalMetric) => void) => void;

/** The five `on*` functions of `web-vitals`. */
export interface WebVitalsApi {
  onLCP: OnMetric;
  onINP: OnMetric;
  onCLS: OnMetric;
  onFCP: OnMetric;
  onTTFB: OnMetric;
}

/** What goes into a `web_vital` event (docs/api.md). */
export interface WebVital {
  name: 'LCP' | 'INP' | 'CLS' | 'FCP' | 'TTFB';
  value: number;
  rating: 'good' | 'needs-improvement' | 'poor';
  navigation_type?: string;
}

/** The server's bounds (server/src/payload/web_vital.rs): a value beyond them would get the whole batch refused. */
const MAX_VALUE: Record<WebVital['name'], number> = { LCP: 600_000, INP: 600_000, FCP: 600_000, TTFB: 600_000, CLS: 100 };
const RATINGS = ['good', 'needs-improvement', 'poor'];

/** A metric as the event's fields, or undefined when the server would refuse it. */
export function toWebVital(metric: VitalMetric): WebVital | undefined {
  const name = metric.name as WebVital['name'];
  const max = MAX_VALUE[name];
  const value = metric.value;
  if (max === undefined || typeof value !== 'number' || !isFinite(value) || value < 0 || value > max) return undefined;
  if (!RATINGS.includes(metric.rating)) return undefined;
  // ms to 0.1 ms, the CLS score to 4 decimals: more digits are noise.
  const rounded = name === 'CLS' ? Math.round(value * 10_000) / 10_000 : Math.round(value * 10) / 10;
  const vital: WebVital = { name, value: rounded, rating: metric.rating as WebVital['rating'] };
  if (typeof metric.navigationType === 'string' && metric.navigationType !== '') vital.navigation_type = metric.navigationType.slice(0, 32);
  return vital;
}

/** Subscribes to the five metrics; each metric instance (`id`) is passed on once. Never rejects. */
export async function watchVitals(load: () => Promise<WebVitalsApi | undefined>, onVital: (vital: WebVital) => void): Promise<boolean> {
  let api: WebVitalsApi | undefined;
  try {
    api = await load();
  } catch {
    api = undefined;
  }
  if (!api) return false;
  const seen = new Set<string>();
  const report = (metric: VitalMetric) => {
    try {
      if (seen.has(metric.id)) return;
      seen.add(metric.id);
      const vital = toWebVital(metric);
      if (vital) onVital(vital);
    } catch {
      // never into the host page
    }
  };
  for (const on of [api.onTTFB, api.onFCP, api.onLCP, api.onCLS, api.onINP]) {
    try {
      on(report);
    } catch {
      // one metric the browser cannot measure does not stop the others
    }
  }
  return true;
}
