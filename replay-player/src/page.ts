// Small DOM helpers shared by both pages. Everything from the server goes
// into the DOM as text (textContent), never as HTML.
import { signOut, signedIn } from './api';

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return node as T;
}

/** Shows one message box (kind: info, error) with optional action buttons. */
export function showMessage(text: string, kind: 'info' | 'error' = 'info', actions: [string, () => void][] = []): void {
  const box = byId('message');
  box.className = `message message--${kind}`;
  box.replaceChildren(el('p', {}, text));
  for (const [label, action] of actions) {
    const button = el('button', { type: 'button' }, label);
    button.addEventListener('click', action);
    box.append(button);
  }
  box.hidden = false;
}

export function hideMessage(): void {
  byId('message').hidden = true;
}

/**
 * Shows the access form with `reason`, and calls `onToken` once with what
 * the user entered (a token, or a share link the token is taken from).
 */
export function askForToken(reason: string, onToken: (token: string) => void): void {
  const section = byId('access');
  byId('access-reason').textContent = reason;
  const form = byId<HTMLFormElement>('access-form');
  const input = form.elements.namedItem('token') as HTMLInputElement;
  input.value = '';
  form.onsubmit = (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    section.hidden = true;
    onToken(value);
  };
  section.hidden = false;
  input.focus();
}

export function hideAccess(): void {
  byId('access').hidden = true;
}

export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mmss = `${String(m).padStart(h ? 2 : 1, '0')}:${String(s).padStart(2, '0')}`;
  return h ? `${h}:${mmss}` : mmss;
}

export function formatDateTime(ms: number): string {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return '—';
  return date.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** Shows the sign-out button while this browser is signed in; `after` runs once signed out. */
export function setUpSignOut(after: () => void): void {
  const button = byId<HTMLButtonElement>('sign-out');
  button.hidden = !signedIn.likely();
  button.onclick = async () => {
    button.disabled = true;
    try {
      await signOut();
    } catch {
      // Unreachable: the page forgot the sign-in; the cookie expires on its own.
    }
    button.disabled = false;
    button.hidden = true;
    after();
  };
}

/** Shows or hides the sign-out button after access changed. */
export function refreshSignOut(): void {
  byId('sign-out').hidden = !signedIn.likely();
}
