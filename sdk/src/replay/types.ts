/** The small part of rrweb's `record` API the SDK uses (declared here so the core build needs no rrweb). */

export interface RrwebEvent {
  type: number;
  timestamp: number;
  data?: unknown;
}

export interface RecordOptions {
  emit: (event: RrwebEvent, isCheckout?: boolean) => void;
  maskAllInputs?: boolean;
  blockSelector?: string;
  maskTextSelector?: string;
  checkoutEveryNms?: number;
  /** rrweb record plugins (the console record plugin). */
  plugins?: unknown[];
}

export interface RecordFn {
  (options: RecordOptions): (() => void) | undefined;
  addCustomEvent?: (tag: string, payload: unknown) => void;
  takeFullSnapshot?: (isCheckout?: boolean) => void;
}

/** rrweb's `EventType` values the SDK looks at. */
export const EVENT_FULL_SNAPSHOT = 2;
export const EVENT_META = 4;
export const EVENT_CUSTOM = 5;
