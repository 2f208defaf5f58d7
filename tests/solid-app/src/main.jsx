import { render } from 'solid-js/web';
import { A, Route, Router } from '@solidjs/router';
import { flush } from '@observer/browser';
import { ObserverPageViews, ObserverProvider } from '@observer/browser/solid';
import { Home } from './Home';
import { Orders } from './Orders';

// `?autotrack=off` turns the SDK's History API page views off: then only the router hook reports them.
const autoPageViews = new URLSearchParams(location.search).get('autotrack') !== 'off';

const options = {
  endpoint: window.OBSERVER_ENDPOINT,
  serviceName: 'solid-shop',
  release: 'solid-1.0.0',
  environment: 'test',
  debug: true,
  replay: { enabled: true, sampleRate: 1 },
  autoTrack: { pageViews: autoPageViews },
};

// The browser test sends what is queued before it checks Observer (the core package and the Solid entry share
// one SDK: this is the same client the provider started).
window.__observerFlush = flush;

function Layout(props) {
  return (
    <>
      <ObserverPageViews />
      <nav>
        <A id="nav-home" href="/" end>Home</A>
        <A id="nav-orders" href="/orders">Orders</A>
      </nav>
      <main>{props.children}</main>
    </>
  );
}

render(
  () => (
    <ObserverProvider options={options}>
      <Router root={Layout}>
        <Route path="/" component={Home} />
        <Route path="/orders" component={Orders} />
      </Router>
    </ObserverProvider>
  ),
  document.getElementById('root'),
);
