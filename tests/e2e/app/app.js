// Small interactions for the recording: DOM mutations, History API
// navigation, an uncaught error and a failed fetch.
let rows = 3;
document.getElementById('add-row').addEventListener('click', () => {
  rows += 1;
  const tr = document.createElement('tr');
  tr.innerHTML = `<td>${rows}</td><td>Extra item ${rows}</td><td>${rows * 2}</td>`;
  tr.className = 'flash';
  document.querySelector('#orders tbody').appendChild(tr);
});
document.getElementById('next').addEventListener('click', () => {
  history.pushState({ step: 2 }, '', '/step-2');
  document.getElementById('title').textContent = 'Order desk — step 2';
});
document.getElementById('explode').addEventListener('click', () => {
  const order = undefined;
  // A real TypeError thrown from an event handler: window.onerror sees it.
  return order.id;
});
document.getElementById('load-stock').addEventListener('click', async () => {
  // The app's API answers 503 (served by browser_e2e.rs): the SDK reports an HttpError.
  const response = await fetch('/api/stock?sku=A-100');
  // A console line the replay's Console panel must show.
  if (!response.ok) console.warn('stock unavailable', response.status);
  document.getElementById('title').dataset.stock = String(response.status);
});
