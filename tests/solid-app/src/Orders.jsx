import { createSignal, ErrorBoundary, For, Show } from 'solid-js';
import { reportBoundaryError } from '@observer/browser/solid';

const ORDERS = [
  { id: 'A-1001', item: 'Widget Alpha', total: '12.50 EUR' },
  { id: 'A-1002', item: 'Gadget Beta', total: '40.00 EUR' },
];

/** Throws during render once its orders are "reloaded" (a bad API answer, say). */
function OrderTotal(props) {
  if (props.broken) throw new RangeError('Order total is negative');
  return <p id="order-total">2 orders, 52.50 EUR</p>;
}

export function Orders() {
  const [broken, setBroken] = createSignal(false);
  return (
    <section id="orders-page">
      <h1>Orders</h1>
      <table id="orders">
        <tbody>
          <For each={ORDERS}>{(order) => <tr><td>{order.id}</td><td>{order.item}</td><td>{order.total}</td></tr>}</For>
        </tbody>
      </table>
      {/* Solid's own boundary, reporting from its fallback. */}
      <ErrorBoundary
        fallback={(error) => {
          reportBoundaryError(error, { boundary: 'order-total' });
          return <p id="orders-fallback">Totals unavailable</p>;
        }}
      >
        <Show when={broken()} fallback={<OrderTotal broken={false} />}>
          <OrderTotal broken={true} />
        </Show>
      </ErrorBoundary>
      <button id="reload-orders" onClick={() => setBroken(true)}>Reload totals</button>
    </section>
  );
}
