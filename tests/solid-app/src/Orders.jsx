import { For } from 'solid-js';

const ORDERS = [
  { id: 'A-1001', item: 'Widget Alpha', total: '12.50 EUR' },
  { id: 'A-1002', item: 'Gadget Beta', total: '40.00 EUR' },
];

export function Orders() {
  return (
    <section id="orders-page">
      <h1>Orders</h1>
      <table id="orders">
        <tbody>
          <For each={ORDERS}>{(order) => <tr><td>{order.id}</td><td>{order.item}</td><td>{order.total}</td></tr>}</For>
        </tbody>
      </table>
    </section>
  );
}
