import { createSignal, Show } from 'solid-js';
import { ObserverErrorBoundary, useObserver } from '@observer/browser/solid';

/** Renders fine until it is told to explode: then it throws during render. */
function PriceTag(props) {
  if (props.explode) throw new TypeError('PriceTag exploded while rendering the price');
  return <p id="price">Widget Alpha: 12.50 EUR</p>;
}

export function Home() {
  const observer = useObserver();
  const [explode, setExplode] = createSignal(false);
  return (
    <section id="home-page">
      <h1>Solid shop</h1>
      <button id="signup" onClick={() => { observer.identify('solid-user-7'); observer.track('signup_clicked', { plan: 'pro' }); }}>
        Sign up
      </button>
      <ObserverErrorBoundary
        name="price-panel"
        fallback={(error, reset) => (
          <div id="fallback" class="fallback">
            <p id="fallback-message">Something went wrong: {error.message}</p>
            <button id="retry" onClick={() => { setExplode(false); reset(); }}>Try again</button>
          </div>
        )}
      >
        <Show when={explode()} fallback={<PriceTag explode={false} />}>
          <PriceTag explode={true} />
        </Show>
      </ObserverErrorBoundary>
      <button id="boom" onClick={() => setExplode(true)}>Show the price again</button>
    </section>
  );
}
